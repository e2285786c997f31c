/*
 * tickets: the helpwire.v1.Tickets service and the ticket rules every
 * other module uses (Route opens and appends through the same functions):
 * numbering, subject, priority, the status machine, assignment to the
 * agent of the queue's skill that queues.h chooses (strategy, capacity),
 * agent load accounting (per channel too) and history events.
 *
 * Functions ending in _in are the rules: they run inside a store write fn
 * (writer thread, in transaction w), change the store only through w (so a
 * refused or failed write leaves nothing), and record what the change
 * causes after the commit (ticket events for watchers, outbox and notifier
 * wake-ups) on fx (effects.h). Records they return are allocated in a;
 * a and fx's arena may be the same arena (the call's, for handlers).
 * The handlers below them only validate, load, map refusals to the call's
 * status and reply.
 */
#ifndef HW_TICKETS_H
#define HW_TICKETS_H

#include <stdbool.h>
#include <stddef.h>

#include "helpwire/v1/customers.pb-c.h"
#include "helpwire/v1/tickets.pb-c.h"
#include "server/domain/app.h"
#include "server/base/arena.h"
#include "server/net/net.h"
#include "server/domain/effects.h"
#include "server/domain/outbox.h"
#include "server/store/store.h"

/* What opening a ticket needs. Strings are borrowed. */
typedef struct hw_ticket_open {
    const Helpwire__V1__Customer *customer;
    Helpwire__V1__Channel channel;   /* UNSPECIFIED: the customer's first identity */
    const char *text;                /* the customer's first message */
    const char *subject;             /* "" = first 100 characters of text */
    const char *queue;               /* required: an existing skill */
    Helpwire__V1__Priority priority; /* UNSPECIFIED = derived */
    char **tags;
    size_t n_tags;
    const char *actor; /* who opened it: "customer:<id>", "agent:<id>" */
    /* The first message's files and places (already resolved:
     * attachments.h) and its channel id (Route's message_id); may be
     * empty. Borrowed. */
    Helpwire__V1__Attachment **attachments;
    size_t n_attachments;
    const char *channel_message_id;
} hw_ticket_open;

/* Opens a ticket: number from the "ticket" sequence (from 1000), id
 * "t-<number>", priority (given, or derived: urgent words, VIP tier, the
 * skill's default), assignment, CREATED/MESSAGE/ASSIGNED events. *out and
 * *reason (which rule set the priority) are allocated in a.
 * @return HW_OK; HW_ENOTFOUND (queue is not a skill); store codes. */
int hw_tickets_open_in(hw_store_txn *w, const hw_ticket_open *o, hw_arena *a, hw_effects *fx,
                       Helpwire__V1__Ticket **out, const char **reason);

/* Appends a message to ticket t (updated in place: message_count, updated
 * time, version; a PENDING ticket goes back to OPEN on a customer message),
 * with its MESSAGE event. For MESSAGE_KIND_AGENT_REPLY the text is also
 * queued in the outbox for the customer, split into ordered parts when
 * longer than the channel's limit (outbox.h): the message, stored whole
 * once, records how many in delivery_parts, the MESSAGE event's detail
 * says "agent reply, sent in N parts" when N > 1, and *sent (may be NULL)
 * receives the parts' outbox sequences (allocated in a; n 0 for the other
 * kinds).
 * @return HW_OK; HW_EPRECONDITION (ticket closed); store codes. */
int hw_tickets_add_message_in(hw_store_txn *w, Helpwire__V1__Ticket *t, Helpwire__V1__MessageKind kind,
                              const char *author, const char *text, hw_arena *a, hw_effects *fx,
                              Helpwire__V1__TicketMessage **msg_out, hw_outbox_parts *sent);

/* What a message may carry besides its text (all optional, borrowed). */
typedef struct hw_message_extra {
    /* Files and places, already resolved (hw_attachments_resolve_in). An
     * AGENT_REPLY delivers them on the outbox message of its last part;
     * with them the text may be empty. */
    Helpwire__V1__Attachment **attachments;
    size_t n_attachments;
    const char *channel_message_id;  /* CUSTOMER through Route: the channel's id (read receipts) */
    const char *author_name;         /* AGENT_REPLY: the agent's name, kept on the message */
    const hw_outbox_extra *outbound; /* AGENT_REPLY: what the queued message carries (outbox.h) */
    const char *event_note;          /* appended to the MESSAGE event's detail ("; " + note) */
    /* AGENT_REPLY: the ticket's customer as the caller read it in this
     * write (NULL: read here), so a reply reads it once. */
    const Helpwire__V1__Customer *customer;
} hw_message_extra;

/* hw_tickets_add_message_in with x (may be NULL) stored on the message
 * (TicketMessage.attachments, channel_message_id, author_name) and, for
 * an AGENT_REPLY, the attachments and x->outbound queued with the reply. */
int hw_tickets_add_message_ex_in(hw_store_txn *w, Helpwire__V1__Ticket *t, Helpwire__V1__MessageKind kind,
                                 const char *author, const char *text, const hw_message_extra *x, hw_arena *a,
                                 hw_effects *fx, Helpwire__V1__TicketMessage **msg_out, hw_outbox_parts *sent);

/* The customer's most recent ticket that is OPEN, PENDING or ESCALATED,
 * or HW_ENOTFOUND. */
int hw_tickets_find_open_in(hw_store_txn *t, const char *customer_id, hw_arena *a,
                            Helpwire__V1__Ticket **out);

/* Assigns waiting tickets (unassigned, OPEN, PENDING or ESCALATED) of the
 * agent's skills to the agent while it is online and under capacity (also
 * per channel, queues.h): in waiting order (priority, then the earliest
 * running SLA due, then number), each with its ASSIGNED event
 * and the agent's load. ids may be NULL; otherwise *ids and *n_ids receive
 * the assigned tickets' ids in that order (allocated in a; none: n 0).
 * An offline, full or deleted agent takes nothing.
 * @return HW_OK; HW_ENOMEM; store codes. */
int hw_tickets_assign_waiting_in(hw_store_txn *w, const char *agent_id, hw_arena *a, hw_effects *fx,
                                 char ***ids, size_t *n_ids);

/* Moves agent_id's open tickets (OPEN, PENDING, ESCALATED) to other
 * agents per their queue's strategy and capacity (queues.h), most urgent
 * first; a ticket nobody can take is unassigned and waits (UNASSIGNABLE
 * timer or alert). Each gets an ASSIGNED event by "system" whose detail is
 * why followed by "; assigned to <id>" or "; unassigned, waiting". *moved
 * receives how many moved. why is borrowed (lives as long as a).
 * @return HW_OK; HW_ENOMEM; store codes. */
int hw_tickets_reassign_in(hw_store_txn *w, const char *agent_id, const char *why, hw_arena *a,
                           hw_effects *fx, size_t *moved);

/* The status machine's table: whether UpdateTicket may move a ticket from
 * status from to status to (OPEN <-> PENDING, OPEN/PENDING/ESCALATED ->
 * RESOLVED, RESOLVED -> OPEN). ESCALATED and CLOSED are reached only
 * through hw_tickets_escalate_in and hw_tickets_close_in; CLOSED is final.
 * Pure; any thread. */
bool hw_tickets_status_move_allowed(Helpwire__V1__TicketStatus from, Helpwire__V1__TicketStatus to);

/* What UpdateTicket changes: each set_ field selects its value. Strings and
 * tags are borrowed (they must live as long as a). */
typedef struct hw_ticket_change {
    bool set_status, set_assignee, set_priority, set_tags;
    Helpwire__V1__TicketStatus status;
    const char *assignee_agent_id; /* "" = unassign */
    Helpwire__V1__Priority priority;
    char **tags;
    size_t n_tags;
} hw_ticket_change;

/* Applies ch to ticket t (read in w; updated in place, version + 1 once),
 * by actor: one history event per changed field (REOPENED for RESOLVED ->
 * OPEN), agent load moved with the assignment, and the previous assignee,
 * whose load may have dropped, takes waiting tickets.
 * @param[out] why  on a refusal, the message for the caller (in a; NULL
 *   when a is exhausted); NULL otherwise.
 * @return HW_OK; HW_EPRECONDITION (t is CLOSED, or the status move is not
 *   in the table, or asks for ESCALATED/CLOSED: *why says which; nothing
 *   written); HW_ENOTFOUND (no agent assignee_agent_id; *why set);
 *   store codes (*why NULL). */
int hw_tickets_update_in(hw_store_txn *w, Helpwire__V1__Ticket *t, const hw_ticket_change *ch,
                         const char *actor, hw_arena *a, hw_effects *fx, const char **why);

/* Escalates t (OPEN or PENDING) with reason by actor: status ESCALATED,
 * ESCALATED event, a supervisor alert queued (hw_notifier_queue_in). reason
 * is borrowed (lives as long as a).
 * @return HW_OK; HW_EPRECONDITION (any other status; *why set, nothing
 *   written); store codes. */
int hw_tickets_escalate_in(hw_store_txn *w, Helpwire__V1__Ticket *t, const char *reason, const char *actor,
                           hw_arena *a, hw_effects *fx, const char **why);

/* Closes t (any status but CLOSED) with resolution by actor: CLOSED event,
 * the assignee's load drops and it takes waiting tickets; unless
 * skip_survey, a survey goes to the customer's identity on the ticket's
 * channel (none when the customer or that identity is gone), and
 * *survey_id, *survey_url receive it (in a; "" when none was sent).
 * @return HW_OK; HW_EPRECONDITION (already closed; *why set, nothing
 *   written); store codes. */
int hw_tickets_close_in(hw_store_txn *w, hw_app *app, Helpwire__V1__Ticket *t, const char *resolution,
                        bool skip_survey, const char *actor, hw_arena *a, hw_effects *fx, char **survey_id,
                        char **survey_url, const char **why);

/* Makes the next ticket number at least from (ticket numbers and ids are
 * never given twice by one store, but a store restored from a backup does
 * not know the ones given after the backup). Never moves backwards.
 * *next receives the number the next ticket will get. Before serving.
 * @return HW_OK; store codes. */
int hw_tickets_number_floor(hw_store *s, uint64_t from, uint64_t *next);

/* Method-table handlers; app is a hw_app. */
void hw_tickets_create(hw_call *call, const ProtobufCMessage *request, void *app);
void hw_tickets_get(hw_call *call, const ProtobufCMessage *request, void *app);
void hw_tickets_list(hw_call *call, const ProtobufCMessage *request, void *app);
void hw_tickets_update(hw_call *call, const ProtobufCMessage *request, void *app);
void hw_tickets_add_message(hw_call *call, const ProtobufCMessage *request, void *app);
void hw_tickets_escalate(hw_call *call, const ProtobufCMessage *request, void *app);
void hw_tickets_close(hw_call *call, const ProtobufCMessage *request, void *app);
void hw_tickets_history(hw_call *call, const ProtobufCMessage *request, void *app);
void hw_tickets_watch(hw_call *call, const ProtobufCMessage *request, void *app);

#endif
