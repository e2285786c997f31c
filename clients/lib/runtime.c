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

int br_runtime_start(br_runtime *rt, const char *name, br_common *c, bool use_curl, char *err, size_t errlen)
{
    memset(rt, 0, sizeof *rt);
    if (br_common_finish(c, err, errlen) != 0)
        return -1;
    rt->log =
        hw_log_create_component(2, (hw_log_level)hw_log_level_parse(c->log_level), false, "bridge", name);
    /* Before any thread exists, so every thread inherits the signal mask. */
    if (!rt->log || br_stop_create(&rt->stop) != 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (use_curl) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
            snprintf(err, errlen, "cannot initialise libcurl");
            return -1;
        }
        rt->curl_up = true;
    }
    rt->grpc_log = (hw_grpc_log_route){log_grpc_line, rt->log};
    hw_grpc_runtime_log_to(&rt->grpc_log);
    hw_grpc_runtime_prepare();
    grpc_init();
    rt->grpc_up = true;
    hw_client_options ro = {
        .target = c->helpwire,
        .token = c->token,
        .tls_ca_file = c->tls_ca,
        .tls_server_name = c->tls_server_name,
        .timeout_ms = c->rpc_timeout_ms,
        /* A stream that breaks should reconnect at our backoff, not the
         * core's default of up to two minutes. */
        .max_reconnect_backoff_ms = 2000,
    };
    return hw_client_create(&rt->rpc, &ro, err, errlen);
}

int br_runtime_subscribe(br_runtime *rt, const br_common *c, Helpwire__V1__Channel channel,
                         br_outbox_deliver_fn deliver, void *arg)
{
    br_outbox_options oo = {rt->rpc,
                            channel,
                            c->redeliver_after_ms,
                            c->rpc_timeout_ms,
                            c->backoff_initial_ms,
                            c->backoff_max_ms,
                            deliver,
                            arg,
                            rt->log,
                            rt->stop};
    return br_outbox_start(&rt->ob, &oo);
}

void br_runtime_serve(br_runtime *rt, const char *prog, const br_common *c, const char *listen, unsigned port)
{
    char q[300];
    hw_log_event(rt->log, HW_LOG_INFO, "started", "listen_port=%u helpwire=%s tls=%s token=%s", port,
                 hw_log_quote(c->helpwire, q, sizeof q), c->tls_ca ? "true" : "false",
                 c->token ? "set" : "unset");
    const char *colon = strrchr(listen, ':');
    printf("%s listening on %.*s:%u\n", prog, (int)(colon ? colon - listen : 0), listen, port);
    fflush(stdout);
    while (!br_stop_sleep_ms(rt->stop, 1000))
        ;
}

void br_runtime_finish(br_runtime *rt, int rc)
{
    if (rt->stop)
        br_stop_request(rt->stop);
    br_outbox_stop(rt->ob);
    rt->ob = NULL;
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
    br_stop_destroy(rt->stop);
    rt->stop = NULL;
    hw_grpc_runtime_log_to(NULL);
    hw_log_destroy(rt->log);
    rt->log = NULL;
}
