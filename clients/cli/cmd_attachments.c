/*
 * cmd_attachments: `helpwire attachments put|get`, files in and out of
 * helpwired (helpwire.v1.Attachments) through clients/lib/attachments.h:
 * put uploads a file in pieces and prints its id, size and SHA-256 (the id
 * is what `tickets reply --attach` and the API's AddMessage name); get
 * writes an attachment's bytes to a file or stdout, checked against its
 * SHA-256. Also the helpers `tickets reply --attach` uses (the kind and
 * MIME type a file name suggests).
 */
#include <stdlib.h>
#include <string.h>

#include "clients/cli/cli.h"
#include "clients/cli/cmd_attachments.h"
#include "clients/lib/attachments.h"

/* The largest file the CLI reads or writes: 1 GiB (helpwired's own limit,
 * --attachment-max-bytes, is usually far lower and answers first). */
#define CLI_ATTACHMENT_MAX (1u << 30)

static const struct {
    const char *ext, *mime;
} mime_by_ext[] = {
    {"jpg", "image/jpeg"},  {"jpeg", "image/jpeg"},      {"png", "image/png"},   {"gif", "image/gif"},
    {"webp", "image/webp"}, {"pdf", "application/pdf"},  {"txt", "text/plain"},  {"csv", "text/csv"},
    {"mp4", "video/mp4"},   {"mov", "video/quicktime"},  {"mp3", "audio/mpeg"},  {"ogg", "audio/ogg"},
    {"m4a", "audio/mp4"},   {"zip", "application/zip"}, {"json", "application/json"},
};

const char *cli_attachment_mime_for(const char *path)
{
    const char *dot = strrchr(path, '.');
    if (dot && !strchr(dot, '/'))
        for (size_t i = 0; i < sizeof mime_by_ext / sizeof mime_by_ext[0]; i++)
            if (strcasecmp(dot + 1, mime_by_ext[i].ext) == 0)
                return mime_by_ext[i].mime;
    return "application/octet-stream";
}

static const struct {
    const char *name;
    Helpwire__V1__AttachmentKind kind;
} kinds[] = {
    {"image", HELPWIRE__V1__ATTACHMENT_KIND__ATTACHMENT_KIND_IMAGE},
    {"document", HELPWIRE__V1__ATTACHMENT_KIND__ATTACHMENT_KIND_DOCUMENT},
    {"audio", HELPWIRE__V1__ATTACHMENT_KIND__ATTACHMENT_KIND_AUDIO},
    {"voice", HELPWIRE__V1__ATTACHMENT_KIND__ATTACHMENT_KIND_VOICE},
    {"video", HELPWIRE__V1__ATTACHMENT_KIND__ATTACHMENT_KIND_VIDEO},
    {"sticker", HELPWIRE__V1__ATTACHMENT_KIND__ATTACHMENT_KIND_STICKER},
};

int cli_attachment_kind_parse(const char *s, Helpwire__V1__AttachmentKind *out)
{
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (strcasecmp(s, kinds[i].name) == 0) {
            *out = kinds[i].kind;
            return 0;
        }
    return -1;
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

int cli_attachment_upload(cli_ctx *ctx, const char *path, const char *kind_name, const char *mime,
                          Helpwire__V1__Attachment *out, hw_att_ref *ref)
{
    Helpwire__V1__AttachmentKind kind;
    if (!mime || !*mime)
        mime = cli_attachment_mime_for(path);
    if (kind_name) {
        if (cli_attachment_kind_parse(kind_name, &kind) != 0)
            return cli_usage_error(ctx, "--kind must be image, document, audio, voice, video or sticker");
    } else {
        kind = hw_att_kind_for_mime(mime);
    }
    unsigned char *data;
    size_t len;
    if (cli_read_file(ctx, path, CLI_ATTACHMENT_MAX, &data, &len) != 0)
        return CLI_EXIT_FAILED;
    if (len == 0) {
        free(data);
        return cli_fail(ctx, "%s: the file is empty", path);
    }
    const char *name = strcmp(path, "-") == 0 ? "" : base_name(path);
    hw_client_status st = {0};
    int rc = hw_att_upload(ctx->rpc, data, len, kind, mime, name, ref, &st);
    free(data);
    if (rc != 0)
        return cli_fail_status(ctx, &st);
    if (out) {
        helpwire__v1__attachment__init(out);
        out->id = strdup(ref->id);
        out->kind = kind;
        out->mime_type = (char *)mime;
        out->name = (char *)name;
        if (!out->id)
            return cli_fail(ctx, "out of memory");
    }
    return CLI_EXIT_OK;
}

static int run_put(cli_ctx *ctx)
{
    enum { OPT_KIND, OPT_MIME };
    hw_att_ref ref;
    int rc = cli_attachment_upload(ctx, ctx->pos[0], ctx->opt[OPT_KIND], ctx->opt[OPT_MIME], NULL, &ref);
    if (rc != CLI_EXIT_OK)
        return rc;
    if (ctx->json)
        return cli_emit_json(ctx, json_pack("{s:s,s:I,s:s}", "id", ref.id, "size_bytes", (json_int_t)ref.size_bytes,
                                            "sha256", ref.sha256));
    fprintf(ctx->out, "%s %llu %s\n", ref.id, (unsigned long long)ref.size_bytes, ref.sha256);
    return CLI_EXIT_OK;
}

static int run_get(cli_ctx *ctx)
{
    enum { OPT_OUT };
    const char *path = ctx->opt[OPT_OUT];
    hw_att_file f = {0};
    hw_client_status st = {0};
    if (hw_att_download(ctx->rpc, ctx->pos[0], CLI_ATTACHMENT_MAX, &f, &st) != 0)
        return cli_fail_status(ctx, &st);
    int rc = CLI_EXIT_OK;
    FILE *o = path && strcmp(path, "-") != 0 ? fopen(path, "wb") : ctx->out;
    if (!o) {
        rc = cli_fail(ctx, "%s: cannot create the file", path);
    } else {
        if (f.size && fwrite(f.data, 1, f.size, o) != f.size)
            rc = cli_fail(ctx, "%s: write failed", path ? path : "stdout");
        if (o != ctx->out && fclose(o) != 0 && rc == CLI_EXIT_OK)
            rc = cli_fail(ctx, "%s: write failed", path);
    }
    if (rc == CLI_EXIT_OK && o != ctx->out)
        fprintf(ctx->err, "%s: %zu bytes (%s, %s) sha256 %s\n", path, f.size, f.mime_type,
                *f.name ? f.name : "no name", f.sha256);
    hw_att_file_free(&f);
    return rc;
}

static const cli_opt put_opts[] = {
    {"kind", "K", "image, document, audio, voice, video or sticker. Default: from the MIME type."},
    {"mime", "M", "The MIME type, e.g. image/jpeg. Default: from the file name's extension."},
};
static const cli_opt get_opts[] = {
    {"out", "FILE", "Write the bytes to FILE (default: stdout)."},
};

const cli_command cli_attachments_commands[] = {
    {"attachments", "put", "FILE [--kind K] [--mime M]", "Upload a file",
     "Uploads FILE (- for stdin) in pieces and commits it; prints its id, size and SHA-256. The same bytes "
     "again give the same id. A file no message uses is removed 24 hours after it was stored.",
     put_opts, sizeof put_opts / sizeof put_opts[0], 1, 1, run_put},
    {"attachments", "get", "ID [--out FILE]", "Download an attachment",
     "Writes attachment ID's bytes to FILE or stdout, checked against its SHA-256.", get_opts,
     sizeof get_opts / sizeof get_opts[0], 1, 1, run_get},
};
const size_t cli_attachments_ncommands = sizeof cli_attachments_commands / sizeof cli_attachments_commands[0];
