/*
 * fuzz_app: the fuzz harnesses' application context (see fuzz_app.h),
 * wired like server/main.c wires helpwired's.
 */
#include "tests/fuzz/fuzz_app.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server/base/clock.h"
#include "server/base/errors.h"
#include "server/base/log.h"
#include "server/domain/agents.h"
#include "server/domain/classify.h"
#include "server/domain/knowledge.h"
#include "server/domain/notifier.h"
#include "server/domain/outbox.h"
#include "server/domain/sla_breach.h"
#include "server/domain/synonyms.h"
#include "server/domain/timers.h"
#include "server/domain/watch.h"
#include "server/domain/hours.h"
#include "server/methods.h"
#include "server/net/health.h"
#include "server/net/reflection.h"
#include "server/search/index.h"
#include "server/domain/sinks.h"
#include "server/search/indexer.h"
#include "server/search/tokenize.h"
#include "server/store/store.h"
#include "tests/fuzz/fuzz_tmp.h"

static hw_app g_app;
static bool g_made;

static void must(int rc, const char *what)
{
    if (rc != HW_OK) {
        fprintf(stderr, "fuzz_app: %s: %s\n", what, hw_strerror(rc));
        abort();
    }
}

hw_app *fz_app(void)
{
    if (g_made)
        return &g_app;
    hw_app *app = &g_app;
    char err[512];
    const char *dir = fz_tmp_dir("store");

    size_t n_methods;
    const hw_method *methods = hw_methods(&n_methods);
    int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
    /* Every event is formatted (the log's quoting of fuzzed text runs too). */
    app->log = hw_log_create(devnull, HW_LOG_DEBUG, true);
    app->health = hw_health_create(methods, n_methods);
    if (!app->log || !app->health)
        abort();
    must(hw_clock_create_real(&app->clock), "clock");
    app->settings = (hw_settings){.answer_threshold = 0.88,
                                  .route_hits = 3,
                                  .survey_base_url = "https://help.example.com/s/",
                                  .survey_ttl_ms = 7 * 24 * 3600 * 1000LL,
                                  .unassigned_alert_after_ms = 600000,
                                  .reassign_grace_ms = 300000};
    hw_store_options so = {.data_dir = dir, .initial_map_size_bytes = 64u << 20};
    if (hw_store_open(&app->store, &so, err, sizeof err) != HW_OK) {
        fprintf(stderr, "fuzz_app: store: %s\n", err);
        abort();
    }
    app->after_commit = hw_sinks_for_app(app);
    must(hw_watch_create(&app->watch), "watch");
    must(hw_outbox_create(&app->outbox, app), "outbox");
    must(hw_notifier_create(&app->notifier, app), "notifier");
    must(hw_hours_cache_create(&app->hours_cache), "hours");
    must(hw_timers_create(&app->timers, app), "timers");
    must(hw_timers_register(app->timers, HW_TIMER_SLA, hw_sla_breach_fire, NULL), "sla timers");
    must(hw_agents_timers_register(app->timers, app), "queue timers");
    must(hw_timers_start(app->timers), "timer thread");
    hw_status st = {0};
    must(hw_index_create(&app->index, NULL, &st), "index");
    if (hw_reflection_create(&app->reflection, err, sizeof err) != 0) {
        fprintf(stderr, "fuzz_app: reflection: %s\n", err);
        abort();
    }
    uint64_t docs;
    if (hw_knowledge_build_index(app, &docs, err, sizeof err) != HW_OK) {
        fprintf(stderr, "fuzz_app: index: %s\n", err);
        abort();
    }
    must(hw_synonyms_create(&app->synonyms, app), "synonyms");
    size_t n_sets;
    if (hw_synonyms_load(app->synonyms, &n_sets, err, sizeof err) != HW_OK) {
        fprintf(stderr, "fuzz_app: synonyms: %s\n", err);
        abort();
    }
    must(hw_indexer_start(app->index, &app->indexer), "indexer");
    app->workers = calloc(1, sizeof *app->workers);
    app->n_workers = 1;
    if (!app->workers)
        abort();
    hw_index_reader_register();
    must(hw_store_reader_create(app->store, &app->workers[0].reader), "reader");
    must(hw_searcher_create(app->index, &app->workers[0].searcher, &st), "searcher");
    must(hw_tokenizer_create(&app->workers[0].tokenizer, &st), "tokenizer");
    g_made = true;
    return app;
}

const hw_method *fz_methods(size_t *n)
{
    return hw_methods(n);
}

const hw_method *fz_method(const char *path)
{
    size_t n;
    const hw_method *m = hw_methods(&n);
    for (size_t i = 0; i < n; i++)
        if (strcmp(m[i].path, path) == 0)
            return &m[i];
    return NULL;
}

const hw_principal *fz_principal(bool agent)
{
    static const hw_principal admin = {HW_ALLOW_ADMIN, "tok-fuzz", NULL, "admin:tok-fuzz"};
    static const hw_principal agent_p = {HW_ALLOW_AGENT, "tok-agent", "a-fuzz", "agent:a-fuzz"};
    return agent ? &agent_p : &admin;
}

fz_answer fz_run(const hw_method *method, const ProtobufCMessage *request, const hw_principal *principal)
{
    hw_app *app = fz_app();
    fz_answer a = {0};
    hw_call *call = fz_call_new(method, method->allow == HW_ALLOW_PUBLIC ? NULL : principal);
    if (!call)
        abort();
    static int trace = -1; /* FUZZ_TRACE=1: each call's method and answer on stderr */
    if (trace < 0)
        trace = getenv("FUZZ_TRACE") != NULL;
    if (trace)
        fprintf(stderr, "fuzz: call %s\n", method->path);
    if (fz_call_run(call, request, app, 10000, &a) != 0) {
        fprintf(stderr, "fuzz: %s: no answer within 10 s\n", method->path);
        abort();
    }
    if (trace)
        fprintf(stderr, "fuzz: answer %d %s\n", a.code, a.msg);
    if (a.code == GRPC_STATUS_INTERNAL || a.code == GRPC_STATUS_UNKNOWN) {
        fprintf(stderr, "fuzz: %s answered %s: %s\n", method->path,
                a.code == GRPC_STATUS_INTERNAL ? "INTERNAL" : "UNKNOWN", a.msg);
        abort();
    }
    if (method->server_streaming && a.reply_bytes) {
        fprintf(stderr, "fuzz: %s: a stream answered with a unary reply\n", method->path);
        abort();
    }
    return a;
}
