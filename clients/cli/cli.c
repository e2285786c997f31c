/*
 * cli: output and error helpers shared by the commands (see cli.h).
 */
#include "clients/cli/cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "server/base/pbjson.h"
#include "clients/cli/table.h"

int cli_fail_status(cli_ctx *ctx, const hw_client_status *st)
{
    /* The message comes from the server: clean it before it reaches a
     * terminal. */
    char *clean = cli_text_clean(st->message, false, 0);
    fprintf(ctx->err, "helpwire: %s: %s\n", hw_client_status_name(st->code), clean ? clean : "");
    free(clean);
    return CLI_EXIT_FAILED;
}

/* Prints "helpwire: <fmt...>\n" to f. */
static void vreport(FILE *f, const char *fmt, va_list ap)
{
    char msg[1024];
    vsnprintf(msg, sizeof msg, fmt, ap);
    fprintf(f, "helpwire: %s\n", msg);
}

int cli_fail(cli_ctx *ctx, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vreport(ctx->err, fmt, ap);
    va_end(ap);
    return CLI_EXIT_FAILED;
}

int cli_usage_error(cli_ctx *ctx, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vreport(ctx->err, fmt, ap);
    va_end(ap);
    if (ctx->cmd)
        fprintf(ctx->err, "Try 'helpwire %s%s%s --help'.\n", ctx->cmd->group, ctx->cmd->name ? " " : "",
                ctx->cmd->name ? ctx->cmd->name : "");
    else
        fprintf(ctx->err, "Try 'helpwire --help'.\n");
    return CLI_EXIT_USAGE;
}

int cli_call(cli_ctx *ctx, const char *method, const ProtobufCMessage *request,
             const ProtobufCMessageDescriptor *reply_desc, ProtobufCMessage **reply)
{
    hw_client_status st;
    if (hw_client_unary(ctx->rpc, method, request, reply_desc, reply, 0, &st) != 0)
        return cli_fail_status(ctx, &st);
    return CLI_EXIT_OK;
}

int cli_call_pages(cli_ctx *ctx, const char *method, ProtobufCMessage *request,
                   const ProtobufCMessageDescriptor *reply_desc, cli_page_fn on_page, void *arg)
{
    const ProtobufCFieldDescriptor *tf =
        protobuf_c_message_descriptor_get_field_by_name(request->descriptor, "page_token");
    const ProtobufCFieldDescriptor *nf =
        protobuf_c_message_descriptor_get_field_by_name(reply_desc, "next_page_token");
    if (!tf || !nf || tf->type != PROTOBUF_C_TYPE_STRING || nf->type != PROTOBUF_C_TYPE_STRING)
        return cli_fail(ctx, "%s is not a paginated list", method);
    char **token = (char **)((char *)request + tf->offset);
    char *page_token = NULL;
    ProtobufCMessage *reply = NULL;
    int rc;
    for (;;) {
        *token = page_token ? page_token : (char *)"";
        if ((rc = cli_call(ctx, method, request, reply_desc, &reply)) != CLI_EXIT_OK)
            break;
        size_t n = 0;
        if ((rc = on_page(ctx, reply, &n, arg)) != CLI_EXIT_OK) {
            if (rc == CLI_PAGES_DONE)
                rc = CLI_EXIT_OK;
            break;
        }
        const char *next = *(char *const *)((const char *)reply + nf->offset);
        free(page_token);
        page_token = NULL;
        if (!next || !*next || n == 0)
            break;
        if (!(page_token = strdup(next))) {
            rc = cli_fail(ctx, "out of memory");
            break;
        }
        protobuf_c_message_free_unpacked(reply, NULL);
        reply = NULL;
    }
    *token = (char *)"";
    if (reply)
        protobuf_c_message_free_unpacked(reply, NULL);
    free(page_token);
    return rc;
}

int cli_emit_json(cli_ctx *ctx, json_t *obj)
{
    if (!obj)
        return cli_fail(ctx, "out of memory");
    int rc = json_dumpf(obj, ctx->out, JSON_COMPACT) == 0 ? CLI_EXIT_OK : CLI_EXIT_FAILED;
    fputc('\n', ctx->out);
    json_decref(obj);
    if (rc != CLI_EXIT_OK)
        return cli_fail(ctx, "cannot write the output");
    return CLI_EXIT_OK;
}

int cli_emit_message(cli_ctx *ctx, const ProtobufCMessage *msg)
{
    return cli_emit_json(ctx, hw_pbjson_from_message(msg));
}

int cli_split_list(const char *s, char ***items, size_t *n)
{
    *items = NULL;
    *n = 0;
    size_t cap = 1;
    for (const char *p = s; *p; p++)
        cap += *p == ',';
    char **v = calloc(cap, sizeof *v);
    if (!v)
        return -1;
    size_t k = 0;
    const char *start = s;
    for (;;) {
        const char *end = strchr(start, ',');
        size_t len = end ? (size_t)(end - start) : strlen(start);
        while (len && (*start == ' ' || *start == '\t')) {
            start++;
            len--;
        }
        while (len && (start[len - 1] == ' ' || start[len - 1] == '\t'))
            len--;
        if (len) {
            v[k] = strndup(start, len);
            if (!v[k]) {
                cli_free_list(v, k);
                return -1;
            }
            k++;
        }
        if (!end)
            break;
        start = end + 1;
    }
    *items = v;
    *n = k;
    return 0;
}

void cli_free_list(char **items, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(items[i]);
    free(items);
}

size_t cli_opt_all(const cli_ctx *ctx, const char *name, const char **out, size_t max)
{
    size_t n = 0, nl = strlen(name);
    for (int i = 0; i < ctx->argc && n < max; i++) {
        const char *a = ctx->argv[i];
        if (strcmp(a, "--") == 0)
            break;
        if (strncmp(a, "--", 2) != 0 || strncmp(a + 2, name, nl) != 0)
            continue;
        if (a[2 + nl] == '=')
            out[n++] = a + 3 + nl;
        else if (a[2 + nl] == '\0' && i + 1 < ctx->argc)
            out[n++] = ctx->argv[++i];
    }
    return n;
}

int cli_read_file(cli_ctx *ctx, const char *path, size_t max_bytes, unsigned char **data, size_t *len)
{
    *data = NULL;
    *len = 0;
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!f) {
        cli_fail(ctx, "%s: %s", path, strerror(errno));
        return -1;
    }
    size_t cap = 64 * 1024, n = 0;
    unsigned char *buf = malloc(cap);
    int rc = buf ? 0 : -1;
    while (rc == 0) {
        if (n == cap) {
            if (cap > max_bytes) {
                cli_fail(ctx, "%s: larger than %zu bytes", path, max_bytes);
                rc = -1;
                break;
            }
            unsigned char *nb = realloc(buf, cap * 2);
            if (!nb) {
                rc = -1;
                break;
            }
            buf = nb, cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) {
            if (ferror(f)) {
                cli_fail(ctx, "%s: %s", path, strerror(errno));
                rc = -1;
            }
            break;
        }
    }
    if (f != stdin)
        fclose(f);
    if (rc == 0 && n > max_bytes) {
        cli_fail(ctx, "%s: larger than %zu bytes", path, max_bytes);
        rc = -1;
    }
    if (rc != 0) {
        if (!buf)
            cli_fail(ctx, "out of memory");
        free(buf);
        return -1;
    }
    *data = buf;
    *len = n;
    return 0;
}
