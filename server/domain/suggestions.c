/*
 * suggestions: phrasing suggestions learnt from answered tickets (see
 * suggestions.h for the rules and the key layout).
 *
 * Everything a ticket write does here runs in that write's transaction:
 * a refused or failed ticket change leaves no suggestion behind, and a
 * replica applying the entry gets the suggestion with the ticket. Approve
 * is the one write that changes a document; it goes through knowledge.h's
 * put path, so the other replicas reindex it from the knowledge effect
 * like any PutArticle or PutFaq, and this replica answers only once its
 * own index has the new alternate question.
 */
#include "server/domain/suggestions.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <utf8proc.h>
#include <xxhash.h>

#include "server/domain/knowledge.h"
#include "server/domain/rpc.h"
#include "server/search/index.h"
#include "server/store/records.h"

#define NS_REC "sugg"
#define NS_STATUS "sugg-status"
#define NS_DOC "sugg-doc"
#define NS_KEY "sugg-key"
#define NS_TICKET "sugg-ticket"
#define SEQ "suggestion"
#define MAX_DOC_ID HW_INDEX_MAX_ID
#define SOURCE_GIVEN "answered_by"
#define SOURCE_LINK "link"

#define KIND(x) HELPWIRE__V1__DOC_KIND__DOC_KIND_##x
#define SST(x) HELPWIRE__V1__SUGGESTION_STATUS__SUGGESTION_STATUS_##x

typedef Helpwire__V1__PhrasingSuggestion Suggestion;

/* ------------------------------------------------------------ helpers */

static bool is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* Drops trailing spaces and end punctuation (?, !, ., 。) from s[0..*n). */
static void trim_end(const char *s, size_t *n)
{
    for (;;) {
        if (*n && (is_space((unsigned char)s[*n - 1]) || s[*n - 1] == '?' || s[*n - 1] == '!' ||
                   s[*n - 1] == '.'))
            (*n)--;
        else if (*n >= 3 && memcmp(s + *n - 3, "\xE3\x80\x82", 3) == 0)
            *n -= 3;
        else
            return;
    }
}

char *hw_suggestions_normalize(hw_arena *a, const char *s)
{
    utf8proc_uint8_t *nfkc = NULL;
    utf8proc_ssize_t len = utf8proc_map((const utf8proc_uint8_t *)s, 0, &nfkc,
                                        UTF8PROC_NULLTERM | UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT);
    if (len < 0)
        return NULL;
    char *out = hw_arena_alloc(a, (size_t)len + 1);
    size_t n = 0;
    if (out) {
        bool gap = false;
        for (utf8proc_ssize_t i = 0; i < len; i++) {
            unsigned char c = nfkc[i];
            if (is_space(c)) {
                gap = n > 0;
                continue;
            }
            if (gap)
                out[n++] = ' ';
            gap = false;
            out[n++] = (char)(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c);
        }
        trim_end(out, &n);
        out[n] = '\0';
    }
    free(nfkc);
    return out;
}

static bool is_id_char(char c)
{
    return hw_index_id_char((unsigned char)c);
}

/* Longer forms first: "articles/" before "article/". */
static const struct {
    const char *path;
    Helpwire__V1__DocKind kind;
} link_forms[] = {
    {"articles/", KIND(ARTICLE)},
    {"article/", KIND(ARTICLE)},
    {"faqs/", KIND(FAQ)},
    {"faq/", KIND(FAQ)},
};

const char *hw_suggestions_next_link(const char *p, hw_doc_link *out)
{
    for (p = p ? strchr(p, '/') : NULL; p; p = strchr(p + 1, '/')) {
        for (size_t f = 0; f < sizeof link_forms / sizeof link_forms[0]; f++) {
            size_t pl = strlen(link_forms[f].path);
            if (strncmp(p + 1, link_forms[f].path, pl) != 0)
                continue;
            const char *id = p + 1 + pl;
            size_t len = 0;
            while (is_id_char(id[len]))
                len++;
            if (len == 0 || len > MAX_DOC_ID)
                break;
            *out = (hw_doc_link){.kind = link_forms[f].kind, .id = id, .len = len};
            return id + len;
        }
    }
    return NULL;
}

static const char *kind_what(Helpwire__V1__DocKind kind)
{
    return kind == KIND(FAQ) ? "FAQ" : "article";
}

static const char *status_word(Helpwire__V1__SuggestionStatus s)
{
    return s == SST(APPROVED) ? "approved" : s == SST(REJECTED) ? "rejected" : "pending";
}

static void put_be64(unsigned char *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (unsigned char)v;
}

static uint64_t get_be64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

/* Key buffers: the longest is kind + 128-byte id + NUL + status + 8. */
enum { KEY_MAX = 1 + MAX_DOC_ID + 1 + 1 + 8 };

/* kind, id, NUL into k; returns the length, 0 when id is too long. */
static size_t doc_prefix(unsigned char *k, Helpwire__V1__DocKind kind, const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > MAX_DOC_ID)
        return 0;
    k[0] = (unsigned char)kind;
    memcpy(k + 1, id, n);
    k[1 + n] = 0;
    return n + 2;
}

static uint64_t number_of(const Suggestion *s)
{
    return strtoull(s->id + 3, NULL, 10);
}

/* Whether the article or FAQ exists. */
static int doc_exists(hw_store_txn *w, Helpwire__V1__DocKind kind, const char *id)
{
    hw_arena *tmp = hw_store_txn_arena(w);
    if (kind == KIND(ARTICLE)) {
        Helpwire__V1__Article *ar;
        return hw_store_article_get(w, id, tmp, &ar);
    }
    if (kind == KIND(FAQ)) {
        Helpwire__V1__Faq *fq;
        return hw_store_faq_get(w, id, tmp, &fq);
    }
    return HW_ENOTFOUND;
}

/* ------------------------------------------------------------ records */

static int get_by_number(hw_store_txn *t, uint64_t n, hw_arena *a, Suggestion **out)
{
    unsigned char k[8];
    put_be64(k, ~n);
    void *v;
    size_t vl;
    int rc = hw_store_kv_get(t, NS_REC, k, sizeof k, a, &v, &vl);
    if (rc != HW_OK)
        return rc;
    *out = (Suggestion *)protobuf_c_message_unpack(&helpwire__v1__phrasing_suggestion__descriptor,
                                                   hw_arena_allocator(a), vl, v);
    return *out ? HW_OK : HW_ECORRUPT;
}

int hw_suggestions_get(hw_store_txn *t, const char *id, hw_arena *a, Suggestion **out)
{
    if (strncmp(id, "sg-", 3) != 0 || id[3] < '1' || id[3] > '9' || strlen(id) > 23)
        return HW_ENOTFOUND;
    for (const char *p = id + 3; *p; p++)
        if (*p < '0' || *p > '9')
            return HW_ENOTFOUND;
    return get_by_number(t, strtoull(id + 3, NULL, 10), a, out);
}

/* The record itself. */
static int put_record(hw_store_txn *w, const Suggestion *s)
{
    unsigned char k[8];
    put_be64(k, ~number_of(s));
    size_t len = protobuf_c_message_get_packed_size(&s->base);
    uint8_t *buf = hw_arena_alloc(hw_store_txn_arena(w), len ? len : 1);
    if (!buf)
        return HW_ENOMEM;
    protobuf_c_message_pack(&s->base, buf);
    return hw_store_kv_put(w, NS_REC, k, sizeof k, buf, len);
}

/* Adds (on) or removes the listing keys of s under its status. */
static int index_status(hw_store_txn *w, const Suggestion *s, bool on)
{
    uint64_t inv = ~number_of(s);
    unsigned char k[KEY_MAX];
    k[0] = (unsigned char)s->status;
    put_be64(k + 1, inv);
    int rc = on ? hw_store_kv_put(w, NS_STATUS, k, 9, "", 0) : hw_store_kv_delete(w, NS_STATUS, k, 9);
    size_t p = doc_prefix(k, s->doc->kind, s->doc->id);
    if (rc != HW_OK || p == 0)
        return rc != HW_OK ? rc : HW_EINVALID;
    k[p] = (unsigned char)s->status;
    put_be64(k + p + 1, inv);
    return on ? hw_store_kv_put(w, NS_DOC, k, p + 9, "", 0) : hw_store_kv_delete(w, NS_DOC, k, p + 9);
}

/* Moves s to status st (decided by actor at now_ms) and stores it. */
static int decide(hw_store_txn *w, Suggestion *s, Helpwire__V1__SuggestionStatus st, const char *actor,
                  int64_t now_ms)
{
    int rc = index_status(w, s, false);
    s->status = st;
    s->decided_unix_ms = now_ms;
    s->decided_by = (char *)actor;
    if (rc == HW_OK)
        rc = index_status(w, s, true);
    if (rc == HW_OK)
        rc = put_record(w, s);
    return rc;
}

/* --------------------------------------------------- ticket bookkeeping */

/* The "sugg-ticket" value of ticket id: *source and *counted ("" when
 * none) in a. */
static int ticket_marker(hw_store_txn *w, const char *tid, hw_arena *a, char **source, char **counted)
{
    void *v;
    size_t vl;
    *source = SOURCE_GIVEN;
    *counted = "";
    int rc = hw_store_kv_get(w, NS_TICKET, tid, strlen(tid), a, &v, &vl);
    if (rc == HW_ENOTFOUND)
        return HW_OK;
    if (rc != HW_OK)
        return rc;
    char *nl = strchr(v, '\n');
    if (nl) {
        *nl = '\0';
        *counted = nl + 1;
    }
    *source = v;
    return HW_OK;
}

static int put_ticket_marker(hw_store_txn *w, const char *tid, const char *source, const char *counted)
{
    char *v = hw_arena_printf(hw_store_txn_arena(w), "%s\n%s", source, counted);
    return v ? hw_store_kv_put(w, NS_TICKET, tid, strlen(tid), v, strlen(v)) : HW_ENOMEM;
}

bool hw_suggestions_ref_given(hw_call *call, const char *field, const Helpwire__V1__DocRef *ref, bool *ok)
{
    *ok = true;
    if (!ref || (ref->kind == KIND(UNSPECIFIED) && !*ref->id))
        return false;
    char name[64];
    if (ref->kind != KIND(ARTICLE) && ref->kind != KIND(FAQ)) {
        hw_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "%s.kind: must be DOC_KIND_ARTICLE or DOC_KIND_FAQ",
                     field);
        *ok = false;
        return false;
    }
    snprintf(name, sizeof name, "%s.id", field);
    if (!hw_rpc_check_doc_id(call, name, ref->id, false)) {
        *ok = false;
        return false;
    }
    return true;
}

/* t->answered_by = (kind, id[0..len)) learnt from source. */
static int set_answered(hw_store_txn *w, Helpwire__V1__Ticket *t, Helpwire__V1__DocKind kind, const char *id,
                        size_t len, const char *source, hw_arena *a)
{
    Helpwire__V1__DocRef *ref = hw_arena_alloc(a, sizeof *ref);
    char *copy = hw_arena_strndup(a, id, len);
    if (!ref || !copy)
        return HW_ENOMEM;
    helpwire__v1__doc_ref__init(ref);
    ref->kind = kind;
    ref->id = copy;
    t->answered_by = ref;
    char *old_source, *counted;
    int rc = ticket_marker(w, t->id, hw_store_txn_arena(w), &old_source, &counted);
    if (rc == HW_OK)
        rc = put_ticket_marker(w, t->id, source, counted);
    return rc;
}

int hw_suggestions_answered_in(hw_store_txn *w, Helpwire__V1__Ticket *t, const Helpwire__V1__DocRef *ref,
                               const char *text, hw_arena *a, const char **why)
{
    *why = NULL;
    if (ref && ref->kind && *ref->id) {
        int rc = doc_exists(w, ref->kind, ref->id);
        if (rc == HW_ENOTFOUND)
            *why = hw_arena_printf(a, "answered_by: %s %s not found", kind_what(ref->kind), ref->id);
        if (rc != HW_OK)
            return rc;
        return set_answered(w, t, ref->kind, ref->id, strlen(ref->id), SOURCE_GIVEN, a);
    }
    hw_doc_link found = {0}, l;
    char id[MAX_DOC_ID + 1];
    for (const char *p = text; p && (p = hw_suggestions_next_link(p, &l));) {
        /* The id as written, then without what ends a sentence or a
         * parenthesis after the link (. : , ; ! ) ' *), one by one. */
        size_t len = l.len;
        memcpy(id, l.id, len);
        for (;;) {
            id[len] = '\0';
            int rc = doc_exists(w, l.kind, id);
            if (rc == HW_OK) {
                found = l;
                found.len = len;
                break;
            }
            if (rc != HW_ENOTFOUND)
                return rc;
            if (len > 1 && strchr(".:,;!)'*", id[len - 1]))
                len--;
            else
                break;
        }
    }
    if (!found.len)
        return HW_OK;
    return set_answered(w, t, found.kind, found.id, found.len, SOURCE_LINK, a);
}

/* The first CUSTOMER message of ticket tid (NULL when none). */
static int first_customer_message(hw_store_txn *w, const char *tid, hw_arena *a, const char **text)
{
    *text = NULL;
    hw_store_cursor cur = {0};
    do {
        Helpwire__V1__TicketMessage **ms;
        size_t n;
        int rc = hw_store_ticket_message_list(w, tid, &cur, 50, a, &ms, &n);
        if (rc != HW_OK)
            return rc;
        for (size_t i = 0; i < n; i++)
            if (ms[i]->kind == HELPWIRE__V1__MESSAGE_KIND__MESSAGE_KIND_CUSTOMER) {
                *text = ms[i]->text;
                return HW_OK;
            }
    } while (cur.len);
    return HW_OK;
}

/* Whether the document holds question (normalized norm) already: title or
 * FAQ question, or an alternate question. HW_ENOTFOUND when it is gone. */
static int doc_holds(hw_store_txn *w, Helpwire__V1__DocKind kind, const char *id, const char *norm, hw_arena *a,
                     bool *holds)
{
    *holds = false;
    const char *title;
    char **alts;
    size_t n_alts;
    int rc;
    if (kind == KIND(ARTICLE)) {
        Helpwire__V1__Article *ar;
        if ((rc = hw_store_article_get(w, id, a, &ar)) != HW_OK)
            return rc;
        title = ar->title, alts = ar->alternate_questions, n_alts = ar->n_alternate_questions;
    } else {
        Helpwire__V1__Faq *fq;
        if ((rc = hw_store_faq_get(w, id, a, &fq)) != HW_OK)
            return rc;
        title = fq->question, alts = fq->alternate_questions, n_alts = fq->n_alternate_questions;
    }
    for (size_t i = 0; i <= n_alts && !*holds; i++) {
        const char *q = hw_suggestions_normalize(a, i == 0 ? title : alts[i - 1]);
        if (!q)
            continue; /* not UTF-8: cannot equal a normalized question */
        *holds = strcmp(q, norm) == 0;
    }
    return HW_OK;
}

/* Records question for the ticket's document, or bumps the pending one. */
static int record(hw_store_txn *w, const Helpwire__V1__Ticket *t, const char *source, const char *question,
                  const char *norm, hw_effects *fx, hw_arena *a)
{
    const Helpwire__V1__DocRef *doc = t->answered_by;
    unsigned char k[KEY_MAX];
    size_t p = doc_prefix(k, doc->kind, doc->id);
    if (!p)
        return HW_OK;
    put_be64(k + p, XXH3_64bits(norm, strlen(norm)));
    void *v;
    size_t vl;
    int rc = hw_store_kv_get(w, NS_KEY, k, p + 8, a, &v, &vl);
    if (rc == HW_OK) {
        Suggestion *s;
        if (vl != 8)
            return HW_ECORRUPT;
        rc = get_by_number(w, get_be64(v), a, &s);
        if (rc == HW_OK && s->status != SST(PENDING))
            return rc; /* decided: never suggested again */
        if (rc == HW_OK) {
            s->count++;
            return put_record(w, s);
        }
        /* HW_ENOTFOUND: erased with its customer (privacy.c); recorded anew */
    }
    if (rc != HW_ENOTFOUND)
        return rc;
    bool holds;
    rc = doc_holds(w, doc->kind, doc->id, norm, a, &holds);
    if (rc == HW_ENOTFOUND || (rc == HW_OK && holds))
        return HW_OK;
    if (rc != HW_OK)
        return rc;
    Helpwire__V1__Customer *cust = NULL;
    rc = hw_store_customer_get(w, t->customer_id, a, &cust);
    if (rc != HW_OK && rc != HW_ENOTFOUND)
        return rc;
    uint64_t n;
    if ((rc = hw_store_next_seq(w, SEQ, 1, &n)) != HW_OK)
        return rc;
    Suggestion *s = hw_arena_alloc(a, sizeof *s);
    Helpwire__V1__DocRef *ref = hw_arena_alloc(a, sizeof *ref);
    if (!s || !ref)
        return HW_ENOMEM;
    helpwire__v1__phrasing_suggestion__init(s);
    helpwire__v1__doc_ref__init(ref);
    ref->kind = doc->kind;
    ref->id = doc->id;
    s->id = hw_arena_printf(a, "sg-%llu", (unsigned long long)n);
    s->doc = ref;
    s->question = (char *)question;
    s->locale = cust ? cust->locale : "";
    s->ticket_id = t->id;
    s->agent_id = t->assignee_agent_id;
    s->status = SST(PENDING);
    s->created_unix_ms = hw_effects_now_ms(fx);
    s->source = (char *)source;
    s->count = 1;
    if (!s->id)
        return HW_ENOMEM;
    unsigned char num[8];
    put_be64(num, n);
    rc = put_record(w, s);
    if (rc == HW_OK)
        rc = index_status(w, s, true);
    if (rc == HW_OK)
        rc = hw_store_kv_put(w, NS_KEY, k, p + 8, num, sizeof num);
    return rc;
}

/* The customer's words as stored: trimmed of surrounding white space. */
static char *trimmed(hw_arena *a, const char *s)
{
    while (is_space((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n && is_space((unsigned char)s[n - 1]))
        n--;
    return hw_arena_strndup(a, s, n);
}

int hw_suggestions_ticket_done_in(hw_store_txn *w, const Helpwire__V1__Ticket *t, bool closed, hw_effects *fx,
                                  hw_arena *a)
{
    const Helpwire__V1__DocRef *doc = t->answered_by;
    if (!doc || !doc->kind || !doc->id || !*doc->id)
        return HW_OK;
    char *source, *counted;
    int rc = ticket_marker(w, t->id, a, &source, &counted);
    if (rc != HW_OK)
        return rc;
    char *this_doc = hw_arena_printf(a, "%c:%s", doc->kind == KIND(FAQ) ? 'f' : 'a', doc->id);
    if (!this_doc)
        return HW_ENOMEM;
    if (strcmp(counted, this_doc) != 0) {
        const char *text;
        rc = first_customer_message(w, t->id, a, &text);
        if (rc == HW_OK && text && strlen(text) <= HW_SUGGESTIONS_MAX_QUESTION) {
            char *norm = hw_suggestions_normalize(a, text);
            char *question = trimmed(a, text);
            if (!question)
                rc = HW_ENOMEM;
            else if (norm && *norm)
                rc = record(w, t, source, question, norm, fx, a);
        }
        if (rc != HW_OK)
            return rc;
    }
    if (closed) { /* final: no more counting for this ticket */
        rc = hw_store_kv_delete(w, NS_TICKET, t->id, strlen(t->id));
        return rc == HW_ENOTFOUND ? HW_OK : rc;
    }
    return put_ticket_marker(w, t->id, source, this_doc);
}

/* --------------------------------------------------------------- erasure */

typedef struct erase_scan {
    bool (*is_ticket)(void *arg, const char *ticket_id);
    void *arg;
    hw_arena *a;
    Suggestion **found;
    size_t n, cap;
} erase_scan;

static int erase_each(void *arg, const void *key, size_t key_len, const void *val, size_t val_len)
{
    (void)key, (void)key_len;
    erase_scan *e = arg;
    Suggestion *s = (Suggestion *)protobuf_c_message_unpack(&helpwire__v1__phrasing_suggestion__descriptor,
                                                            hw_arena_allocator(e->a), val_len, val);
    if (!s)
        return HW_ECORRUPT;
    if (!s->ticket_id || !e->is_ticket(e->arg, s->ticket_id))
        return 0;
    if (e->n == e->cap) {
        size_t cap = e->cap ? 2 * e->cap : 16;
        Suggestion **f = hw_arena_alloc(e->a, cap * sizeof *f);
        if (!f)
            return HW_ENOMEM;
        if (e->n)
            memcpy(f, e->found, e->n * sizeof *f);
        e->found = f, e->cap = cap;
    }
    e->found[e->n++] = s;
    return 0;
}

int hw_suggestions_erase_tickets_in(hw_store_txn *w, bool (*is_ticket)(void *arg, const char *ticket_id),
                                    void *arg, hw_arena *a, size_t *removed)
{
    erase_scan e = {.is_ticket = is_ticket, .arg = arg, .a = a};
    *removed = 0;
    int rc = hw_store_kv_foreach(w, NS_REC, erase_each, &e);
    for (size_t i = 0; rc == HW_OK && i < e.n; i++) {
        Suggestion *s = e.found[i];
        if ((rc = index_status(w, s, false)) != HW_OK && rc != HW_ENOTFOUND)
            break;
        unsigned char k[KEY_MAX];
        put_be64(k, ~number_of(s));
        if ((rc = hw_store_kv_delete(w, NS_REC, k, 8)) != HW_OK)
            break;
        /* The key of its phrasing (a hash of the customer's words), when
         * the stored question still gives it. */
        const char *norm = s->question ? hw_suggestions_normalize(a, s->question) : NULL;
        size_t p = s->doc ? doc_prefix(k, s->doc->kind, s->doc->id) : 0;
        if (norm && p) {
            put_be64(k + p, XXH3_64bits(norm, strlen(norm)));
            void *v;
            size_t vl;
            rc = hw_store_kv_get(w, NS_KEY, k, p + 8, a, &v, &vl);
            if (rc == HW_OK && vl == 8 && get_be64(v) == number_of(s))
                rc = hw_store_kv_delete(w, NS_KEY, k, p + 8);
            if (rc != HW_OK && rc != HW_ENOTFOUND)
                break;
        }
        rc = HW_OK;
        (*removed)++;
    }
    return rc;
}

/* ------------------------------------------------------ ListSuggestions */

typedef struct {
    const unsigned char *prefix;
    size_t prefix_len;
    size_t want, n;
    uint64_t *numbers;
    bool more;
    hw_store_cursor *cur;
} list_scan;

static int list_each(void *arg, const void *key, size_t key_len, const void *val, size_t val_len)
{
    (void)val, (void)val_len;
    list_scan *l = arg;
    if (key_len != l->prefix_len + 8 || memcmp(key, l->prefix, l->prefix_len) != 0)
        return HW_STOP;
    if (l->n == l->want) {
        l->more = true;
        return HW_STOP;
    }
    l->numbers[l->n++] = ~get_be64((const unsigned char *)key + l->prefix_len);
    memcpy(l->cur->key, key, key_len);
    l->cur->len = key_len;
    return 0;
}

void hw_suggestions_list(hw_call *call, const ProtobufCMessage *request, void *appv)
{
    hw_app *app = appv;
    const Helpwire__V1__ListSuggestionsRequest *req = (const void *)request;
    hw_store_cursor cur;
    bool ok;
    if (!hw_rpc_check_enum(call, "status", &helpwire__v1__suggestion_status__descriptor, req->status, true))
        return;
    bool by_doc = hw_suggestions_ref_given(call, "doc", req->doc, &ok);
    if (!ok || !hw_rpc_page_token(call, "page_token", req->page_token, &cur))
        return;
    Helpwire__V1__SuggestionStatus st = req->status ? req->status : SST(PENDING);
    unsigned char prefix[KEY_MAX];
    size_t pl = 0;
    if (by_doc)
        pl = doc_prefix(prefix, req->doc->kind, req->doc->id);
    prefix[pl++] = (unsigned char)st;
    if (cur.len && (cur.len != pl + 8 || memcmp(cur.key, prefix, pl) != 0)) {
        hw_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "page_token: not a token from this listing");
        return;
    }
    hw_arena *a = hw_call_arena(call);
    list_scan l = {.prefix = prefix, .prefix_len = pl, .want = hw_rpc_page_size(req->page_size, 50, 1000)};
    hw_store_cursor after = cur;
    l.cur = &cur;
    l.numbers = hw_arena_alloc(a, l.want * sizeof *l.numbers);
    Helpwire__V1__ListSuggestionsReply r = HELPWIRE__V1__LIST_SUGGESTIONS_REPLY__INIT;
    r.suggestions = hw_arena_alloc(a, l.want * sizeof *r.suggestions);
    if (!l.numbers || !r.suggestions) {
        hw_call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "server out of memory");
        return;
    }
    hw_store_txn *t = hw_rpc_read(call, app);
    if (!t)
        return;
    int rc = hw_store_kv_foreach_after(t, by_doc ? NS_DOC : NS_STATUS, after.len ? after.key : prefix,
                                       after.len ? after.len : pl, list_each, &l);
    for (size_t i = 0; rc == HW_OK && i < l.n; i++) {
        rc = get_by_number(t, l.numbers[i], a, &r.suggestions[r.n_suggestions]);
        if (rc == HW_OK)
            r.n_suggestions++;
        else if (rc == HW_ENOTFOUND)
            rc = HW_OK; /* the index outlived its record: skip it */
    }
    hw_rpc_read_end(call, app);
    if (rc != HW_OK) {
        hw_rpc_fail(call, rc, "reading suggestions failed: %s", hw_strerror(rc));
        return;
    }
    if (!l.more)
        cur.len = 0;
    r.next_page_token = hw_rpc_next_token(call, &cur);
    hw_call_reply(call, &r.base);
}

/* --------------------------------------------- ApproveSuggestion, Reject */

typedef struct {
    hw_wctx h;
    const char *id;
    const char *question; /* the edited question; "" keeps the customer's */
    bool approve;
    Suggestion *s;
    bool doc_changed;
    hw_knowledge_doc_change change;
} decide_ctx;

static int decide_fn(hw_store_txn *w, void *arg)
{
    decide_ctx *c = arg;
    hw_arena *a = hw_call_arena(c->h.call);
    c->doc_changed = false;
    int rc = hw_suggestions_get(w, c->id, a, &c->s);
    if (rc == HW_ENOTFOUND)
        return hw_rpc_wfail(&c->h, rc, "no suggestion with id %s", c->id);
    if (rc != HW_OK)
        return rc;
    Suggestion *s = c->s;
    if (s->status != SST(PENDING))
        return hw_rpc_wfail(&c->h, HW_EPRECONDITION, "suggestion %s was %s already", s->id,
                            status_word(s->status));
    if (c->approve) {
        if (*c->question)
            s->question = (char *)c->question;
        const char *norm = hw_suggestions_normalize(a, s->question);
        bool holds;
        rc = norm ? doc_holds(w, s->doc->kind, s->doc->id, norm, a, &holds) : HW_ENOMEM;
        if (rc == HW_OK && !holds) {
            rc = hw_knowledge_add_alternate_in(w, &c->h.fx, s->doc->kind, s->doc->id, s->question, a,
                                               &c->change);
            c->doc_changed = rc == HW_OK;
        }
        if (rc == HW_ENOTFOUND)
            return hw_rpc_wfail(&c->h, rc, "%s %s of suggestion %s no longer exists", kind_what(s->doc->kind),
                                s->doc->id, s->id);
        if (rc == HW_EPRECONDITION)
            return hw_rpc_wfail(&c->h, rc, "%s %s has %d alternate questions already: remove one first",
                                kind_what(s->doc->kind), s->doc->id, HW_KNOWLEDGE_MAX_ALT);
        if (rc != HW_OK)
            return rc;
    }
    return decide(w, s, c->approve ? SST(APPROVED) : SST(REJECTED), hw_rpc_actor(c->h.call),
                  hw_effects_now_ms(&c->h.fx));
}

/* On the indexer thread: the new phrasing is searchable; answer. */
static void approve_indexed(hw_index_change *ch, int rc, const hw_status *st)
{
    (void)rc, (void)st;
    decide_ctx *c = ((hw_knowledge_doc_change *)ch->arg)->arg;
    hw_call_reply(c->h.call, &c->s->base);
}

static void decide_done(void *arg, int status)
{
    decide_ctx *c = arg;
    if (hw_rpc_write_failed(&c->h, status))
        return;
    if (!c->doc_changed) {
        hw_call_reply(c->h.call, &c->s->base);
        return;
    }
    if (hw_knowledge_index_change(c->h.app, &c->change, approve_indexed, c) != HW_OK)
        hw_call_fail(c->h.call, GRPC_STATUS_UNAVAILABLE,
                     "suggestion %s is approved, but the server is stopping: the question will be "
                     "searchable after the restart",
                     c->s->id);
}

static void start_decide(hw_call *call, void *app, const char *id, const char *question, bool approve)
{
    if (!hw_rpc_check_id(call, "id", id, 64, false))
        return;
    decide_ctx *c = hw_rpc_ctx_new(call, app, sizeof *c);
    if (!c)
        return;
    c->id = id;
    c->question = question;
    c->approve = approve;
    hw_rpc_write(&c->h, decide_fn, decide_done);
}

void hw_suggestions_approve(hw_call *call, const ProtobufCMessage *request, void *app)
{
    const Helpwire__V1__ApproveSuggestionRequest *req = (const void *)request;
    if (!hw_rpc_check_text(call, "question", req->question, 0, HW_SUGGESTIONS_MAX_QUESTION))
        return;
    if (*req->question) {
        char *norm = hw_suggestions_normalize(hw_call_arena(call), req->question);
        if (norm && !*norm) {
            hw_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "question: blank; leave it empty to keep the "
                                                             "customer's words");
            return;
        }
    }
    const char *question = trimmed(hw_call_arena(call), req->question);
    if (!question) {
        hw_call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "server out of memory");
        return;
    }
    start_decide(call, app, req->id, question, true);
}

void hw_suggestions_reject(hw_call *call, const ProtobufCMessage *request, void *app)
{
    const Helpwire__V1__RejectSuggestionRequest *req = (const void *)request;
    start_decide(call, app, req->id, "", false);
}
