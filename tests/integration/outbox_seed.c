/*
 * outbox_seed: prepares a data directory for the outbox and survey
 * integration test before helpwired opens it, through the same write
 * functions the ticket code calls (hw_outbox_append_in,
 * hw_surveys_create_in), so the server then streams and answers real
 * records without needing the ticket API. Tests only.
 *
 *   outbox_seed DIR outbox CHANNEL N [USER]
 *                                         appends N agent replies on CHANNEL
 *                                         (its enum number), the i-th to
 *                                         user-i or all to USER; prints each
 *                                         seq
 *   outbox_seed DIR survey CHANNEL TTL_MS creates a survey for a closed
 *                                         ticket; prints "id url token seq"
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/domain/outbox.h"
#include "server/store/records.h"
#include "server/domain/surveys.h"

#define BASE_URL "http://127.0.0.1:8080/survey/"

typedef struct {
    Helpwire__V1__Channel channel;
    int i;
    const char *user; /* NULL: user-i */
    uint64_t seq;
} outbox_ctx;

static int outbox_fn(hw_store_txn *w, void *arg)
{
    outbox_ctx *c = arg;
    char user[32], text[64];
    snprintf(user, sizeof user, "%s", c->user ? c->user : "");
    if (!c->user)
        snprintf(user, sizeof user, "user-%d", c->i);
    snprintf(text, sizeof text, "reply number %d", c->i);
    Helpwire__V1__OutboundMessage m = HELPWIRE__V1__OUTBOUND_MESSAGE__INIT;
    m.channel = c->channel;
    m.channel_user_id = user;
    m.customer_id = "c-seed";
    m.ticket_id = "t-1000";
    m.kind = HELPWIRE__V1__OUTBOUND_KIND__OUTBOUND_KIND_AGENT_REPLY;
    m.text = text;
    hw_effects fx; /* nobody to wake: the server is not running yet */
    hw_effects_begin(&fx, NULL);
    int rc = hw_outbox_append_in(w, &fx, &m);
    c->seq = m.seq;
    return rc;
}

typedef struct {
    hw_app *app;
    Helpwire__V1__Channel channel;
    hw_arena *a;
    char *id, *url;
    uint64_t seq;
} survey_ctx;

static int survey_fn(hw_store_txn *w, void *arg)
{
    survey_ctx *c = arg;
    Helpwire__V1__Ticket t = HELPWIRE__V1__TICKET__INIT;
    t.id = "t-1042";
    t.number = 1042;
    t.customer_id = "c-seed";
    t.channel = c->channel;
    t.status = HELPWIRE__V1__TICKET_STATUS__TICKET_STATUS_CLOSED;
    t.queue = "billing";
    t.assignee_agent_id = "ag-anna";
    hw_effects fx; /* nobody watches a seeded store */
    hw_effects_begin(&fx, c->a);
    return hw_surveys_create_in(w, c->app, &t, "seed-user", c->a, &fx, &c->id, &c->url, &c->seq);
}

int main(int argc, char **argv)
{
    bool outbox = argc >= 3 && strcmp(argv[2], "outbox") == 0;
    if (!(argc == 5 || (outbox && argc == 6)) || (!outbox && strcmp(argv[2], "survey") != 0)) {
        fprintf(stderr, "usage: outbox_seed DIR outbox CHANNEL N [USER] | outbox_seed DIR survey CHANNEL TTL_MS\n");
        return 2;
    }
    hw_store *s = NULL;
    hw_store_options o = {.data_dir = argv[1]};
    char err[512];
    int rc = hw_store_open(&s, &o, err, sizeof err);
    if (rc != HW_OK) {
        fprintf(stderr, "outbox_seed: %s\n", err);
        return 1;
    }
    Helpwire__V1__Channel channel = (Helpwire__V1__Channel)atoi(argv[3]);
    long n = atol(argv[4]);
    hw_arena *a = hw_arena_create(0);
    if (strcmp(argv[2], "outbox") == 0) {
        for (long i = 0; i < n && rc == HW_OK; i++) {
            outbox_ctx c = {.channel = channel, .i = (int)i, .user = argc == 6 ? argv[5] : NULL};
            rc = hw_store_write(s, outbox_fn, &c);
            if (rc == HW_OK)
                printf("%llu\n", (unsigned long long)c.seq);
        }
    } else {
        hw_app app = {.store = s};
        app.settings.survey_base_url = BASE_URL;
        app.settings.survey_ttl_ms = n;
        survey_ctx c = {.app = &app, .channel = channel, .a = a};
        rc = a ? hw_store_write(s, survey_fn, &c) : HW_ENOMEM;
        if (rc == HW_OK)
            printf("%s %s %s %llu\n", c.id, c.url, c.url + strlen(BASE_URL), (unsigned long long)c.seq);
    }
    if (rc != HW_OK)
        fprintf(stderr, "outbox_seed: %s\n", hw_strerror(rc));
    hw_arena_destroy(a);
    hw_store_close(s);
    return rc == HW_OK ? 0 : 1;
}
