/*
 * suggestions: learning customers' phrasings from tickets agents answered
 * with an article or FAQ, and the Knowledge RPCs that list, approve and
 * reject what was learnt.
 *
 * A ticket knows the document that answered it (Ticket.answered_by): an
 * agent reply names it (AddMessageRequest.answered_by, CloseTicket's) or
 * links to it ("/articles/<id>", "/faqs/<id>"). When such a ticket is
 * resolved or closed, the customer's first message becomes a PENDING
 * PhrasingSuggestion for that document, in the ticket's own write (so a
 * replica applies it with the ticket). The same question (normalized:
 * hw_suggestions_normalize) for the same document bumps the count of the
 * suggestion it already has; once approved or rejected it is never
 * suggested again, nor when the document holds it already. Approving adds
 * the question to the document's alternate questions through the
 * knowledge module's put path, and the reply waits for the index: the next
 * Answer or Route finds the document through the new phrasing.
 *
 * Storage: the store's generic key-value space (store.h), all in the
 * writing transaction:
 *   "sugg"        be64(~n)                         -> PhrasingSuggestion
 *   "sugg-status" status, be64(~n)                 -> ""
 *   "sugg-doc"    kind, id, NUL, status, be64(~n)  -> ""
 *   "sugg-key"    kind, id, NUL, be64(hash)        -> be64(n)
 *   "sugg-ticket" ticket id -> "<source>\n<kind>:<id recorded>"
 * where n is the suggestion's number (id "sg-<n>", sequence "suggestion")
 * and ~n its complement, so that key order is newest first; hash is XXH3
 * of the normalized question. A listing by status (and document) is a
 * prefix scan of one index; "sugg-ticket" says how the ticket's document
 * was learnt and for which document the ticket was counted already (a
 * ticket resolved, reopened and resolved again counts once).
 *
 * Not done here: the ticket rules themselves (tickets.h calls in) and
 * the index (knowledge.h).
 */
#ifndef HW_SUGGESTIONS_H
#define HW_SUGGESTIONS_H

#include <stdbool.h>
#include <stddef.h>

#include "helpwire/v1/common.pb-c.h"
#include "helpwire/v1/knowledge.pb-c.h"
#include "helpwire/v1/tickets.pb-c.h"
#include "server/base/arena.h"
#include "server/domain/effects.h"
#include "server/net/net.h"
#include "server/store/store.h"

/* Longest customer message suggested, in bytes. */
#define HW_SUGGESTIONS_MAX_QUESTION 1024

/* ---- pure helpers ---- */

/* The form two questions are compared in: NFKC (full-width letters and
 * punctuation become ASCII), white space trimmed and collapsed into one
 * space, ASCII letters lowercased, trailing "?", "!", "." and "。" dropped.
 * @return a NUL-terminated string in a ("" for a blank question); NULL
 *   when s is not valid UTF-8 or a is exhausted. Any thread. */
char *hw_suggestions_normalize(hw_arena *a, const char *s);

/* A link to a document in a text: "/articles/<id>" or "/article/<id>"
 * (ARTICLE), "/faqs/<id>" or "/faq/<id>" (FAQ), where <id> is the longest
 * run of id bytes (hw_index_id_char) after the slash, 1..HW_INDEX_MAX_ID
 * bytes. */
typedef struct hw_doc_link {
    Helpwire__V1__DocKind kind;
    const char *id; /* into the text, not terminated */
    size_t len;
} hw_doc_link;

/* Finds the first link in text at or after p (p = text for the first),
 * fills *out and returns where to look for the next; NULL when there is
 * none. Any thread. */
const char *hw_suggestions_next_link(const char *p, hw_doc_link *out);

/* ---- inside ticket writes (tickets.h) ---- */

/* Whether ref names a document: kind and id both set (true), or neither
 * (false); anything else fails the call with INVALID_ARGUMENT naming
 * field and returns false with *ok false. *ok is true when valid. */
bool hw_suggestions_ref_given(hw_call *call, const char *field, const Helpwire__V1__DocRef *ref, bool *ok);

/* Sets t->answered_by (in a; t is not stored here: the caller stores it
 * with its own change) from an agent's reply or a close: ref when given
 * (NULL or empty: not given) must name an existing article or FAQ;
 * otherwise the last link in text (may be NULL) to an existing document
 * (a link whose id ends in '.' or ':' is also tried without them, for a
 * link ending a sentence). Neither: t is left as it is.
 * @param[out] why  on HW_ENOTFOUND, "answered_by: article X not found"
 *   (in a).
 * @return HW_OK; HW_ENOTFOUND (ref names no document; nothing changed);
 *   HW_ENOMEM; store codes. Writer thread. */
int hw_suggestions_answered_in(hw_store_txn *w, Helpwire__V1__Ticket *t, const Helpwire__V1__DocRef *ref,
                               const char *text, hw_arena *a, const char **why);

/* Called when t (as stored by this write) reached RESOLVED or CLOSED: when
 * it has answered_by and was not counted for that document yet, records
 * the ticket's first CUSTOMER message as a suggestion for it (or bumps the
 * count of the pending one with the same normalized question). Skipped:
 * blank messages, messages over HW_SUGGESTIONS_MAX_QUESTION bytes, a
 * question approved or rejected before for the document, a question the
 * document holds (title, FAQ question or alternate question), a document
 * that is gone. closed: the ticket is final (its bookkeeping is dropped).
 * @return HW_OK (also when skipped); HW_ENOMEM; store codes. Writer
 *   thread. */
int hw_suggestions_ticket_done_in(hw_store_txn *w, const Helpwire__V1__Ticket *t, bool closed, hw_effects *fx,
                                  hw_arena *a);

/* ---- reads ---- */

/* One suggestion by id ("sg-<n>") into a.
 * @return HW_OK; HW_ENOTFOUND (also for an id of another form);
 *   HW_ECORRUPT; store codes. Any transaction. */
int hw_suggestions_get(hw_store_txn *t, const char *id, hw_arena *a, Helpwire__V1__PhrasingSuggestion **out);

/* Method-table handlers (Knowledge service); app is a hw_app. */
void hw_suggestions_list(hw_call *call, const ProtobufCMessage *request, void *app);
void hw_suggestions_approve(hw_call *call, const ProtobufCMessage *request, void *app);
void hw_suggestions_reject(hw_call *call, const ProtobufCMessage *request, void *app);

/* Inside a write fn (erasure, privacy.c): removes every phrasing
 * suggestion taken from a ticket is_ticket(arg, id) names, whatever its
 * status, with its listing keys; *removed receives how many. A scan of all
 * suggestions. @return HW_OK; store codes. */
int hw_suggestions_erase_tickets_in(hw_store_txn *w, bool (*is_ticket)(void *arg, const char *ticket_id),
                                    void *arg, hw_arena *a, size_t *removed);

#endif
