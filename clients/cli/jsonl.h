/*
 * jsonl: one line of an import file (JSON Lines) into a knowledge record.
 * Articles are {"id","title","body","locale","tags"}, FAQs are
 * {"id","question","answer","locale","alternate_questions"} and synonym
 * sets {"id","locale","terms"}; "title" and "body" (or "question" and
 * "answer", or a non-empty "terms") are required, the rest optional; list
 * fields are arrays of strings. Unknown keys, duplicate
 * keys and values of the wrong type are errors, so a typo in a field name
 * is reported instead of silently importing an empty field.
 *
 * Pure functions, no I/O: the import command reads lines and reports the
 * line numbers. Size limits are the server's to enforce (it names the
 * field in INVALID_ARGUMENT); here only the shape is checked. Error texts
 * name keys and positions, never field values; a JSON syntax error may
 * quote a few characters near it (callers clean texts for the terminal).
 */
#ifndef CLI_JSONL_H
#define CLI_JSONL_H

#include <stdbool.h>
#include <stddef.h>

#include "helpwire/v1/knowledge.pb-c.h"

enum { CLI_JSONL_RECORD = 0, CLI_JSONL_BLANK = 1, CLI_JSONL_BAD = -1 };

/* Whether line[0..len) holds only whitespace (such lines are skipped). */
bool cli_jsonl_is_blank(const char *line, size_t len);

/* Parses line[0..len) (no NUL needed) as an article.
 * @param[out] out  on CLI_JSONL_RECORD a malloc'd article owned by the
 *                  caller: free with protobuf_c_message_free_unpacked(
 *                  &(*out)->base, NULL); NULL otherwise
 * @return CLI_JSONL_RECORD; CLI_JSONL_BLANK for a whitespace-only line;
 *         CLI_JSONL_BAD with the reason in err (invalid JSON with its
 *         column, not an object, missing or mistyped field, unknown key),
 *         or when out of memory. */
int cli_jsonl_parse_article(const char *line, size_t len, Helpwire__V1__Article **out, char *err,
                            size_t errlen);

/* The same for an FAQ entry. */
int cli_jsonl_parse_faq(const char *line, size_t len, Helpwire__V1__Faq **out, char *err, size_t errlen);

/* The same for a synonym set ("terms" must be a non-empty array). */
int cli_jsonl_parse_synonym_set(const char *line, size_t len, Helpwire__V1__SynonymSet **out, char *err,
                                size_t errlen);

#endif
