/*
 * hub: the web chat's visitors in memory and the wake-ups of the readers
 * waiting for them. A session is a visitor (its id is an unguessable
 * token, also its channel_user_id in helpwired). What a visitor is sent is
 * kept on disk (history.h), not here: the hub only says that something
 * new was written for a session, by a counter per session (its version)
 * that wc_hub_notify raises and wc_hub_wait waits on. A reader reads the
 * version, looks in the history, and waits only if it found nothing, so a
 * notify between the two is never missed.
 *
 * Readers block in wc_hub_wait until the session's version moves, the hub
 * closes, or a timeout passes (for SSE heartbeats and long-poll).
 *
 * Bounded: at most max_sessions sessions (the least recently active is
 * dropped; a visitor coming back is made again by wc_hub_touch, with no
 * name). Thread-safe: one mutex and one condition variable.
 */
#ifndef WC_HUB_H
#define WC_HUB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct wc_hub wc_hub;

/* Creates an empty hub. NULL when out of memory. */
wc_hub *wc_hub_create(size_t max_sessions);

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

/* Raises session id's version (creating the session if needed) and wakes
 * its readers: something new was written for it. Returns 0 or -1. */
int wc_hub_notify(wc_hub *h, const char *id);

/* An agent is writing to session id (a TYPING signal from the outbox;
 * transient, never in the history): records author (copied, cut to 128
 * bytes, may be NULL) and for how long to show it, raises the session's
 * typing serial and version, and wakes its readers. Returns 0 or -1. */
int wc_hub_typing(wc_hub *h, const char *id, const char *author, int duration_ms);

/* Session id's typing state: *serial (0 when never), the author into
 * author (may be NULL), *left_ms how much longer to show it (0 when it
 * is over). Returns 0, or -1 when the session is unknown. */
int wc_hub_typing_get(wc_hub *h, const char *id, uint64_t *serial, char *author, size_t author_size,
                      int *left_ms);

/* Session id's version into *version. Returns 0, or -1 when the session is
 * unknown or the hub is closing. */
int wc_hub_version(wc_hub *h, const char *id, uint64_t *version);

/* Waits up to timeout_ms for session id's version to differ from seen.
 * Returns 1 when it did, 0 on timeout, -1 when the session is unknown or
 * the hub is closing. */
int wc_hub_wait(wc_hub *h, const char *id, uint64_t seen, int timeout_ms);

/* Wakes every reader and makes further waits return -1 (shutdown). */
void wc_hub_close(wc_hub *h);

#endif
