/*
 * stop: clean exit on SIGTERM/SIGINT without work in signal context.
 * br_stop_create blocks both signals in the calling thread (call it in main
 * before any other thread exists, so every thread inherits the mask) and
 * starts a small thread that takes them with sigtimedwait. A signal, or
 * br_stop_request, sets the flag and wakes every br_stop_sleep_ms sleeper,
 * then runs the registered hooks (e.g. to cancel a blocking call).
 *
 * One br_stop lives in main and is passed down; it replaces any global
 * "stop" variable.
 */
#ifndef BR_STOP_H
#define BR_STOP_H

#include <stdbool.h>

typedef struct br_stop br_stop;

/* Creates the stop object and its signal thread. Returns 0 or -1 (out of
 * memory or thread creation failed). */
int br_stop_create(br_stop **out);

/* Joins the signal thread and frees s. Hooks are not run. */
void br_stop_destroy(br_stop *s);

/* Requests a stop as a signal would. Thread-safe; idempotent. */
void br_stop_request(br_stop *s);

/* Whether a stop was requested. Thread-safe, lock-free. */
bool br_stop_requested(const br_stop *s);

/* The number of the signal that requested the stop, 0 if none did. */
int br_stop_signal(const br_stop *s);

/* Sleeps ms milliseconds or until a stop is requested. Returns true when a
 * stop was requested. Thread-safe. */
bool br_stop_sleep_ms(br_stop *s, int ms);

/* Registers fn(arg) to run once, on the thread that sees the stop request,
 * after the flag is set. At most 8 hooks; returns -1 beyond. Register
 * before the stop can happen; fn must be thread-safe and not block long. */
int br_stop_on_request(br_stop *s, void (*fn)(void *), void *arg);

#endif
