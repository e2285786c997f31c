/*
 * reports_seed: writes tickets with SLA clocks into a data directory before
 * helpwired opens it, for the SLA report's integration test (the clocks
 * are the SLA module's to set; this writes them as stored records). Tests
 * only.
 *
 *   reports_seed DIR < LINES
 *     each line: CREATED_MS AGENT QUEUE CHANNEL PRIORITY FR NR RS
 *     AGENT/QUEUE "-" for none; CHANNEL and PRIORITY their enum numbers;
 *     FR, NR, RS the first reply, next reply and resolution clocks:
 *     m(et), b(reached), r(unning), p(aused) or - (no clock).
 *   Prints each ticket's id. Numbers come from the tickets' sequence, so
 *   they follow the lines' order (write them in creation order).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/store/records.h"

typedef struct {
    long long created;
    char agent[64], queue[64], states[3][4];
    int channel, priority;
    char id[32];
} seed_line;

static Helpwire__V1__SlaState state_of(char c)
{
    switch (c) {
    case 'm':
        return HELPWIRE__V1__SLA_STATE__SLA_STATE_MET;
    case 'b':
        return HELPWIRE__V1__SLA_STATE__SLA_STATE_BREACHED;
    case 'r':
        return HELPWIRE__V1__SLA_STATE__SLA_STATE_RUNNING;
    case 'p':
        return HELPWIRE__V1__SLA_STATE__SLA_STATE_PAUSED;
    default:
        return HELPWIRE__V1__SLA_STATE__SLA_STATE_UNSPECIFIED;
    }
}

static int seed_fn(hw_store_txn *w, void *arg)
{
    seed_line *l = arg;
    uint64_t number;
    int rc = hw_store_next_seq(w, "ticket", 1000, &number);
    if (rc != HW_OK)
        return rc;
    snprintf(l->id, sizeof l->id, "t-%llu", (unsigned long long)number);
    Helpwire__V1__Ticket t = HELPWIRE__V1__TICKET__INIT;
    t.id = l->id;
    t.number = number;
    t.customer_id = "c-seed";
    t.channel = (Helpwire__V1__Channel)l->channel;
    t.subject = "seeded";
    t.status = HELPWIRE__V1__TICKET_STATUS__TICKET_STATUS_OPEN;
    t.priority = (Helpwire__V1__Priority)l->priority;
    t.queue = strcmp(l->queue, "-") ? l->queue : "";
    t.assignee_agent_id = strcmp(l->agent, "-") ? l->agent : "";
    t.created_unix_ms = t.updated_unix_ms = l->created;
    t.version = 1;
    t.sla_policy = "seeded";
    Helpwire__V1__SlaClock clocks[3], *ptrs[3];
    for (int i = 0; i < 3; i++) {
        Helpwire__V1__SlaState st = state_of(l->states[i][0]);
        if (!st)
            continue;
        helpwire__v1__sla_clock__init(&clocks[t.n_sla]);
        clocks[t.n_sla].target = (Helpwire__V1__SlaTarget)(i + 1);
        clocks[t.n_sla].state = st;
        clocks[t.n_sla].started_unix_ms = l->created;
        ptrs[t.n_sla] = &clocks[t.n_sla];
        t.n_sla++;
    }
    t.sla = ptrs;
    return hw_store_ticket_put(w, &t, HW_PUT_CREATE, 0);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: reports_seed DIR < LINES\n");
        return 2;
    }
    hw_store *s = NULL;
    hw_store_options o = {.data_dir = argv[1]};
    char err[512], buf[512];
    int rc = hw_store_open(&s, &o, err, sizeof err);
    if (rc != HW_OK) {
        fprintf(stderr, "reports_seed: %s\n", err);
        return 1;
    }
    while (rc == HW_OK && fgets(buf, sizeof buf, stdin)) {
        seed_line l = {0};
        if (sscanf(buf, "%lld %63s %63s %d %d %3s %3s %3s", &l.created, l.agent, l.queue, &l.channel,
                   &l.priority, l.states[0], l.states[1], l.states[2]) != 8) {
            fprintf(stderr, "reports_seed: bad line: %s", buf);
            rc = HW_EINVALID;
            break;
        }
        rc = hw_store_write(s, seed_fn, &l);
        if (rc == HW_OK)
            printf("%s\n", l.id);
        else
            fprintf(stderr, "reports_seed: %s\n", hw_strerror(rc));
    }
    hw_store_close(s);
    return rc == HW_OK ? 0 : 1;
}
