/*
 * refusal: which answers of a channel's API mean "this message will never
 * be delivered" (a blocked bot, a chat that does not exist, a customer
 * outside WhatsApp's 24-hour window) and which mean "try again later"
 * (rate limits, server errors). A permanent refusal is acknowledged to
 * helpwired as FAILED with the upstream's reason (outbox.h), so it stops
 * holding one of the channel's in-flight places; a transient one is
 * redelivered as before.
 *
 * One table per channel, data a reader scans in one screen (refusal.c).
 * Anything the tables do not name is transient: an unknown answer is
 * retried rather than dropped. Pure functions; any thread.
 */
#ifndef BR_REFUSAL_H
#define BR_REFUSAL_H

typedef enum {
    BR_REFUSAL_TRANSIENT = 0, /* redeliver later */
    BR_REFUSAL_PERMANENT,     /* acknowledge as FAILED */
} br_refusal;

/* A Bot API answer with HTTP status http_status ("error_code"): 400 and
 * 403 are permanent (a text too long, a chat not found, a bot blocked);
 * 429, 5xx, 408, 0 (no answer) and anything else transient. */
br_refusal br_refusal_telegram(long http_status);

/* A Cloud API error "code": 131026 (undeliverable), 131047 (outside the
 * 24-hour window), 131051 (unsupported message type) and 100 (invalid
 * parameter) are permanent; rate limits (130429, 131056, 80007) and
 * anything else transient. */
br_refusal br_refusal_whatsapp(long error_code);

#endif
