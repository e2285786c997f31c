/*
 * hub: the web chat's visitors and what is waiting for them. A session is
 * a visitor (its id is an unguessable token, also its channel_user_id in
 * helpwired); each holds the last messages delivered to it from the outbox,
 * keyed by their outbox sequence, which is increasing and never reused, so
 * it doubles as the SSE event id: a browser resuming with Last-Event-ID
 * (even across a bridge restart) gets exactly what it missed.
 *
 * Readers block in hub_wait until a session has events after a given id,
 * the hub closes, or a timeout passes (for SSE heartbeats and long-poll).
 *
 * Bounded: at most max_sessions sessions (the least recently active is
 * dropped) and the last max_events events per session.
 * Thread-safe: one mutex and one condition variable.
 */
#ifndef WC_HUB_H
#define WC_HUB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct wc_hub wc_hub;

/* An event as returned by hub_wait: malloc'd JSON text. */
typedef struct wc_event {
    uint64_t id;
    char *json;
} wc_event;

/* Creates an empty hub. NULL when out of memory. */
wc_hub *wc_hub_create(size_t max_sessions, size_t max_events);

/* Frees the hub; no thread may be using it. */
void wc_hub_destroy(wc_hub *h);

/* Whether id has the shape of a session id (22 to 64 URL-safe base64
 * characters). */
bool wc_hub_valid_id(const char *id);

/* Creates a new session with a random id (written to id_out, 23+ bytes)
 * and display name (copied, may be NULL). Returns 0 or -1. */
int wc_hub_create_session(wc_hub *h, const char *name, char *id_out, size_t id_size);

/* Makes sure session id exists (a visitor resuming after a bridge restart,
 * or the outbox delivering to it) and marks it active. Copies its display
 * name into name (may be NULL). Returns 0, or -1 for a malformed id or out
 * of memory. */
int wc_hub_touch(wc_hub *h, const char *id, char *name, size_t name_size);

/* Appends an event (json copied) to session id under event id seq,
 * creating the session if needed, and wakes its readers. A seq already
 * held is ignored (redelivery). Returns 0 or -1. */
int wc_hub_publish(wc_hub *h, const char *id, uint64_t seq, const char *json);

/* Waits up to timeout_ms for events of session id after event id after.
 * Returns the number of events (at most max) copied into out (free each
 * .json with free), 0 on timeout, -1 when the session is unknown or the hub
 * is closing. */
int wc_hub_wait(wc_hub *h, const char *id, uint64_t after, wc_event *out, int max, int timeout_ms);

/* Wakes every reader and makes further waits return -1 (shutdown). */
void wc_hub_close(wc_hub *h);

#endif
