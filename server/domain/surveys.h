/*
 * surveys: satisfaction surveys. Closing a ticket creates one (inside the
 * close's write transaction) with an unguessable token (at least 128
 * random bits; only its hash is stored), and queues the invitation, the
 * survey link (base URL + token) in a short template text, on the ticket's
 * channel through the outbox. SubmitSurvey takes one answer before expiry;
 * GetSurveyStats aggregates by time range, channel, queue and agent.
 */
#ifndef HW_SURVEYS_H
#define HW_SURVEYS_H

#include <stdint.h>

#include "helpwire/v1/surveys.pb-c.h"
#include "helpwire/v1/tickets.pb-c.h"
#include "server/domain/app.h"
#include "server/domain/effects.h"
#include "server/base/arena.h"
#include "server/net/net.h"
#include "server/store/store.h"

/* Inside the CloseTicket write fn: creates the survey for the closed ticket
 * t (its channel, queue, assignee and number are copied), delivered to
 * channel_user_id, appends the invitation to the outbox and records the
 * SURVEY_SENT event; both wake-ups (the channel, the watchers) go on fx.
 * Results are allocated in a: the survey id, the link, the outbox
 * sequence. Returns HW_OK, HW_EINVALID (t without id or channel, no
 * channel_user_id) or the store's code. Writer thread only. */
int hw_surveys_create_in(hw_store_txn *w, hw_app *app, const Helpwire__V1__Ticket *t,
                         const char *channel_user_id, hw_arena *a, hw_effects *fx, char **survey_id,
                         char **survey_url, uint64_t *outbox_seq);

/* Method-table handlers; app is a hw_app. */
void hw_surveys_submit(hw_call *call, const ProtobufCMessage *request, void *app);
void hw_surveys_get(hw_call *call, const ProtobufCMessage *request, void *app);
void hw_surveys_stats(hw_call *call, const ProtobufCMessage *request, void *app);

#endif
