/*
 * cmd_agents: `helpwire agents list|put|presence` and `helpwire skills
 * list|schedule`: who takes which tickets, and when the queues are open. agents put replaces the whole agent
 * record (PutAgent keeps only presence and load), so every field the
 * operator wants kept must be given again; list follows page tokens to
 * the end.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clients/cli/cli.h"
#include "clients/cli/fmt.h"
#include "clients/cli/table.h"
#include "helpwire/v1/agents.pb-c.h"

enum { AGENTS_PAGE = 1000, AGENT_MAX_CAPACITY = 1000 };

static const char *const agent_headers[] = {"ID", "NAME", "PRESENCE", "LOAD", "SKILLS", "EMAIL"};
enum { AGENT_COLS = sizeof agent_headers / sizeof agent_headers[0] };

/* Joins items with ", " into buf (truncating). Returns buf. */
static const char *join(char *const *items, size_t n, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n && used < len; i++)
        used += (size_t)snprintf(buf + used, len - used, "%s%s", i ? ", " : "", items[i]);
    return buf;
}

static int add_agent_row(cli_table *t, const Helpwire__V1__Agent *a)
{
    char presence[32], load[32], skills[512];
    snprintf(load, sizeof load, "%u/%u", a->open_tickets, a->capacity);
    const char *cells[AGENT_COLS] = {
        a->id,
        a->name,
        cli_fmt_enum(&helpwire__v1__presence__descriptor, a->presence, presence, sizeof presence),
        load,
        a->n_skills ? join(a->skills, a->n_skills, skills, sizeof skills) : "-",
        *a->email ? a->email : "-",
    };
    return cli_table_add(t, cells);
}

/* Prints one agent as a one-row table, or as JSON. */
static int print_agent(cli_ctx *ctx, const Helpwire__V1__Agent *a)
{
    if (ctx->json)
        return cli_emit_message(ctx, &a->base);
    cli_table *t = cli_table_new(AGENT_COLS, agent_headers);
    if (!t || add_agent_row(t, a) != 0) {
        cli_table_free(t);
        return cli_fail(ctx, "out of memory");
    }
    cli_table_print(t, ctx->out);
    cli_table_free(t);
    return CLI_EXIT_OK;
}

/* One page of ListAgents: printed as JSON lines, or added to the table. */
static int agents_page(cli_ctx *ctx, const ProtobufCMessage *reply, size_t *n_items, void *table)
{
    const Helpwire__V1__ListAgentsReply *r = (const void *)reply;
    *n_items = r->n_agents;
    for (size_t i = 0; i < r->n_agents; i++) {
        if (!table) {
            int rc = cli_emit_message(ctx, &r->agents[i]->base);
            if (rc != CLI_EXIT_OK)
                return rc;
        } else if (add_agent_row(table, r->agents[i]) != 0) {
            return cli_fail(ctx, "out of memory");
        }
    }
    return CLI_EXIT_OK;
}

static int run_agents_list(cli_ctx *ctx)
{
    enum { OPT_SKILL, OPT_PRESENCE };
    cli_table *table = NULL;
    Helpwire__V1__ListAgentsRequest req = HELPWIRE__V1__LIST_AGENTS_REQUEST__INIT;
    if (ctx->opt[OPT_PRESENCE]) {
        int v;
        char choices[64];
        if (cli_parse_enum(&helpwire__v1__presence__descriptor, ctx->opt[OPT_PRESENCE], &v) != 0)
            return cli_usage_error(
                ctx, "--presence must be one of %s",
                cli_fmt_enum_choices(&helpwire__v1__presence__descriptor, choices, sizeof choices));
        req.presence = (Helpwire__V1__Presence)v;
    }
    if (ctx->opt[OPT_SKILL])
        req.skill = (char *)ctx->opt[OPT_SKILL];
    req.page_size = AGENTS_PAGE;
    if (!ctx->json && !(table = cli_table_new(AGENT_COLS, agent_headers)))
        return cli_fail(ctx, "out of memory");
    int rc = cli_call_pages(ctx, "/helpwire.v1.Agents/ListAgents", &req.base,
                            &helpwire__v1__list_agents_reply__descriptor, agents_page, table);
    if (rc == CLI_EXIT_OK && table)
        cli_table_print(table, ctx->out);
    cli_table_free(table);
    return rc;
}

static int run_agents_put(cli_ctx *ctx)
{
    enum { OPT_NAME, OPT_EMAIL, OPT_SKILLS, OPT_CAPACITY };
    int rc = CLI_EXIT_FAILED;
    Helpwire__V1__Agent agent = HELPWIRE__V1__AGENT__INIT, *reply = NULL;
    Helpwire__V1__PutAgentRequest req = HELPWIRE__V1__PUT_AGENT_REQUEST__INIT;
    char **skills = NULL;
    size_t nskills = 0;
    long long capacity = 0;

    if (!ctx->opt[OPT_NAME] || !*ctx->opt[OPT_NAME])
        return cli_usage_error(ctx, "--name N is required");
    if (ctx->opt[OPT_CAPACITY] &&
        cli_args_parse_int(ctx->opt[OPT_CAPACITY], 1, AGENT_MAX_CAPACITY, &capacity) != 0)
        return cli_usage_error(ctx, "--capacity must be a number from 1 to %d", AGENT_MAX_CAPACITY);
    if (ctx->opt[OPT_SKILLS] && cli_split_list(ctx->opt[OPT_SKILLS], &skills, &nskills) != 0)
        return cli_fail(ctx, "out of memory");
    agent.id = (char *)ctx->pos[0];
    agent.name = (char *)ctx->opt[OPT_NAME];
    if (ctx->opt[OPT_EMAIL])
        agent.email = (char *)ctx->opt[OPT_EMAIL];
    agent.skills = skills;
    agent.n_skills = nskills;
    agent.capacity = (uint32_t)capacity;
    req.agent = &agent;
    if (cli_call(ctx, "/helpwire.v1.Agents/PutAgent", &req.base, &helpwire__v1__agent__descriptor,
                 (ProtobufCMessage **)&reply) != CLI_EXIT_OK)
        goto out;
    rc = print_agent(ctx, reply);
out:
    if (reply)
        protobuf_c_message_free_unpacked(&reply->base, NULL);
    cli_free_list(skills, nskills);
    return rc;
}

static int run_agents_presence(cli_ctx *ctx)
{
    int v;
    char choices[64];
    if (cli_parse_enum(&helpwire__v1__presence__descriptor, ctx->pos[1], &v) != 0)
        return cli_usage_error(
            ctx, "the presence must be one of %s",
            cli_fmt_enum_choices(&helpwire__v1__presence__descriptor, choices, sizeof choices));
    Helpwire__V1__SetPresenceRequest req = HELPWIRE__V1__SET_PRESENCE_REQUEST__INIT;
    Helpwire__V1__SetPresenceReply *reply = NULL;
    req.agent_id = (char *)ctx->pos[0];
    req.presence = (Helpwire__V1__Presence)v;
    if (cli_call(ctx, "/helpwire.v1.Agents/SetPresence", &req.base,
                 &helpwire__v1__set_presence_reply__descriptor, (ProtobufCMessage **)&reply) != CLI_EXIT_OK)
        return CLI_EXIT_FAILED;
    int rc = CLI_EXIT_OK;
    if (ctx->json) {
        rc = cli_emit_message(ctx, &reply->base);
    } else {
        char presence[32], ids[1024];
        fprintf(ctx->out, "%s is now %s", req.agent_id,
                cli_fmt_enum(&helpwire__v1__presence__descriptor, req.presence, presence, sizeof presence));
        if (reply->n_assigned_ticket_ids)
            fprintf(ctx->out, "; assigned %s",
                    join(reply->assigned_ticket_ids, reply->n_assigned_ticket_ids, ids, sizeof ids));
        fputc('\n', ctx->out);
    }
    protobuf_c_message_free_unpacked(&reply->base, NULL);
    return rc;
}

static int run_skills_list(cli_ctx *ctx)
{
    Helpwire__V1__ListSkillsRequest req = HELPWIRE__V1__LIST_SKILLS_REQUEST__INIT;
    Helpwire__V1__ListSkillsReply *reply = NULL;
    if (cli_call(ctx, "/helpwire.v1.Agents/ListSkills", &req.base,
                 &helpwire__v1__list_skills_reply__descriptor, (ProtobufCMessage **)&reply) != CLI_EXIT_OK)
        return CLI_EXIT_FAILED;
    int rc = CLI_EXIT_OK;
    cli_table *t = NULL;
    if (ctx->json) {
        for (size_t i = 0; i < reply->n_skills && rc == CLI_EXIT_OK; i++)
            rc = cli_emit_message(ctx, &reply->skills[i]->base);
        goto out;
    }
    static const char *const headers[] = {"NAME", "PRIORITY", "KEYWORDS", "DESCRIPTION"};
    if (!(t = cli_table_new(4, headers))) {
        rc = cli_fail(ctx, "out of memory");
        goto out;
    }
    cli_table_set_max_width(t, 2, 60);
    for (size_t i = 0; i < reply->n_skills; i++) {
        const Helpwire__V1__Skill *s = reply->skills[i];
        char priority[32], keywords[2048], name[96];
        snprintf(name, sizeof name, "%s%s", s->name, s->is_default ? " (default)" : "");
        const char *cells[] = {
            name,
            cli_fmt_enum(&helpwire__v1__priority__descriptor, s->default_priority, priority, sizeof priority),
            join(s->keywords, s->n_keywords, keywords, sizeof keywords),
            s->description,
        };
        if (cli_table_add(t, cells) != 0) {
            rc = cli_fail(ctx, "out of memory");
            goto out;
        }
    }
    cli_table_print(t, ctx->out);
out:
    cli_table_free(t);
    protobuf_c_message_free_unpacked(&reply->base, NULL);
    return rc;
}

/* "Mon 2026-12-07 09:00" in zone (the CLI is one thread: TZ may be set
 * for the call), or "-" for 0. */
static const char *fmt_zone_time(int64_t unix_ms, const char *zone, char *buf, size_t len)
{
    if (unix_ms == 0) {
        snprintf(buf, len, "-");
        return buf;
    }
    const char *old = getenv("TZ");
    char *saved = old ? strdup(old) : NULL;
    if (zone && *zone)
        setenv("TZ", zone, 1);
    else
        setenv("TZ", "UTC", 1);
    tzset();
    time_t t = (time_t)(unix_ms / 1000);
    struct tm tm;
    if (!localtime_r(&t, &tm) || strftime(buf, len, "%a %Y-%m-%d %H:%M", &tm) == 0)
        snprintf(buf, len, "?");
    if (saved)
        setenv("TZ", saved, 1);
    else
        unsetenv("TZ");
    tzset();
    free(saved);
    return buf;
}

static int run_skills_schedule(cli_ctx *ctx)
{
    enum { OPT_DAYS };
    long long days = 7;
    if (ctx->opt[OPT_DAYS] && cli_args_parse_int(ctx->opt[OPT_DAYS], 1, 62, &days) != 0)
        return cli_usage_error(ctx, "--days must be a whole number from 1 to 62");
    Helpwire__V1__GetScheduleRequest req = HELPWIRE__V1__GET_SCHEDULE_REQUEST__INIT;
    Helpwire__V1__GetScheduleReply *reply = NULL;
    req.skill = (char *)ctx->pos[0];
    req.days = (uint32_t)days;
    if (cli_call(ctx, "/helpwire.v1.Agents/GetSchedule", &req.base, &helpwire__v1__get_schedule_reply__descriptor,
                 (ProtobufCMessage **)&reply) != CLI_EXIT_OK)
        return CLI_EXIT_FAILED;
    int rc = CLI_EXIT_OK;
    cli_table *t = NULL;
    if (ctx->json) {
        rc = cli_emit_message(ctx, &reply->base);
        goto out;
    }
    if (reply->always_open) {
        fprintf(ctx->out, "%s is always open\n", reply->skill);
        goto out;
    }
    char a[64], b[64];
    fprintf(ctx->out, "skill:      %s (times in %s)\n", reply->skill, reply->time_zone);
    fprintf(ctx->out, "now:        %s\n", reply->open ? "open" : "closed");
    fprintf(ctx->out, "next open:  %s\n", reply->open ? "now" : fmt_zone_time(reply->next_open_unix_ms,
                                                                                reply->time_zone, a, sizeof a));
    fprintf(ctx->out, "next close: %s\n\n", fmt_zone_time(reply->next_close_unix_ms, reply->time_zone, b, sizeof b));
    static const char *const headers[] = {"OPENS", "CLOSES"};
    if (!(t = cli_table_new(2, headers))) {
        rc = cli_fail(ctx, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < reply->n_intervals; i++) {
        const char *cells[] = {
            fmt_zone_time(reply->intervals[i]->start_unix_ms, reply->time_zone, a, sizeof a),
            fmt_zone_time(reply->intervals[i]->end_unix_ms, reply->time_zone, b, sizeof b),
        };
        if (cli_table_add(t, cells) != 0) {
            rc = cli_fail(ctx, "out of memory");
            goto out;
        }
    }
    cli_table_print(t, ctx->out);
out:
    cli_table_free(t);
    protobuf_c_message_free_unpacked(&reply->base, NULL);
    return rc;
}

static const cli_opt schedule_opts[] = {
    {"days", "N", "Open intervals over the next N days, 1 to 62. Default 7."},
};

static const cli_opt list_opts[] = {
    {"skill", "S", "Only agents serving skill S."},
    {"presence", "P", "Only agents in presence P: online, away, offline."},
};
static const cli_opt put_opts[] = {
    {"name", "N", "Display name (required)."},
    {"email", "E", "Email address."},
    {"skills", "A,B", "Skill queues the agent serves, comma-separated; each must exist."},
    {"capacity", "K", "Most open tickets at once, 1 to 1000. Default: the server's (5)."},
};

const cli_command cli_agents_commands[] = {
    {"agents", "list", "[--skill S] [--presence P]", "List agents with their presence and load",
     "Lists agents in id order; LOAD is open tickets / capacity.", list_opts,
     sizeof list_opts / sizeof list_opts[0], 0, 0, run_agents_list},
    {"agents", "put", "ID --name N [--skills a,b] [--capacity K]", "Create or replace an agent",
     "Creates agent ID, or replaces all its fields (presence and load are kept).", put_opts,
     sizeof put_opts / sizeof put_opts[0], 1, 1, run_agents_put},
    {"agents", "presence", "ID online|away|offline", "Set an agent's presence",
     "Sets the presence of agent ID; going online assigns waiting tickets of its queues.", NULL, 0, 2, 2,
     run_agents_presence},
    {"skills", "list", "", "List skill queues",
     "Lists the skill queues with their keywords and default priority; the default skill (where text "
     "that matches no skill goes) is marked (default).",
     NULL, 0, 0, 0, run_skills_list},
    {"skills", "schedule", "SKILL [--days N]", "Show a skill queue's business hours",
     "Says whether SKILL is open now, when it next opens and closes, and its open intervals over the next "
     "days, in the skill's time zone.",
     schedule_opts, sizeof schedule_opts / sizeof schedule_opts[0], 1, 1, run_skills_schedule},
};
const size_t cli_agents_ncommands = sizeof cli_agents_commands / sizeof cli_agents_commands[0];
