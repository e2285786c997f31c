/*
 * reflection: see reflection.h. Files and symbols are kept in arrays
 * sorted by name and found with bsearch; there are a few dozen files and a
 * few hundred symbols, so no hash table is needed.
 */
#include "server/net/reflection.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "google/protobuf/descriptor.pb-c.h"
#include "grpc/reflection/v1alpha/reflection.pb-c.h"

extern const unsigned char hw_protoset[];
extern const size_t hw_protoset_len;

typedef struct {
    const char *name;
    const Google__Protobuf__FileDescriptorProto *fd;
    ProtobufCBinaryData bytes; /* serialized fd */
} file_entry;

typedef struct {
    char *name; /* full name, owned */
    size_t file;
} symbol_entry;

struct hw_reflection {
    Google__Protobuf__FileDescriptorSet *set;
    file_entry *files;
    size_t n_files;
    symbol_entry *symbols;
    size_t n_symbols, cap_symbols;
    char **services; /* full names, borrowed from symbols */
    size_t n_services;
};

static int by_file_name(const void *a, const void *b)
{
    return strcmp(((const file_entry *)a)->name, ((const file_entry *)b)->name);
}

static int by_symbol_name(const void *a, const void *b)
{
    return strcmp(((const symbol_entry *)a)->name, ((const symbol_entry *)b)->name);
}

static int add_symbol(hw_reflection *r, const char *prefix, const char *name, size_t file)
{
    if (r->n_symbols == r->cap_symbols) {
        size_t cap = r->cap_symbols ? r->cap_symbols * 2 : 256;
        symbol_entry *s = realloc(r->symbols, cap * sizeof *s);
        if (!s)
            return -1;
        r->symbols = s;
        r->cap_symbols = cap;
    }
    char *full = NULL;
    if (asprintf(&full, "%s%s%s", prefix, *prefix ? "." : "", name) < 0)
        return -1;
    r->symbols[r->n_symbols].name = full;
    r->symbols[r->n_symbols].file = file;
    r->n_symbols++;
    return 0;
}

static int add_messages(hw_reflection *r, const char *prefix, Google__Protobuf__DescriptorProto *const *msgs,
                        size_t n, size_t file)
{
    for (size_t i = 0; i < n; i++) {
        if (add_symbol(r, prefix, msgs[i]->name, file) != 0)
            return -1;
        const char *full = r->symbols[r->n_symbols - 1].name;
        if (add_messages(r, full, msgs[i]->nested_type, msgs[i]->n_nested_type, file) != 0)
            return -1;
        for (size_t e = 0; e < msgs[i]->n_enum_type; e++)
            if (add_symbol(r, full, msgs[i]->enum_type[e]->name, file) != 0)
                return -1;
    }
    return 0;
}

int hw_reflection_create(hw_reflection **out, char *err, size_t errlen)
{
    hw_reflection *r = calloc(1, sizeof *r);
    if (!r)
        goto nomem;
    r->set = google__protobuf__file_descriptor_set__unpack(NULL, hw_protoset_len, hw_protoset);
    if (!r->set) {
        snprintf(err, errlen, "the embedded descriptor set does not decode");
        goto fail;
    }
    r->n_files = r->set->n_file;
    r->files = calloc(r->n_files ? r->n_files : 1, sizeof *r->files);
    if (!r->files)
        goto nomem;
    for (size_t i = 0; i < r->n_files; i++) {
        const Google__Protobuf__FileDescriptorProto *fd = r->set->file[i];
        file_entry *f = &r->files[i];
        f->name = fd->name;
        f->fd = fd;
        f->bytes.len = google__protobuf__file_descriptor_proto__get_packed_size(fd);
        f->bytes.data = malloc(f->bytes.len ? f->bytes.len : 1);
        if (!f->bytes.data)
            goto nomem;
        google__protobuf__file_descriptor_proto__pack(fd, f->bytes.data);
    }
    qsort(r->files, r->n_files, sizeof *r->files, by_file_name);
    for (size_t i = 0; i < r->n_files; i++) {
        const Google__Protobuf__FileDescriptorProto *fd = r->files[i].fd;
        const char *pkg = fd->package ? fd->package : "";
        if (add_messages(r, pkg, fd->message_type, fd->n_message_type, i) != 0)
            goto nomem;
        for (size_t e = 0; e < fd->n_enum_type; e++)
            if (add_symbol(r, pkg, fd->enum_type[e]->name, i) != 0)
                goto nomem;
        for (size_t s = 0; s < fd->n_service; s++) {
            if (add_symbol(r, pkg, fd->service[s]->name, i) != 0)
                goto nomem;
            char *svc = r->symbols[r->n_symbols - 1].name;
            for (size_t m = 0; m < fd->service[s]->n_method; m++)
                if (add_symbol(r, svc, fd->service[s]->method[m]->name, i) != 0)
                    goto nomem;
            char **list = realloc(r->services, (r->n_services + 1) * sizeof *list);
            if (!list)
                goto nomem;
            r->services = list;
            r->services[r->n_services++] = svc;
        }
    }
    qsort(r->symbols, r->n_symbols, sizeof *r->symbols, by_symbol_name);
    *out = r;
    return 0;
nomem:
    snprintf(err, errlen, "out of memory loading the descriptor set");
fail:
    hw_reflection_destroy(r);
    return -1;
}

void hw_reflection_destroy(hw_reflection *r)
{
    if (!r)
        return;
    for (size_t i = 0; r->files && i < r->n_files; i++)
        free(r->files[i].bytes.data);
    for (size_t i = 0; i < r->n_symbols; i++)
        free(r->symbols[i].name);
    free(r->files);
    free(r->symbols);
    free(r->services);
    if (r->set)
        google__protobuf__file_descriptor_set__free_unpacked(r->set, NULL);
    free(r);
}

static long find_file(const hw_reflection *r, const char *name)
{
    file_entry key = {.name = name};
    const file_entry *f = bsearch(&key, r->files, r->n_files, sizeof *r->files, by_file_name);
    return f ? f - r->files : -1;
}

/* Adds file i and, first, its dependencies (each once) to the reply. */
static void collect(const hw_reflection *r, size_t i, bool *seen, ProtobufCBinaryData *out, size_t *n)
{
    if (seen[i])
        return;
    seen[i] = true;
    const Google__Protobuf__FileDescriptorProto *fd = r->files[i].fd;
    for (size_t d = 0; d < fd->n_dependency; d++) {
        long j = find_file(r, fd->dependency[d]);
        if (j >= 0)
            collect(r, (size_t)j, seen, out, n);
    }
    out[(*n)++] = r->files[i].bytes;
}

typedef Grpc__Reflection__V1alpha__ServerReflectionResponse Response;

static void send_error(hw_call *call, Response *resp, int code, const char *msg)
{
    Grpc__Reflection__V1alpha__ErrorResponse e = GRPC__REFLECTION__V1ALPHA__ERROR_RESPONSE__INIT;
    e.error_code = code;
    e.error_message = (char *)msg;
    resp->message_response_case =
        GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ERROR_RESPONSE;
    resp->error_response = &e;
    hw_call_stream_send(call, &resp->base);
}

void hw_reflection_info(hw_call *call, const ProtobufCMessage *request, const hw_reflection *r)
{
    const Grpc__Reflection__V1alpha__ServerReflectionRequest *req = (const void *)request;
    hw_arena *a = hw_call_arena(call);
    Response resp = GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_RESPONSE__INIT;
    resp.valid_host = req->host;
    resp.original_request = (Grpc__Reflection__V1alpha__ServerReflectionRequest *)req;
    long file = -1;
    switch (req->message_request_case) {
    case GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_LIST_SERVICES: {
        Grpc__Reflection__V1alpha__ListServiceResponse list =
            GRPC__REFLECTION__V1ALPHA__LIST_SERVICE_RESPONSE__INIT;
        Grpc__Reflection__V1alpha__ServiceResponse *items =
            hw_arena_calloc(a, r->n_services + 1, sizeof *items);
        Grpc__Reflection__V1alpha__ServiceResponse **ptrs =
            hw_arena_calloc(a, r->n_services + 1, sizeof *ptrs);
        if (!items || !ptrs) {
            hw_call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "server out of memory");
            return;
        }
        for (size_t i = 0; i < r->n_services; i++) {
            grpc__reflection__v1alpha__service_response__init(&items[i]);
            items[i].name = r->services[i];
            ptrs[i] = &items[i];
        }
        list.service = ptrs;
        list.n_service = r->n_services;
        resp.message_response_case =
            GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_LIST_SERVICES_RESPONSE;
        resp.list_services_response = &list;
        hw_call_stream_send(call, &resp.base);
        return;
    }
    case GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_BY_FILENAME:
        file = find_file(r, req->file_by_filename);
        if (file < 0) {
            send_error(call, &resp, GRPC_STATUS_NOT_FOUND, "no such file");
            return;
        }
        break;
    case GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL: {
        symbol_entry key = {.name = req->file_containing_symbol};
        const symbol_entry *s = bsearch(&key, r->symbols, r->n_symbols, sizeof *r->symbols, by_symbol_name);
        if (!s) {
            send_error(call, &resp, GRPC_STATUS_NOT_FOUND, "no such symbol");
            return;
        }
        file = (long)s->file;
        break;
    }
    case GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_EXTENSION:
        send_error(call, &resp, GRPC_STATUS_NOT_FOUND, "this API defines no extensions");
        return;
    case GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_ALL_EXTENSION_NUMBERS_OF_TYPE: {
        symbol_entry key = {.name = req->all_extension_numbers_of_type};
        if (!bsearch(&key, r->symbols, r->n_symbols, sizeof *r->symbols, by_symbol_name)) {
            send_error(call, &resp, GRPC_STATUS_NOT_FOUND, "no such type");
            return;
        }
        Grpc__Reflection__V1alpha__ExtensionNumberResponse ext =
            GRPC__REFLECTION__V1ALPHA__EXTENSION_NUMBER_RESPONSE__INIT;
        ext.base_type_name = req->all_extension_numbers_of_type;
        resp.message_response_case =
            GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ALL_EXTENSION_NUMBERS_RESPONSE;
        resp.all_extension_numbers_response = &ext;
        hw_call_stream_send(call, &resp.base);
        return;
    }
    default:
        send_error(call, &resp, GRPC_STATUS_INVALID_ARGUMENT, "message_request: set one of its fields");
        return;
    }
    bool *seen = hw_arena_calloc(a, r->n_files, sizeof *seen);
    ProtobufCBinaryData *files = hw_arena_calloc(a, r->n_files, sizeof *files);
    if (!seen || !files) {
        hw_call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "server out of memory");
        return;
    }
    size_t n = 0;
    collect(r, (size_t)file, seen, files, &n);
    Grpc__Reflection__V1alpha__FileDescriptorResponse fdr =
        GRPC__REFLECTION__V1ALPHA__FILE_DESCRIPTOR_RESPONSE__INIT;
    fdr.file_descriptor_proto = files;
    fdr.n_file_descriptor_proto = n;
    resp.message_response_case =
        GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_FILE_DESCRIPTOR_RESPONSE;
    resp.file_descriptor_response = &fdr;
    hw_call_stream_send(call, &resp.base);
}
