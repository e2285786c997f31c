/*
 * surveys: satisfaction surveys. Closing a ticket creates one (inside the
 * close's write transaction) with an unguessable token (at least 128
 * random bits; only its hash is stored), and queues the invitation, the
 * survey link (base URL + token) in a short template text in the
 * customer's language that also invites a reply with a bare number, on the
 * ticket's channel through the outbox. The survey is then the customer's
 * pending survey until it is answered or a newer one is sent. SubmitSurvey
 * (by the link) and Route (a bare rating, hw_surveys_answer_in) take one
 * answer before expiry; GetSurveyStats aggregates by time range, channel,
 * queue and agent.
 */
#ifndef HW_SURVEYS_H
#define HW_SURVEYS_H

#include <stdbool.h>
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

/* Inside a write fn: records rating (1..5) and comment (NULL = none) on
 * sv, as SubmitSurvey does: answered_unix_ms is now, the SURVEY_ANSWERED
 * event goes on the ticket's history (and to watchers through fx), and sv
 * stops being its customer's pending survey. sv is updated in place; the
 * event's strings are allocated in a, which must outlive the transaction
 * (the call's arena). Returns HW_OK; HW_EINVALID (rating out of range),
 * HW_EEXISTS (already answered), HW_EPRECONDITION (expired); store codes.
 * Nothing is written unless HW_OK. Writer thread only. */
int hw_surveys_answer_in(hw_store_txn *w, hw_effects *fx, Helpwire__V1__Survey *sv, uint32_t rating,
                         const char *comment, hw_arena *a);

/* Inside a write fn: the customer's pending survey, the latest one sent to
 * customer_id, when it is unanswered, not expired at now_ms and was sent
 * on channel. The survey is unpacked into a. HW_ENOTFOUND when there is
 * none (a remembered survey that is answered, expired or gone is forgotten
 * on the way); store codes. Writer thread only. */
int hw_surveys_pending_in(hw_store_txn *w, const char *customer_id, Helpwire__V1__Channel channel,
                          int64_t now_ms, hw_arena *a, Helpwire__V1__Survey **out);

/* Survey figures over a set of surveys: GetSurveyStats's, and each row of
 * the CSAT report (reports.h). Zero-initialize, add surveys, then read
 * the rates. Plain data, no allocation. */
typedef struct hw_survey_tally {
    uint64_t sent, answered, rating_sum;
    uint64_t dist[5]; /* ratings 1..5 */
} hw_survey_tally;

/* Counts sv as sent, and its rating when answered (1..5). */
void hw_survey_tally_add(hw_survey_tally *t, const Helpwire__V1__Survey *sv);
/* Adds every count of from into into. */
void hw_survey_tally_merge(hw_survey_tally *into, const hw_survey_tally *from);
/* answered / sent; share of answers rated 4 or 5; mean rating (each 0
 * when there is nothing to divide by). */
double hw_survey_tally_response_rate(const hw_survey_tally *t);
double hw_survey_tally_csat(const hw_survey_tally *t);
double hw_survey_tally_average(const hw_survey_tally *t);

/* Whether sv passes the optional filters (0 / "" / NULL match anything). */
bool hw_survey_matches(const Helpwire__V1__Survey *sv, Helpwire__V1__Channel channel, const char *queue,
                       const char *agent_id);

/* Method-table handlers; app is a hw_app. */
void hw_surveys_submit(hw_call *call, const ProtobufCMessage *request, void *app);
void hw_surveys_get(hw_call *call, const ProtobufCMessage *request, void *app);
void hw_surveys_stats(hw_call *call, const ProtobufCMessage *request, void *app);

#endif
