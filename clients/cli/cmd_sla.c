/*
 * cmd_sla: `helpwire sla put|list|delete`: the SLA policies (Sla service).
 * put replaces the whole policy, so every target the operator wants kept
 * must be given again; targets are business minutes of the ticket's queue.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "clients/cli/cli.h"
#include "clients/cli/fmt.h"
#include "clients/cli/table.h"
#include "helpwire/v1/sla.pb-c.h"

enum { MAX_MINUTES = 525600 };

static const char *const headers[] = {"NAME",       "PRIORITY", "QUEUE",  "FIRST REPLY", "NEXT REPLY",
                                      "RESOLUTION", "WARN",     "BREACH", "VERSION"};
enum { COLS = sizeof headers / sizeof headers[0] };

/* "90m" for a target, "-" for none. */
static const char *minutes(uint32_t m, char *buf, size_t len)
{
    if (!m)
        return "-";
    snprintf(buf, len, "%um", m);
    return buf;
}

static int add_row(cli_table *t, const Helpwire__V1__SlaPolicy *p)
{
    char prio[32], action[32], fr[16], nr[16], rs[16], warn[16], ver[24];
    snprintf(warn, sizeof warn, "%.2f", p->warn_fraction);
    snprintf(ver, sizeof ver, "%llu", (unsigned long long)p->version);
    const char *cells[COLS] = {
        p->name,
        cli_fmt_enum(&helpwire__v1__priority__descriptor, p->priority, prio, sizeof prio),
        *p->skill ? p->skill : "(any)",
        minutes(p->first_reply_minutes, fr, sizeof fr),
        minutes(p->next_reply_minutes, nr, sizeof nr),
        minutes(p->resolution_minutes, rs, sizeof rs),
        warn,
        cli_fmt_enum(&helpwire__v1__sla_breach_action__descriptor, p->breach_action, action, sizeof action),
        ver,
    };
    return cli_table_add(t, cells);
}

static int print_policies(cli_ctx *ctx, Helpwire__V1__SlaPolicy *const *ps, size_t n)
{
    if (ctx->json) {
        int rc = CLI_EXIT_OK;
        for (size_t i = 0; i < n && rc == CLI_EXIT_OK; i++)
            rc = cli_emit_message(ctx, &ps[i]->base);
        return rc;
    }
    cli_table *t = cli_table_new(COLS, headers);
    if (!t)
        return cli_fail(ctx, "out of memory");
    for (size_t i = 0; i < n; i++)
        if (add_row(t, ps[i]) != 0) {
            cli_table_free(t);
            return cli_fail(ctx, "out of memory");
        }
    cli_table_print(t, ctx->out);
    cli_table_free(t);
    return CLI_EXIT_OK;
}

static int run_put(cli_ctx *ctx)
{
    enum { OPT_PRIORITY, OPT_SKILL, OPT_FIRST, OPT_NEXT, OPT_RESOLUTION, OPT_WARN, OPT_ACTION };
    Helpwire__V1__SlaPolicy p = HELPWIRE__V1__SLA_POLICY__INIT, *reply = NULL;
    Helpwire__V1__PutSlaPolicyRequest req = HELPWIRE__V1__PUT_SLA_POLICY_REQUEST__INIT;
    char choices[128];
    int v;
    p.name = (char *)ctx->pos[0];
    if (!ctx->opt[OPT_PRIORITY])
        return cli_usage_error(ctx, "--priority P is required");
    if (cli_parse_enum(&helpwire__v1__priority__descriptor, ctx->opt[OPT_PRIORITY], &v) != 0)
        return cli_usage_error(
            ctx, "--priority must be one of %s",
            cli_fmt_enum_choices(&helpwire__v1__priority__descriptor, choices, sizeof choices));
    p.priority = (Helpwire__V1__Priority)v;
    if (ctx->opt[OPT_SKILL])
        p.skill = (char *)ctx->opt[OPT_SKILL];
    static const char *const names[] = {"--first-reply", "--next-reply", "--resolution"};
    uint32_t *targets[] = {&p.first_reply_minutes, &p.next_reply_minutes, &p.resolution_minutes};
    for (int i = 0; i < 3; i++) {
        const char *s = ctx->opt[OPT_FIRST + i];
        long long m;
        if (!s)
            continue;
        if (cli_args_parse_int(s, 0, MAX_MINUTES, &m) != 0)
            return cli_usage_error(ctx, "%s must be a number of minutes from 0 to %d", names[i], MAX_MINUTES);
        *targets[i] = (uint32_t)m;
    }
    if (!p.first_reply_minutes && !p.next_reply_minutes && !p.resolution_minutes)
        return cli_usage_error(ctx, "give at least one of --first-reply, --next-reply, --resolution");
    if (ctx->opt[OPT_WARN]) {
        char *end;
        errno = 0;
        double f = strtod(ctx->opt[OPT_WARN], &end);
        if (errno || end == ctx->opt[OPT_WARN] || *end || !(f > 0 && f < 1))
            return cli_usage_error(ctx, "--warn-fraction must be a number between 0 and 1 (e.g. 0.8)");
        p.warn_fraction = f;
    }
    if (ctx->opt[OPT_ACTION]) {
        if (cli_parse_enum(&helpwire__v1__sla_breach_action__descriptor, ctx->opt[OPT_ACTION], &v) != 0)
            return cli_usage_error(
                ctx, "--breach-action must be one of %s",
                cli_fmt_enum_choices(&helpwire__v1__sla_breach_action__descriptor, choices, sizeof choices));
        p.breach_action = (Helpwire__V1__SlaBreachAction)v;
    }
    req.policy = &p;
    if (cli_call(ctx, "/helpwire.v1.Sla/PutSlaPolicy", &req.base, &helpwire__v1__sla_policy__descriptor,
                 (ProtobufCMessage **)&reply) != CLI_EXIT_OK)
        return CLI_EXIT_FAILED;
    int rc = print_policies(ctx, &reply, 1);
    protobuf_c_message_free_unpacked(&reply->base, NULL);
    return rc;
}

static int run_list(cli_ctx *ctx)
{
    Helpwire__V1__ListSlaPoliciesRequest req = HELPWIRE__V1__LIST_SLA_POLICIES_REQUEST__INIT;
    Helpwire__V1__ListSlaPoliciesReply *reply = NULL;
    if (cli_call(ctx, "/helpwire.v1.Sla/ListSlaPolicies", &req.base,
                 &helpwire__v1__list_sla_policies_reply__descriptor,
                 (ProtobufCMessage **)&reply) != CLI_EXIT_OK)
        return CLI_EXIT_FAILED;
    int rc = print_policies(ctx, reply->policies, reply->n_policies);
    protobuf_c_message_free_unpacked(&reply->base, NULL);
    return rc;
}

static int run_delete(cli_ctx *ctx)
{
    Helpwire__V1__DeleteSlaPolicyRequest req = HELPWIRE__V1__DELETE_SLA_POLICY_REQUEST__INIT;
    Helpwire__V1__DeleteSlaPolicyReply *reply = NULL;
    req.name = (char *)ctx->pos[0];
    if (cli_call(ctx, "/helpwire.v1.Sla/DeleteSlaPolicy", &req.base,
                 &helpwire__v1__delete_sla_policy_reply__descriptor,
                 (ProtobufCMessage **)&reply) != CLI_EXIT_OK)
        return CLI_EXIT_FAILED;
    protobuf_c_message_free_unpacked(&reply->base, NULL);
    if (ctx->json) {
        json_t *o = json_pack("{s:s,s:b}", "name", req.name, "deleted", 1);
        return cli_emit_json(ctx, o);
    }
    fprintf(ctx->out, "deleted SLA policy %s\n", req.name);
    return CLI_EXIT_OK;
}

static const cli_opt put_opts[] = {
    {"priority", "P", "The tickets it applies to: low, normal, high, urgent (required)."},
    {"skill", "S", "Only tickets of queue S (wins over a policy for every queue)."},
    {"first-reply", "MIN", "First reply target in business minutes (0: none)."},
    {"next-reply", "MIN", "Next reply target after a customer message, in business minutes."},
    {"resolution", "MIN", "Resolution target in business minutes."},
    {"warn-fraction", "F", "SLA_WARNING when this fraction of a target has passed, in (0, 1). Default 0.8."},
    {"breach-action", "A", "escalate (default), bump_priority, reassign or notify."},
};

const cli_command cli_sla_commands[] = {
    {"sla", "put", "NAME --priority P [--skill S] [--first-reply MIN] [--next-reply MIN] [--resolution MIN]",
     "Create or replace an SLA policy",
     "Creates SLA policy NAME, or replaces all its fields. Targets count in the business hours of the "
     "ticket's queue; at least one is required.",
     put_opts, sizeof put_opts / sizeof put_opts[0], 1, 1, run_put},
    {"sla", "list", "", "List SLA policies", "Lists the SLA policies in name order.", NULL, 0, 0, 0,
     run_list},
    {"sla", "delete", "NAME", "Delete an SLA policy",
     "Deletes SLA policy NAME; tickets keep the clocks they have.", NULL, 0, 1, 1, run_delete},
};
const size_t cli_sla_ncommands = sizeof cli_sla_commands / sizeof cli_sla_commands[0];
