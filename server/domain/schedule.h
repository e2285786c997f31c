/*
 * schedule: business hours as the API shows them: the check of a skill's
 * hours when it is stored (PutSkill), Agents.GetSchedule, and the words
 * the acknowledgement uses when a ticket arrives outside them. The
 * arithmetic is hours.h's; compiled hours come from the app's cache
 * (app->hours_cache), keyed by their content.
 */
#ifndef HW_SCHEDULE_H
#define HW_SCHEDULE_H

#include <stdbool.h>
#include <stdint.h>

#include "helpwire/v1/agents.pb-c.h"
#include "server/base/arena.h"
#include "server/domain/app.h"
#include "server/net/net.h"

/* Validates bh as the hours of a skill in request field field ("skill.hours"):
 * true when valid (NULL is: always open); otherwise the call has failed
 * with INVALID_ARGUMENT naming the field ("skill.hours.days[1].ranges[0]:
 * close_minute 1500 > 1440"), and false is returned. */
bool hw_schedule_check_hours(hw_call *call, const char *field, const Helpwire__V1__BusinessHours *bh);

/* When skill sk (may be NULL) is closed at now_ms: the sentence saying when
 * its team is back, in the customer's language (locale "zh*": Chinese,
 * else English), in a, e.g. "Our team is back on Monday at 09:00
 * (Asia/Shanghai)." / "客服将于周一 09:00（Asia/Shanghai）回来。"; NULL
 * when open, always open, never opening again, or on an error (the
 * acknowledgement then says nothing of hours). The date is added when the
 * opening is a week or more away. Any thread (the writer's, in Route). */
const char *hw_schedule_back_text(hw_app *app, const Helpwire__V1__Skill *sk, int64_t now_ms,
                                  const char *locale, hw_arena *a);

/* Agents.GetSchedule; app is a hw_app. */
void hw_schedule_get(hw_call *call, const ProtobufCMessage *request, void *app);

#endif
