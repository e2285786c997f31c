/*
 * pbjson: any protobuf-c message as a jansson object, by reflection over
 * its descriptor: the CLI's --json output and the server's JSON exports
 * (Customers.ExportCustomer). Keys are the proto field
 * names (snake_case, e.g. "ticket_id"); every field is present, defaults
 * included, so scripts need not know proto3's omission rules; enums are
 * their full value names ("TICKET_STATUS_OPEN"); 64-bit integers are JSON
 * numbers (a uint64 above INT64_MAX, which helpwire never sends, becomes a
 * decimal string); bytes fields (helpwire.v1 has none) are summarised as
 * {"bytes": N}. Unset sub-messages are null.
 *
 * Pure and thread-safe; no I/O.
 */
#ifndef HW_PBJSON_H
#define HW_PBJSON_H

#include <jansson.h>
#include <protobuf-c/protobuf-c.h>

/* Converts msg. Returns a new reference (json_decref it), or NULL when out
 * of memory. */
json_t *hw_pbjson_from_message(const ProtobufCMessage *msg);

/* As hw_pbjson_from_message, leaving out the fields whose names are in
 * the NULL-terminated list skip (e.g. a secret-bearing URL). */
json_t *hw_pbjson_from_message_except(const ProtobufCMessage *msg, const char *const *skip);

/* Bytes one stored value of a field of type t takes in a protobuf-c
 * message struct (a repeated field's element), 0 for an unknown type. */
size_t hw_pb_value_size(ProtobufCType t);

#endif
