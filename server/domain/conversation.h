/*
 * conversation: what a ticket's conversation says about its customer, read
 * from the ticket's messages: when the customer last wrote (the WhatsApp
 * 24-hour window, read receipts) and in which language the conversation
 * is held (the texts helpwired writes to the customer: the survey
 * invitation, OutboundMessage.locale).
 *
 * The language: Customer.locale is the language of the customer's last
 * message anywhere, so a Chinese conversation that ends with "OK" or "👍"
 * would be answered in English. The conversation's language is that of
 * its newest customer message that tells one: any Chinese character says
 * "zh"; a Latin text says "en" only when it is more than a word or two
 * (at least HW_CONVERSATION_MIN_LATIN letters), so "ok", "thx", "5" and
 * emoji say nothing. When no message tells, the customer's own locale
 * decides, and English when it is unknown.
 *
 * Only "zh" and "en" exist: helpwired writes its texts in these two.
 * Nothing here writes. The scan reads the ticket's messages newest first
 * and stops at the first customer message that tells a language, or after
 * HW_CONVERSATION_SCAN_MAX messages: it runs inside write transactions
 * (an agent's reply, a close with a survey), so its cost must not grow
 * with the conversation's length. A long conversation whose last
 * HW_CONVERSATION_SCAN_MAX messages tell no language is answered in the
 * customer's own locale, and one whose last HW_CONVERSATION_SCAN_MAX
 * messages hold no customer message counts as having none (the WhatsApp
 * window closed).
 */
#ifndef HW_CONVERSATION_H
#define HW_CONVERSATION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "helpwire/v1/customers.pb-c.h"
#include "server/base/arena.h"
#include "server/store/store.h"

/* Latin letters a text needs to tell "en" (see the top comment). */
#define HW_CONVERSATION_MIN_LATIN 8

/* Messages the scan looks at, at most (newest first). */
#define HW_CONVERSATION_SCAN_MAX 200

/* The WhatsApp customer-service window: a business may write freely for
 * this long after the customer's last message. */
#define HW_CONVERSATION_WINDOW_MS (24LL * 3600 * 1000)

typedef struct hw_conversation {
    bool has_customer_message;
    int64_t last_customer_unix_ms;            /* 0 when none */
    const char *last_customer_channel_message_id; /* "" when none or not recorded; in the arena given */
    const char *locale;                       /* "zh", "en", or NULL when no message tells */
} hw_conversation;

/**
 * Reads ticket_id's messages (any transaction: a worker's reader or the
 * writer's) and fills out. Strings are allocated in a.
 * @return HW_OK (a ticket without messages gives an empty out); HW_ENOMEM;
 *   store codes.
 */
int hw_conversation_scan(hw_store_txn *t, const char *ticket_id, hw_arena *a, hw_conversation *out);

/* The language text tells: "zh", "en", or NULL (nothing: empty, digits,
 * emoji, a short Latin word). Pure; any thread. */
const char *hw_conversation_text_locale(const char *text);

/* "zh" or "en" for a locale tag ("zh-CN" -> "zh"; anything else, NULL or
 * "" -> "en"). Pure; borrowed static strings. */
const char *hw_conversation_short_locale(const char *tag);

/* The conversation's language: conv's (may be NULL), else the customer's
 * (cust may be NULL), else "en". Returns "zh" or "en" (static). */
const char *hw_conversation_locale(const hw_conversation *conv, const Helpwire__V1__Customer *cust);

/* --whatsapp-template NAME[:LANG]: NAME is [a-z0-9_]{1,512} (WhatsApp's
 * template names), LANG a language code of 2 to 15 characters of
 * [A-Za-z0-9_-] ("en", "zh_CN"), "en" when omitted. name and lang point
 * into buf (size buflen, at least strlen(spec) + 4).
 * @return HW_OK; HW_EINVALID with one line in err naming the problem. */
int hw_conversation_parse_template(const char *spec, char *buf, size_t buflen, const char **name,
                                   const char **lang, char *err, size_t errlen);

#endif
