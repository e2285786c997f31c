/*
 * cluster_fmt: see cluster_fmt.h. Two tables (table.h): the view as a
 * headerless key/value block, the members with a header. A match index is
 * only known to the leader, so on any other replica the column shows "-"
 * rather than a zero that would read as "nothing replicated".
 */
#include "clients/cli/cluster_fmt.h"

#include <stdbool.h>
#include <string.h>

#include "clients/cli/fmt.h"
#include "clients/cli/table.h"

static const char *const member_headers[] = {"ID",          "RAFT ADDRESS", "GRPC ADDRESS", "ROLE",
                                             "MATCH INDEX", "LEADER",       "SELF"};
enum { MEMBER_COLS = sizeof member_headers / sizeof member_headers[0] };

static const char *u64(uint64_t v, char *buf, size_t len)
{
    snprintf(buf, len, "%llu", (unsigned long long)v);
    return buf;
}

static int print_view(FILE *f, const Helpwire__V1__ClusterStatus *s)
{
    char state[32], self[96], leader[600], idx[4][24];
    snprintf(self, sizeof self, "%llu (%s, term %llu)", (unsigned long long)s->self_id,
             cli_fmt_enum(&helpwire__v1__raft_state__descriptor, s->state, state, sizeof state),
             (unsigned long long)s->term);
    if (!s->leader_id)
        snprintf(leader, sizeof leader, "none known");
    else if (s->leader_grpc_address && *s->leader_grpc_address)
        snprintf(leader, sizeof leader, "%llu (%s)", (unsigned long long)s->leader_id,
                 s->leader_grpc_address);
    else
        snprintf(leader, sizeof leader, "%llu", (unsigned long long)s->leader_id);
    const char *rows[][2] = {
        {"replicated", s->replicated ? "yes" : "no (single node)"},
        {"this replica", self},
        {"leader", leader},
        {"commit index", u64(s->commit_index, idx[0], sizeof idx[0])},
        {"applied index", u64(s->applied_index, idx[1], sizeof idx[1])},
        {"last log index", u64(s->last_log_index, idx[2], sizeof idx[2])},
        {"snapshot index", u64(s->snapshot_index, idx[3], sizeof idx[3])},
        {"writable", s->writable ? "yes" : "no"},
        {"message", s->message && *s->message ? s->message : "-"},
    };
    int rc = -1;
    cli_table *t = cli_table_new(2, NULL);
    if (!t)
        goto out;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        if (cli_table_add(t, rows[i]) != 0)
            goto out;
    cli_table_print(t, f);
    rc = 0;
out:
    cli_table_free(t);
    return rc;
}

static int print_members(FILE *f, const Helpwire__V1__ClusterStatus *s)
{
    int rc = -1;
    bool leader_view = s->state == HELPWIRE__V1__RAFT_STATE__RAFT_STATE_LEADER;
    cli_table *t = cli_table_new(MEMBER_COLS, member_headers);
    if (!t)
        goto out;
    for (size_t i = 0; i < s->n_members; i++) {
        const Helpwire__V1__Replica *r = s->members[i];
        char id[24], role[32], match[24];
        const char *cells[MEMBER_COLS] = {
            u64(r->id, id, sizeof id),
            *r->raft_address ? r->raft_address : "-",
            *r->grpc_address ? r->grpc_address : "-",
            cli_fmt_enum(&helpwire__v1__replica_role__descriptor, r->role, role, sizeof role),
            leader_view ? u64(r->match_index, match, sizeof match) : "-",
            r->id && r->id == s->leader_id ? "*" : "",
            r->id == s->self_id ? "*" : "",
        };
        if (cli_table_add(t, cells) != 0)
            goto out;
    }
    cli_table_print(t, f);
    rc = 0;
out:
    cli_table_free(t);
    return rc;
}

int cli_cluster_print(FILE *f, const Helpwire__V1__ClusterStatus *s)
{
    if (print_view(f, s) != 0)
        return -1;
    fputc('\n', f);
    return print_members(f, s);
}
