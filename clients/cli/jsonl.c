/*
 * jsonl: JSON Lines records into protobuf-c messages (see jsonl.h). Each
 * record kind is a table of its keys (name, string or list of strings,
 * where it lives in the message, whether required); one function walks a
 * table, so adding a field is one table line. Strings are copied with
 * malloc so that protobuf_c_message_free_unpacked releases the whole
 * message in one call, exactly like an unpacked reply.
 */
#include "clients/cli/jsonl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

typedef enum { FIELD_STRING, FIELD_STRING_LIST } field_kind;

typedef struct field_spec {
    const char *key;
    size_t offset;       /* char * (STRING) or char ** (STRING_LIST) */
    size_t count_offset; /* size_t count of a STRING_LIST */
    field_kind kind;
    bool required; /* present and non-empty */
} field_spec;

static const field_spec article_fields[] = {
    {"id", offsetof(Helpwire__V1__Article, id), 0, FIELD_STRING, false},
    {"title", offsetof(Helpwire__V1__Article, title), 0, FIELD_STRING, true},
    {"body", offsetof(Helpwire__V1__Article, body), 0, FIELD_STRING, true},
    {"locale", offsetof(Helpwire__V1__Article, locale), 0, FIELD_STRING, false},
    {"tags", offsetof(Helpwire__V1__Article, tags), offsetof(Helpwire__V1__Article, n_tags),
     FIELD_STRING_LIST, false},
    {"alternate_questions", offsetof(Helpwire__V1__Article, alternate_questions),
     offsetof(Helpwire__V1__Article, n_alternate_questions), FIELD_STRING_LIST, false},
};

static const field_spec faq_fields[] = {
    {"id", offsetof(Helpwire__V1__Faq, id), 0, FIELD_STRING, false},
    {"question", offsetof(Helpwire__V1__Faq, question), 0, FIELD_STRING, true},
    {"answer", offsetof(Helpwire__V1__Faq, answer), 0, FIELD_STRING, true},
    {"locale", offsetof(Helpwire__V1__Faq, locale), 0, FIELD_STRING, false},
    {"alternate_questions", offsetof(Helpwire__V1__Faq, alternate_questions),
     offsetof(Helpwire__V1__Faq, n_alternate_questions), FIELD_STRING_LIST, false},
};

static const field_spec synonym_set_fields[] = {
    {"id", offsetof(Helpwire__V1__SynonymSet, id), 0, FIELD_STRING, false},
    {"locale", offsetof(Helpwire__V1__SynonymSet, locale), 0, FIELD_STRING, false},
    {"terms", offsetof(Helpwire__V1__SynonymSet, terms), offsetof(Helpwire__V1__SynonymSet, n_terms),
     FIELD_STRING_LIST, false},
};

bool cli_jsonl_is_blank(const char *line, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (line[i] != ' ' && line[i] != '\t' && line[i] != '\r' && line[i] != '\n')
            return false;
    return true;
}

/* A key from the input, made safe to print: at most 40 bytes, anything
 * but printable ASCII shown as '?'. */
static void printable_key(const char *key, char *buf, size_t buflen)
{
    size_t i = 0;
    for (; key[i] && i + 1 < buflen && i < 40; i++) {
        unsigned char c = (unsigned char)key[i];
        buf[i] = key[i];
        if (c < 0x20 || c >= 0x7f)
            buf[i] = '?';
    }
    buf[i] = '\0';
}

static const field_spec *find_field(const field_spec *fields, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(fields[i].key, key) == 0)
            return &fields[i];
    return NULL;
}

/* Copies value (checked to be an array of strings) into the message's
 * list at spec. Returns 0, or -1 with err. */
static int set_list(ProtobufCMessage *msg, const field_spec *spec, json_t *value, char *err, size_t errlen)
{
    if (!json_is_array(value)) {
        snprintf(err, errlen, "\"%s\" must be an array of strings", spec->key);
        return -1;
    }
    size_t n = json_array_size(value);
    if (n == 0)
        return 0;
    char **items = calloc(n, sizeof *items);
    if (!items) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    /* Stored first, so that freeing the message frees what was copied so
     * far even when a later item fails. */
    *(char ***)((char *)msg + spec->offset) = items;
    for (size_t i = 0; i < n; i++) {
        json_t *item = json_array_get(value, i);
        if (!json_is_string(item)) {
            snprintf(err, errlen, "\"%s\"[%zu] must be a string", spec->key, i);
            return -1;
        }
        items[i] = strdup(json_string_value(item));
        if (!items[i]) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        *(size_t *)((char *)msg + spec->count_offset) = i + 1;
    }
    return 0;
}

/* Parses line into a new message of desc, following fields. */
static int parse_record(const char *line, size_t len, const ProtobufCMessageDescriptor *desc,
                        const field_spec *fields, size_t nfields, ProtobufCMessage **out, char *err,
                        size_t errlen)
{
    int rc = CLI_JSONL_BAD;
    json_t *root = NULL;
    ProtobufCMessage *msg = NULL;
    *out = NULL;

    if (cli_jsonl_is_blank(line, len))
        return CLI_JSONL_BLANK;
    json_error_t jerr;
    root = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        snprintf(err, errlen, "invalid JSON at column %d: %s", jerr.column, jerr.text);
        goto out;
    }
    if (!json_is_object(root)) {
        snprintf(err, errlen, "not a JSON object");
        goto out;
    }
    msg = malloc(desc->sizeof_message);
    if (!msg) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    protobuf_c_message_init(desc, msg);

    const char *key;
    json_t *value;
    json_object_foreach(root, key, value)
    {
        const field_spec *spec = find_field(fields, nfields, key);
        if (!spec) {
            char safe[48];
            printable_key(key, safe, sizeof safe);
            snprintf(err, errlen, "unknown key \"%s\"", safe);
            goto out;
        }
        if (spec->kind == FIELD_STRING_LIST) {
            if (set_list(msg, spec, value, err, errlen) != 0)
                goto out;
            continue;
        }
        if (!json_is_string(value)) {
            snprintf(err, errlen, "\"%s\" must be a string", spec->key);
            goto out;
        }
        char *copy = strdup(json_string_value(value));
        if (!copy) {
            snprintf(err, errlen, "out of memory");
            goto out;
        }
        *(char **)((char *)msg + spec->offset) = copy;
    }
    for (size_t i = 0; i < nfields; i++) {
        if (!fields[i].required)
            continue;
        const char *s = *(char **)((char *)msg + fields[i].offset);
        if (!s || !*s) {
            snprintf(err, errlen, "\"%s\" is required", fields[i].key);
            goto out;
        }
    }
    *out = msg;
    msg = NULL;
    rc = CLI_JSONL_RECORD;
out:
    if (msg)
        protobuf_c_message_free_unpacked(msg, NULL);
    json_decref(root);
    return rc;
}

int cli_jsonl_parse_article(const char *line, size_t len, Helpwire__V1__Article **out, char *err,
                            size_t errlen)
{
    ProtobufCMessage *m = NULL;
    int rc = parse_record(line, len, &helpwire__v1__article__descriptor, article_fields,
                          sizeof article_fields / sizeof article_fields[0], &m, err, errlen);
    *out = (Helpwire__V1__Article *)m;
    return rc;
}

int cli_jsonl_parse_faq(const char *line, size_t len, Helpwire__V1__Faq **out, char *err, size_t errlen)
{
    ProtobufCMessage *m = NULL;
    int rc = parse_record(line, len, &helpwire__v1__faq__descriptor, faq_fields,
                          sizeof faq_fields / sizeof faq_fields[0], &m, err, errlen);
    *out = (Helpwire__V1__Faq *)m;
    return rc;
}

int cli_jsonl_parse_synonym_set(const char *line, size_t len, Helpwire__V1__SynonymSet **out, char *err,
                                size_t errlen)
{
    ProtobufCMessage *m = NULL;
    int rc = parse_record(line, len, &helpwire__v1__synonym_set__descriptor, synonym_set_fields,
                          sizeof synonym_set_fields / sizeof synonym_set_fields[0], &m, err, errlen);
    *out = (Helpwire__V1__SynonymSet *)m;
    if (rc == CLI_JSONL_RECORD && (*out)->n_terms == 0) {
        snprintf(err, errlen, "\"terms\" is required (an array of 2 to 32 strings)");
        protobuf_c_message_free_unpacked(m, NULL);
        *out = NULL;
        return CLI_JSONL_BAD;
    }
    return rc;
}
