/*
 * clock: where the server reads the time of day. Every timestamp the
 * domain stores and every timer deadline comes from one hw_clock owned by
 * main (hw_app.clock), so tests can run a simulated week in seconds:
 *   - the real clock is CLOCK_REALTIME;
 *   - a file clock reads milliseconds since the epoch from a file, for
 *     tests that drive the real binary (helpwired --clock-file PATH): the
 *     test writes the file, the server sees the new time on its next read;
 *   - a manual clock is set by the test itself (unit tests).
 * Only wall-clock time is abstracted: durations measured for metrics and
 * timeouts keep using CLOCK_MONOTONIC directly.
 *
 * Threads: every function except create and destroy may be called from any
 * thread at the same time.
 */
#ifndef HW_CLOCK_H
#define HW_CLOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct hw_clock hw_clock;

/* The system's CLOCK_REALTIME.
 * @param[out] out the new clock (free with hw_clock_destroy)
 * @return HW_OK; HW_ENOMEM. */
int hw_clock_create_real(hw_clock **out);

/* Time read from the file at path: milliseconds since the epoch in decimal
 * (surrounding white space allowed). The file is read now (it must exist
 * and hold a valid time) and again whenever its mtime or size changes; a
 * later unreadable or invalid file keeps the last good time (and is logged
 * by nobody: tests write it atomically with a rename).
 * @param[out] out the new clock; err (size errlen) says why not on failure
 * @return HW_OK; HW_EINVALID (missing or bad file); HW_ENOMEM. */
int hw_clock_create_file(hw_clock **out, const char *path, char *err, size_t errlen);

/* For unit tests: a clock that stands at start_ms until hw_clock_set.
 * @return HW_OK; HW_ENOMEM. */
int hw_clock_create_manual(hw_clock **out, int64_t start_ms);

/* Moves a manual clock to now_ms (backwards too). Ignored for the other
 * kinds. Any thread. */
void hw_clock_set(hw_clock *c, int64_t now_ms);

/* Milliseconds since the Unix epoch. c NULL reads CLOCK_REALTIME (for tools
 * and tests that build a partial app). Any thread. */
int64_t hw_clock_now_ms(hw_clock *c);

/* True for the real clock (and for NULL): waiting threads may then sleep
 * until a deadline; with the others they poll (time can jump). */
bool hw_clock_is_real(const hw_clock *c);

/* Frees c (NULL is fine). No other thread may be using it. */
void hw_clock_destroy(hw_clock *c);

#endif
