/*
 * conversation: the customer's last message and the conversation's
 * language, from a ticket's messages (see conversation.h).
 */
#include "server/domain/conversation.h"

#include <stdio.h>
#include <string.h>

#include "server/base/errors.h"
#include "server/store/records.h"


const char *hw_conversation_text_locale(const char *text)
{
    if (!text)
        return NULL;
    size_t latin = 0;
    for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
        /* UTF-8 lead bytes of U+2E80..U+9FFF (CJK radicals to unified
         * ideographs), as hw_classify_locale reads them. */
        if (*p >= 0xE2 && *p <= 0xE9 && (*p > 0xE2 || p[1] >= 0xBA))
            return "zh";
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z'))
            latin++;
    }
    return latin >= HW_CONVERSATION_MIN_LATIN ? "en" : NULL;
}

const char *hw_conversation_short_locale(const char *tag)
{
    return tag && (tag[0] == 'z' || tag[0] == 'Z') && (tag[1] == 'h' || tag[1] == 'H') &&
                   (tag[2] == '\0' || tag[2] == '-' || tag[2] == '_')
               ? "zh"
               : "en";
}

const char *hw_conversation_locale(const hw_conversation *conv, const Helpwire__V1__Customer *cust)
{
    if (conv && conv->locale)
        return conv->locale;
    if (cust && cust->locale && cust->locale[0])
        return hw_conversation_short_locale(cust->locale);
    return "en";
}

typedef struct scan_state {
    hw_conversation *out;
    hw_arena *a;
    unsigned seen; /* messages looked at */
} scan_state;

static int scan_one(void *arg, const Helpwire__V1__TicketMessage *m)
{
    scan_state *st = arg;
    hw_conversation *out = st->out;
    if (++st->seen > HW_CONVERSATION_SCAN_MAX)
        return HW_STOP;
    if (m->kind != HELPWIRE__V1__MESSAGE_KIND__MESSAGE_KIND_CUSTOMER)
        return HW_OK;
    if (!out->has_customer_message) { /* newest first: this is the last one */
        out->has_customer_message = true;
        out->last_customer_unix_ms = m->created_unix_ms;
        out->last_customer_channel_message_id =
            hw_arena_strdup(st->a, m->channel_message_id ? m->channel_message_id : "");
        if (!out->last_customer_channel_message_id)
            return HW_ENOMEM;
    }
    out->locale = hw_conversation_text_locale(m->text); /* static strings */
    return out->locale ? HW_STOP : HW_OK;
}

int hw_conversation_scan(hw_store_txn *t, const char *ticket_id, hw_arena *a, hw_conversation *out)
{
    *out = (hw_conversation){.last_customer_channel_message_id = ""};
    hw_arena *scratch = hw_arena_create(1 << 12);
    if (!scratch)
        return HW_ENOMEM;
    scan_state st = {.out = out, .a = a};
    int rc = hw_store_ticket_message_foreach_newest(t, ticket_id, scratch, scan_one, &st);
    hw_arena_destroy(scratch);
    return rc;
}

static bool name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

static bool lang_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

int hw_conversation_parse_template(const char *spec, char *buf, size_t buflen, const char **name,
                                   const char **lang, char *err, size_t errlen)
{
    *name = *lang = NULL;
    size_t len = spec ? strlen(spec) : 0;
    if (len + 4 > buflen) {
        snprintf(err, errlen, "--whatsapp-template: too long (NAME at most 512 characters)");
        return HW_EINVALID;
    }
    memcpy(buf, spec, len + 1);
    char *colon = strchr(buf, ':');
    const char *l = "en";
    if (colon) {
        *colon = '\0';
        l = colon + 1;
    }
    size_t nl = strlen(buf), ll = strlen(l);
    if (nl < 1 || nl > 512) {
        snprintf(err, errlen, "--whatsapp-template: NAME must be 1 to 512 characters of a-z, 0-9 and _");
        return HW_EINVALID;
    }
    for (size_t i = 0; i < nl; i++)
        if (!name_char(buf[i])) {
            snprintf(err, errlen,
                     "--whatsapp-template: NAME \"%.64s\" may hold only a-z, 0-9 and _ (WhatsApp template names)",
                     buf);
            return HW_EINVALID;
        }
    bool lang_ok = ll >= 2 && ll <= 15;
    for (size_t i = 0; lang_ok && i < ll; i++)
        lang_ok = lang_char(l[i]);
    if (!lang_ok) {
        snprintf(err, errlen, "--whatsapp-template: LANG \"%.20s\" must be a language code such as en or zh_CN", l);
        return HW_EINVALID;
    }
    if (!colon) {
        memcpy(buf + nl + 1, "en", 3);
        l = buf + nl + 1;
    }
    *name = buf;
    *lang = l;
    return HW_OK;
}
