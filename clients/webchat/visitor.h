/*
 * visitor: what a web-chat visitor reads when a request fails. Every error
 * the web chat answers is one short line in the visitor's language, never
 * helpwired's or gRPC's text (addresses, "Connection refused", status
 * names): the cause goes to the bridge's log, and the page gets a stable
 * code and an HTTP status it can act on (503 with Retry-After: send again
 * later; 4xx: change the request).
 *
 * The language rule: Chinese when the visitor's own text holds a Han
 * character (what they write is what they read), else when the browser's
 * first Accept-Language tag is zh (zh, zh-CN, zh-Hant-TW, ...); English
 * otherwise. Two languages, because helpwired's help center and demo are
 * Chinese and English; a third is a column of the table in visitor.c.
 *
 * Not every line is an error: a message the bridge took while helpwired
 * could not take it (it is spooled, and routed once helpwired is back) is
 * answered with a notice, a line saying it was received and will be
 * answered (wc_visitor_notice_line).
 *
 * Pure functions over static tables: thread-safe, nothing to free.
 */
#ifndef WC_VISITOR_H
#define WC_VISITOR_H

#include <stdbool.h>

typedef enum { WC_LANG_EN = 0, WC_LANG_ZH = 1 } wc_lang;

/* What went wrong, as the visitor needs to know it. */
typedef enum {
    WC_VISITOR_TRY_LATER = 0, /* helpwired down, restarting, slow or overloaded: 503, Retry-After */
    WC_VISITOR_OUR_FAULT,     /* the bridge's own failure, or helpwired refusing the bridge: 500 or 502 */
    WC_VISITOR_BAD_REQUEST,   /* a request the page does not send (a bad session id, bad JSON): 400 */
    WC_VISITOR_TOO_LONG,      /* the text is over the limit: 413 */
    WC_VISITOR_REFUSED,       /* helpwired refused the message itself (INVALID_ARGUMENT): 400 */
    WC_VISITOR_LINK_INVALID,  /* a survey link not found: 404 */
    WC_VISITOR_ANSWERED,      /* a survey already answered: 409 */
    WC_VISITOR_CLOSED,        /* a survey no longer open: 410 */
    WC_VISITOR_BAD_RATING,    /* a rating outside 1..5: 400 */
    WC_VISITOR_NO_PAGE,       /* an unknown path or method: 404 or 405 */
    WC_VISITOR_BAD_EMAIL,     /* the email left outside business hours is not an address: 400 */
    WC_VISITOR_FILE_TOO_BIG,  /* an upload over --max-upload-bytes: 413 */
    WC_VISITOR_FILE_TYPE,     /* an upload of a type not in --upload-types: 415 */
    WC_VISITOR_FILE_EMPTY,    /* an upload with no bytes: 400 */
    WC_VISITOR_NO_FILE,       /* an attachment not in the visitor's conversation: 404 */
    WC_VISITOR_ORIGIN,        /* a site not in --allowed-origins: 403 */
    WC_VISITOR_N
} wc_visitor_error;

/* What the visitor is told when all went well, but not as usual. */
typedef enum {
    WC_VISITOR_QUEUED = 0, /* received and kept; helpwired will take it later: 202 */
    WC_VISITOR_NOTICE_N
} wc_visitor_notice;

/* The line for notice n in lang (static storage). */
const char *wc_visitor_notice_line(wc_visitor_notice n, wc_lang lang);

/* The stable code of notice n: "queued" (static storage). */
const char *wc_visitor_notice_code(wc_visitor_notice n);

/* The visitor's language by the rule above. accept_language (the header's
 * value) and text (UTF-8) may be NULL. */
wc_lang wc_visitor_lang(const char *accept_language, const char *text);

/* Whether s (UTF-8, may be NULL) holds a Han character: U+3400..U+4DBF,
 * U+4E00..U+9FFF, U+F900..U+FAFF or U+20000..U+2FA1F. */
bool wc_visitor_has_han(const char *s);

/* The line for e in lang (static storage). */
const char *wc_visitor_line(wc_visitor_error e, wc_lang lang);

/* The stable code the page may branch on: "unavailable", "internal",
 * "bad_request", "too_long", "refused", "not_found", "already_answered",
 * "closed", "bad_rating", "no_such_page", "bad_email", "file_too_big",
 * "file_type", "file_empty", "no_such_file", "origin_not_allowed" (static
 * storage). */
const char *wc_visitor_code(wc_visitor_error e);

/* Whether sending the same request again later may succeed. */
bool wc_visitor_retry(wc_visitor_error e);

/* How a failed helpwired call (a grpc_status_code) reads to the visitor,
 * and its HTTP status in *http. */
wc_visitor_error wc_visitor_from_status(int grpc_code, unsigned *http);

#endif
