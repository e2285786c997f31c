/*
 * cmd_synonyms: `helpwire synonyms list|delete`: the synonym sets that
 * Search, Answer and Route apply to customers' questions (Knowledge
 * service). Sets are created or replaced in bulk with `helpwire import
 * synonyms FILE` (cmd_import.c).
 */
#include <stdlib.h>
#include <string.h>

#include "clients/cli/cli.h"
#include "clients/cli/table.h"
#include "helpwire/v1/knowledge.pb-c.h"

enum { SYNONYMS_PAGE = 500 };

static const char *const headers[] = {"ID", "LOCALE", "VERSION", "TERMS"};
enum { COLS = sizeof headers / sizeof headers[0] };

/* The terms joined with " | " into buf (cut with "..." when long). */
static const char *join_terms(char *const *terms, size_t n, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        int w = snprintf(buf + used, len - used, "%s%s", i ? " | " : "", terms[i]);
        if (w < 0 || (size_t)w >= len - used) {
            if (len > 4)
                memcpy(buf + len - 4, "...", 4);
            break;
        }
        used += (size_t)w;
    }
    return buf;
}

static int add_row(cli_table *t, const Helpwire__V1__SynonymSet *s)
{
    char ver[24], terms[512];
    snprintf(ver, sizeof ver, "%llu", (unsigned long long)s->version);
    const char *cells[COLS] = {s->id, *s->locale ? s->locale : "(any)", ver,
                               join_terms(s->terms, s->n_terms, terms, sizeof terms)};
    return cli_table_add(t, cells);
}

/* One page of ListSynonymSets: JSON lines, or rows of the table. */
static int sets_page(cli_ctx *ctx, const ProtobufCMessage *reply, size_t *n_items, void *table)
{
    const Helpwire__V1__ListSynonymSetsReply *r = (const void *)reply;
    *n_items = r->n_sets;
    for (size_t i = 0; i < r->n_sets; i++) {
        if (!table) {
            int rc = cli_emit_message(ctx, &r->sets[i]->base);
            if (rc != CLI_EXIT_OK)
                return rc;
        } else if (add_row(table, r->sets[i]) != 0) {
            return cli_fail(ctx, "out of memory");
        }
    }
    return CLI_EXIT_OK;
}

static int run_list(cli_ctx *ctx)
{
    enum { OPT_LOCALE };
    cli_table *table = NULL;
    Helpwire__V1__ListSynonymSetsRequest req = HELPWIRE__V1__LIST_SYNONYM_SETS_REQUEST__INIT;
    if (ctx->opt[OPT_LOCALE])
        req.locale = (char *)ctx->opt[OPT_LOCALE];
    req.page_size = SYNONYMS_PAGE;
    if (!ctx->json && !(table = cli_table_new(COLS, headers)))
        return cli_fail(ctx, "out of memory");
    int rc = cli_call_pages(ctx, "/helpwire.v1.Knowledge/ListSynonymSets", &req.base,
                            &helpwire__v1__list_synonym_sets_reply__descriptor, sets_page, table);
    if (rc == CLI_EXIT_OK && table)
        cli_table_print(table, ctx->out);
    cli_table_free(table);
    return rc;
}

static int run_delete(cli_ctx *ctx)
{
    Helpwire__V1__DeleteSynonymSetRequest req = HELPWIRE__V1__DELETE_SYNONYM_SET_REQUEST__INIT;
    Helpwire__V1__DeleteSynonymSetReply *reply = NULL;
    req.id = (char *)ctx->pos[0];
    if (cli_call(ctx, "/helpwire.v1.Knowledge/DeleteSynonymSet", &req.base,
                 &helpwire__v1__delete_synonym_set_reply__descriptor,
                 (ProtobufCMessage **)&reply) != CLI_EXIT_OK)
        return CLI_EXIT_FAILED;
    protobuf_c_message_free_unpacked(&reply->base, NULL);
    if (ctx->json)
        return cli_emit_json(ctx, json_pack("{s:s,s:b}", "id", req.id, "deleted", 1));
    fprintf(ctx->out, "deleted synonym set %s\n", req.id);
    return CLI_EXIT_OK;
}

static const cli_opt list_opts[] = {
    {"locale", "L", "Only sets of this locale, e.g. zh or en (sets for every language have none)."},
};

const cli_command cli_synonyms_commands[] = {
    {"synonyms", "list", "[--locale L]", "List synonym sets",
     "Lists the synonym sets in id order: words and phrases that Search, Answer and Route treat as one.\n"
     "Create or replace them with `helpwire import synonyms FILE`.",
     list_opts, sizeof list_opts / sizeof list_opts[0], 0, 0, run_list},
    {"synonyms", "delete", "ID", "Delete a synonym set",
     "Deletes synonym set ID; questions stop being expanded with it at once.", NULL, 0, 1, 1, run_delete},
};
const size_t cli_synonyms_ncommands = sizeof cli_synonyms_commands / sizeof cli_synonyms_commands[0];
