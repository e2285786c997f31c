/*
 * refusal: the permanent-refusal tables of the channels (see refusal.h).
 * Only permanent answers are listed; whatever is missing is transient, so
 * a new or unknown error is retried rather than dropped.
 */
#include "clients/lib/refusal.h"

#include <stddef.h>

typedef struct {
    long code;
} refusal_row;

/* Telegram Bot API: the HTTP status, also the body's error_code. */
static const refusal_row telegram_permanent[] = {
    {400}, /* Bad Request: message is too long, chat not found, ... */
    {403}, /* Forbidden: bot was blocked by the user, user is deactivated, ... */
    {413}, /* Request Entity Too Large: a file over the Bot API's upload limit */
};

/* WhatsApp Cloud API: error.code. Transient on purpose (not listed):
 * 130429 throughput, 131056 pair rate limit, 80007 account rate limit. */
static const refusal_row whatsapp_permanent[] = {
    {131026}, /* Message undeliverable */
    {131047}, /* Re-engagement message: outside the 24-hour window */
    {131051}, /* Unsupported message type */
    {100},    /* Invalid parameter */
};

static br_refusal lookup(const refusal_row *rows, size_t n, long code)
{
    for (size_t i = 0; i < n; i++)
        if (rows[i].code == code)
            return BR_REFUSAL_PERMANENT;
    return BR_REFUSAL_TRANSIENT;
}

br_refusal br_refusal_telegram(long http_status)
{
    return lookup(telegram_permanent, sizeof telegram_permanent / sizeof *telegram_permanent, http_status);
}

br_refusal br_refusal_whatsapp(long error_code)
{
    return lookup(whatsapp_permanent, sizeof whatsapp_permanent / sizeof *whatsapp_permanent, error_code);
}
