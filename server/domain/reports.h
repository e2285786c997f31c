/*
 * reports: the Reports service. GetCsatReport counts the surveys of
 * tickets closed in a range (a survey is sent in the close's write, so the
 * surveys' sent-time index is the close-time index); GetSlaReport counts
 * the SLA clocks of tickets created in a range. Both group the figures by
 * agent, queue, channel or calendar period (day, ISO week, month, in an
 * IANA time zone) and add a total.
 *
 * The handlers are thin: they validate the request (hw_report_new), run
 * one read transaction over the range (hw_report_scan_*) and reply with
 * the built message (hw_report_csat / hw_report_sla). The accumulator is
 * its own type so that unit tests and the benchmark can feed it records
 * without a server.
 */
#ifndef HW_REPORTS_H
#define HW_REPORTS_H

#include <stddef.h>

#include "helpwire/v1/reports.pb-c.h"
#include "helpwire/v1/surveys.pb-c.h"
#include "helpwire/v1/tickets.pb-c.h"
#include "server/base/arena.h"
#include "server/net/net.h"
#include "server/store/store.h"

/* Longest range a report covers. */
#define HW_REPORT_MAX_DAYS 366

/* Rows used for surveys or tickets without an agent / a queue. */
#define HW_REPORT_NO_AGENT "(unassigned)"
#define HW_REPORT_NO_QUEUE "(none)"

/* One report being computed: the request's range, grouping and filters,
 * the zone's offsets and the rows so far. Opaque; one thread at a time. */
typedef struct hw_report hw_report;

/* Checks req and starts an empty report. req is copied (the caller may
 * free it afterwards). Errors name the field, e.g. "to_unix_ms: must be
 * after from_unix_ms", "time_zone: unknown zone \"Mars/Base\"".
 * is_sla: the SLA report (the only one taking priority).
 * Rows of every period of the range exist from the start (zero), so a
 * report by period has no holes.
 * The zone is compiled with hours.h (the system's tzdata).
 * @return HW_OK; HW_EINVALID (message in err); HW_ENOMEM. */
int hw_report_new(const Helpwire__V1__ReportRequest *req, bool is_sla, hw_report **out, char *err,
                  size_t errlen);

/* Frees r; NULL is a no-op. */
void hw_report_free(hw_report *r);

/* Adds one survey when it was sent in the range and passes the filters.
 * @return HW_OK; HW_ENOMEM. */
int hw_report_add_survey(hw_report *r, const Helpwire__V1__Survey *sv);

/* Adds a ticket's clocks when it was created in the range and passes the
 * filters: MET counts as met, BREACHED as breached, RUNNING and PAUSED as
 * open. @return HW_OK; HW_ENOMEM. */
int hw_report_add_ticket(hw_report *r, const Helpwire__V1__Ticket *tk);

/* Feed r from the store (any transaction): the surveys sent in the range,
 * or the tickets created in it (records.h's range scans, never the whole
 * store). @return HW_OK or the store's code. */
int hw_report_scan_csat(hw_report *r, hw_store_txn *t);
int hw_report_scan_sla(hw_report *r, hw_store_txn *t);

/* The reply, allocated in a: rows in key order (periods in time order),
 * and the total. SLA rows: one per target (first reply, next reply,
 * resolution) per key, and three total rows.
 * @return HW_OK; HW_ENOMEM. */
int hw_report_csat(const hw_report *r, hw_arena *a, Helpwire__V1__CsatReport **out);
int hw_report_sla(const hw_report *r, hw_arena *a, Helpwire__V1__SlaReport **out);

/* Method-table handlers; app is a hw_app. Role: agent. */
void hw_reports_csat(hw_call *call, const ProtobufCMessage *request, void *app);
void hw_reports_sla(hw_call *call, const ProtobufCMessage *request, void *app);

#endif
