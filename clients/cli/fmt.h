/*
 * fmt: API values as short human text and back, for tables and flags.
 * Enum values are shown without their type prefix and in lower case
 * ("TICKET_STATUS_OPEN" -> "open"); the prefix is derived from the enum's
 * zero value ("TICKET_STATUS_UNSPECIFIED"), so no per-enum table is kept
 * and new enum values work unchanged. Times are local wall-clock minutes.
 *
 * Pure functions writing into caller buffers; thread-safe.
 */
#ifndef CLI_FMT_H
#define CLI_FMT_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

/* Writes the short lower-case name of value v of enum d into buf ("open");
 * the number itself when v is not a value of d. Returns buf. */
const char *cli_fmt_enum(const ProtobufCEnumDescriptor *d, int v, char *buf, size_t len);

/* Parses a short name ("open", any case) or a full name
 * ("TICKET_STATUS_OPEN") of enum d into *v. The zero ("unspecified")
 * value is not accepted. Returns 0, or -1 for an unknown name. */
int cli_parse_enum(const ProtobufCEnumDescriptor *d, const char *text, int *v);

/* Writes the accepted short names of d as "a|b|c" into buf (for usage
 * errors). Returns buf. */
const char *cli_fmt_enum_choices(const ProtobufCEnumDescriptor *d, char *buf, size_t len);

/* "2024-05-01 14:03" in local time, or "-" for 0. Returns buf. */
const char *cli_fmt_time(int64_t unix_ms, char *buf, size_t len);

/* "512 B", "3.4 KiB", "1.2 GiB". Returns buf. */
const char *cli_fmt_bytes(uint64_t bytes, char *buf, size_t len);

/* "42s", "3m05s", "2h07m" for a duration in seconds. Returns buf. */
const char *cli_fmt_duration(double seconds, char *buf, size_t len);

/* Parses a document reference "article:ID" or "faq:ID" (kind in any
 * case): *kind receives the DocKind value (1 article, 2 FAQ) and *id
 * points into text after the colon. Returns 0, or -1 for any other form
 * (no colon, another kind, an empty id). */
int cli_parse_doc_ref(const char *text, int *kind, const char **id);

/* "article:ID" / "faq:ID" for (kind, id) into buf; "-" when kind is 0.
 * Returns buf. */
const char *cli_fmt_doc_ref(int kind, const char *id, char *buf, size_t len);

#endif
