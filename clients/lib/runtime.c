/*
 * runtime: the bridges' shared start-up and shut-down (see runtime.h).
 */
#include "clients/lib/runtime.h"

#include <stdio.h>
#include <string.h>

#include <curl/curl.h>
#include <grpc/grpc.h>

/* The gRPC core's own lines, as events of the bridge's log. */
static void log_grpc_line(void *arg, int level, const char *file, int line, const char *msg)
{
    char q[1024];
    hw_log_event(arg, (hw_log_level)level, "grpc", "file=%s line=%d msg=%s", file, line,
                 hw_log_quote(msg, q, sizeof q));
}

/* Prints "<prog>: <reason>" and returns rc. */
static int fail(const br_runtime *rt, int rc, const char *reason)
{
    fprintf(stderr, "%s: %s\n", rt->bridge->prog, reason);
    return rc;
}

int br_runtime_reconnect_max_ms(const br_common *c)
{
    return c->backoff_max_ms < HW_CHANNEL_RECONNECT_MAX_MS ? c->backoff_max_ms : HW_CHANNEL_RECONNECT_MAX_MS;
}

int br_runtime_start(br_runtime *rt, const br_bridge *bridge, br_common *c)
{
    char err[512];
    memset(rt, 0, sizeof *rt);
    rt->bridge = bridge;
    rt->common = c;
    if (br_common_finish(c, err, sizeof err) != 0)
        return fail(rt, 2, err);
    rt->log = hw_log_create_component(2, (hw_log_level)hw_log_level_parse(c->log_level), false, "bridge",
                                      bridge->name);
    /* Before any thread exists, so every thread inherits the signal mask. */
    if (!rt->log || br_stop_create(&rt->stop) != 0)
        return fail(rt, 2, "out of memory");
    if (bridge->use_curl) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
            return fail(rt, 2, "cannot initialise libcurl");
        rt->curl_up = true;
    }
    rt->grpc_log = (hw_grpc_log_route){log_grpc_line, rt->log};
    hw_grpc_runtime_log_to(&rt->grpc_log);
    hw_grpc_runtime_prepare();
    grpc_init();
    rt->grpc_up = true;
    hw_client_options o = {
        .target = c->helpwire,
        .token = c->token,
        .tls_ca_file = c->tls_ca,
        .tls_server_name = c->tls_server_name,
        .timeout_ms = c->rpc_timeout_ms,
        /* Back within about a second of helpwired: reconnect attempts
         * start at --backoff-initial-ms and grow to --backoff-max-ms, but
         * never more than a second apart (a refused connect costs
         * helpwired nothing), and calls wait for the connection, up to
         * their deadline, instead of failing while it is re-established. */
        .reconnect = {.initial_ms = c->backoff_initial_ms, .max_ms = br_runtime_reconnect_max_ms(c)},
        .wait_for_ready = true,
    };
    if (hw_client_create(&rt->rpc, &o, err, sizeof err) != 0)
        return fail(rt, 2, err);
    return 0;
}

static void render_dead_letters(void *arg, FILE *out)
{
    const br_runtime *rt = arg;
    if (rt->dead)
        br_deadletter_render(rt->dead, rt->bridge->name, out);
}

/* The outbox's families; rt->ob is set once, after the listener started. */
static void render_outbox(void *arg, FILE *out)
{
    br_runtime *rt = arg;
    br_outbox *ob = __atomic_load_n(&rt->ob, __ATOMIC_ACQUIRE);
    br_outbox_stats st;
    memset(&st, 0, sizeof st);
    if (ob)
        br_outbox_get_stats(ob, &st);
    const char *b = rt->bridge->name;
    fprintf(out,
            "# HELP helpwire_bridge_deliveries_total Outbox delivery attempts by result: delivered (the "
            "channel accepted it), failed (acknowledged as FAILED), retried (a transient failure).\n"
            "# TYPE helpwire_bridge_deliveries_total counter\n"
            "helpwire_bridge_deliveries_total{bridge=\"%s\",result=\"delivered\"} %lu\n"
            "helpwire_bridge_deliveries_total{bridge=\"%s\",result=\"failed\"} %lu\n"
            "helpwire_bridge_deliveries_total{bridge=\"%s\",result=\"retried\"} %lu\n"
            "# HELP helpwire_bridge_outbox_lease 1 while this bridge holds its channel's outbox lease.\n"
            "# TYPE helpwire_bridge_outbox_lease gauge\n"
            "helpwire_bridge_outbox_lease{bridge=\"%s\"} %d\n"
            "# HELP helpwire_bridge_outbox_queued Outbox messages queued or being delivered.\n"
            "# TYPE helpwire_bridge_outbox_queued gauge\n"
            "helpwire_bridge_outbox_queued{bridge=\"%s\"} %lu\n",
            b, st.delivered, b, st.refused, b, st.failed, b, st.lease_active ? 1 : 0, b, st.queued);
}

/* The spool's gauge; rt->spool is set once, after the listener started. */
static void render_spool(void *arg, FILE *out)
{
    br_runtime *rt = arg;
    br_spool *spool = __atomic_load_n(&rt->spool, __ATOMIC_ACQUIRE);
    if (spool)
        br_spool_render(spool, rt->bridge->name, out);
}

/* With --metrics, once: the registry, its collectors, the listener. */
static int start_metrics(br_runtime *rt)
{
    const br_common *c = rt->common;
    char err[600];
    if (!c->metrics || !*c->metrics || rt->metrics)
        return 0;
    static const char *const paths[] = {"/helpwire.v1.Router/Route"};
    int port = 0;
    rt->metrics = hw_metrics_create(paths, 1);
    if (!rt->metrics || hw_metrics_add_collector(rt->metrics, render_dead_letters, rt) != 0 ||
        hw_metrics_add_collector(rt->metrics, render_outbox, rt) != 0 ||
        hw_metrics_add_collector(rt->metrics, render_spool, rt) != 0)
        return fail(rt, 1, "out of memory");
    if (hw_metrics_listen(rt->metrics, c->metrics, &port, err, sizeof err) != 0) {
        char msg[700];
        snprintf(msg, sizeof msg, "--metrics: %s", err);
        return fail(rt, 1, msg);
    }
    hw_log_event(rt->log, HW_LOG_INFO, "metrics_listening", "port=%d", port);
    return 0;
}

int br_runtime_inbound(br_runtime *rt, const char *state_dir)
{
    char err[600];
    const br_common *c = rt->common;
    if (br_deadletter_open(&rt->dead, state_dir, rt->bridge->name, err, sizeof err) != 0) {
        char msg[700];
        snprintf(msg, sizeof msg, "--state-dir: %s", err);
        return fail(rt, 1, msg);
    }
    if (start_metrics(rt) != 0)
        return 1;
    rt->route = (br_route_policy){.rpc = rt->rpc,
                                  .log = rt->log,
                                  .rpc_timeout_ms = c->rpc_timeout_ms,
                                  .backoff_initial_ms = c->backoff_initial_ms,
                                  .backoff_max_ms = c->backoff_max_ms,
                                  .max_retry_age_ms = c->max_retry_age_ms,
                                  .dead = rt->dead,
                                  .metrics = rt->metrics,
                                  .channel_name = rt->bridge->name};
    return 0;
}

int br_runtime_spool(br_runtime *rt, const char *state_dir, const br_spool_settings *s)
{
    char err[600];
    br_spool *spool = NULL;
    br_spool_limits lim = {(uint64_t)s->max_entries, (uint64_t)s->max_bytes};
    if (br_spool_open(&spool, state_dir, rt->bridge->name, &lim, err, sizeof err) != 0) {
        char msg[700];
        snprintf(msg, sizeof msg, "--state-dir: %s", err);
        return fail(rt, 1, msg);
    }
    __atomic_store_n(&rt->spool, spool, __ATOMIC_RELEASE);
    rt->drain_timeout_ms = s->drain_timeout_ms;
    br_drain_options o = {spool, &rt->route, rt->log, rt->prepare, rt->prepare_done, rt->prepare_arg};
    if (br_drain_start(&rt->drain, &o) != 0)
        return fail(rt, 1, "cannot start the drainer thread");
    return 0;
}

int br_runtime_open_sent(br_runtime *rt, const char *state_dir)
{
    char err[600];
    if (rt->sent)
        return 0;
    if (!state_dir || !*state_dir)
        return fail(rt, 2, "--state-dir is required");
    if (br_sent_open(&rt->sent, state_dir, rt->bridge->name, 0, 0, err, sizeof err) != 0) {
        char msg[700];
        snprintf(msg, sizeof msg, "--state-dir: %s", err);
        return fail(rt, 1, msg);
    }
    return 0;
}

int br_runtime_subscribe(br_runtime *rt, const char *state_dir, br_outbox_deliver_fn deliver, void *arg)
{
    const br_common *c = rt->common;
    int rc = br_runtime_open_sent(rt, state_dir);
    if (rc != 0)
        return rc;
    if (start_metrics(rt) != 0)
        return 1;
    br_outbox_options oo = {.rpc = rt->rpc,
                            .channel = rt->bridge->channel,
                            .redeliver_after_ms = c->redeliver_after_ms,
                            .rpc_timeout_ms = c->rpc_timeout_ms,
                            .backoff_initial_ms = c->backoff_initial_ms,
                            .backoff_max_ms = c->backoff_max_ms,
                            .reconnect_max_ms = br_runtime_reconnect_max_ms(c),
                            .deliver = deliver,
                            .deliver_arg = arg,
                            .log = rt->log,
                            .stop = rt->stop,
                            .workers = c->delivery_workers,
                            .max_delivery_age_ms = c->max_delivery_age_ms,
                            .max_in_flight_per_recipient = c->max_in_flight_per_recipient,
                            .sent = rt->sent,
                            .on_signal = rt->on_signal,
                            .signal_arg = rt->signal_arg};
    br_outbox *ob = NULL;
    if (br_outbox_start(&ob, &oo) != 0)
        return fail(rt, 1, "cannot start the outbox thread");
    __atomic_store_n(&rt->ob, ob, __ATOMIC_RELEASE);
    return 0;
}

int br_runtime_listen(br_runtime *rt, const char *listen, size_t max_body_bytes, br_httpd_handler handler,
                      void *arg)
{
    char err[512];
    br_httpd_options ho = {listen, max_body_bytes, 0, handler, arg};
    if (br_httpd_start(&rt->httpd, &ho, err, sizeof err) != 0)
        return fail(rt, 1, err);
    return 0;
}

void br_runtime_wait(br_runtime *rt)
{
    while (!br_stop_sleep_ms(rt->stop, 1000))
        ;
}

void br_runtime_serve(br_runtime *rt, const char *listen)
{
    const br_common *c = rt->common;
    unsigned port = br_httpd_port(rt->httpd);
    char q[300];
    hw_log_event(rt->log, HW_LOG_INFO, "started", "listen_port=%u helpwire=%s tls=%s token=%s", port,
                 hw_log_quote(c->helpwire, q, sizeof q), c->tls_ca ? "true" : "false",
                 c->token ? "set" : "unset");
    const char *colon = strrchr(listen, ':');
    printf("%s listening on %.*s:%u\n", rt->bridge->prog, (int)(colon ? colon - listen : 0), listen, port);
    fflush(stdout);
    br_runtime_wait(rt);
}

void br_runtime_quiesce(br_runtime *rt)
{
    if (rt->stop)
        br_stop_request(rt->stop);
    if (!rt->quiesced)
        br_httpd_quiesce(rt->httpd);
    rt->quiesced = true;
}

void br_runtime_close_http(br_runtime *rt)
{
    br_runtime_quiesce(rt);
    br_httpd_stop(rt->httpd);
    rt->httpd = NULL;
}

void br_runtime_finish(br_runtime *rt, int rc)
{
    /* No request is in progress once the server is down, so nothing is
     * spooled after the drainer's last look. */
    br_runtime_close_http(rt);
    br_drain_stop(rt->drain, rt->drain_timeout_ms); /* before what it routes with */
    rt->drain = NULL;
    hw_metrics_destroy(rt->metrics); /* before the outbox and the spool its collectors read */
    rt->metrics = NULL;
    br_outbox_stop(rt->ob);
    rt->ob = NULL;
    br_spool_close(rt->spool);
    rt->spool = NULL;
    br_sent_close(rt->sent);
    rt->sent = NULL;
    hw_client_destroy(rt->rpc);
    rt->rpc = NULL;
    if (rt->grpc_up)
        grpc_shutdown();
    if (rt->curl_up)
        curl_global_cleanup();
    rt->grpc_up = rt->curl_up = false;
    if (rt->log)
        hw_log_event(rt->log, HW_LOG_INFO, "stopped", "signal=%d exit=%d",
                     rt->stop ? br_stop_signal(rt->stop) : 0, rc);
    br_deadletter_close(rt->dead);
    rt->dead = NULL;
    br_stop_destroy(rt->stop);
    rt->stop = NULL;
    hw_grpc_runtime_log_to(NULL);
    hw_log_destroy(rt->log);
    rt->log = NULL;
    if (rt->common)
        br_common_release(rt->common);
}
