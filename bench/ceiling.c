/*
 * ceiling: the cheapest unary server the gRPC C core allows, built like
 * helpwired's worker pool, so a benchmark figure of helpwired can be given
 * as a ratio to what the transport alone does on the same machine in the
 * same run.
 *
 * Design: N worker threads, each with its own completion queue. The bench
 * methods (Router/Route, Knowledge/Search, Tickets/CreateTicket,
 * Tickets/GetTicket) are registered with GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER,
 * so a new call arrives with its request already read; each thread keeps
 * --slots requests posted per method (32, like helpwired's
 * --calls-per-method) and re-posts a slot as soon as it fires. Channel
 * arguments (message size, streams per connection, keepalive) are
 * helpwired's defaults. Every call is answered in one batch: initial metadata, the request
 * bytes echoed back, status OK, and the receive-close. Any other method
 * gets UNIMPLEMENTED (a few generic slots per thread), so a wrong path
 * fails fast instead of hanging.
 *
 * It does not decode, check metadata, or allocate per call beyond what
 * gRPC does (answers come from a per-thread free list). SIGTERM or SIGINT
 * shuts it down cleanly: in-flight calls are cancelled, queues drained,
 * everything freed.
 *
 * Usage: ceiling --listen ADDR [--threads N] [--slots K]
 *   Prints "listening on HOST:PORT" on stdout once serving (port 0 picks a
 *   free port and prints the one bound).
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>

#include "server/base/grpc_runtime.h"

static const char *const echo_methods[] = {
    "/helpwire.v1.Router/Route",         "/helpwire.v1.Knowledge/Search",  "/helpwire.v1.Knowledge/Answer",
    "/helpwire.v1.Tickets/CreateTicket", "/helpwire.v1.Tickets/GetTicket", "/helpwire.v1.Tickets/ListTickets",
};
#define N_METHODS (sizeof(echo_methods) / sizeof(echo_methods[0]))
#define GENERIC_SLOTS 2

typedef enum tag_kind { TAG_REGISTERED, TAG_GENERIC, TAG_ANSWER } tag_kind;

struct worker;

/* A posted request for one registered method; re-posted after each call. */
typedef struct request_slot {
    tag_kind kind; /* TAG_REGISTERED; first member: tags are told apart by it */
    struct worker *w;
    void *method;
    grpc_call *call;
    gpr_timespec deadline;
    grpc_metadata_array metadata;
    grpc_byte_buffer *payload;
} request_slot;

/* A posted request for any other method (answered UNIMPLEMENTED). */
typedef struct generic_slot {
    tag_kind kind; /* TAG_GENERIC */
    struct worker *w;
    grpc_call *call;
    grpc_call_details details;
    grpc_metadata_array metadata;
} generic_slot;

/* One call being answered. */
typedef struct answer {
    tag_kind kind; /* TAG_ANSWER */
    grpc_call *call;
    grpc_byte_buffer *payload;
    int cancelled;
    struct answer *next_free;
} answer;

typedef struct worker {
    grpc_server *server;
    grpc_completion_queue *cq;
    pthread_t thread;
    bool thread_started;
    request_slot *slots; /* n_slots = slots_per_method * N_METHODS */
    size_t n_slots;
    generic_slot generic[GENERIC_SLOTS];
    answer *free_answers;
    size_t answers_in_flight;
} worker;

static int post_registered(request_slot *s)
{
    grpc_metadata_array_init(&s->metadata);
    s->payload = NULL;
    s->call = NULL;
    grpc_call_error e = grpc_server_request_registered_call(s->w->server, s->method, &s->call, &s->deadline,
                                                            &s->metadata, &s->payload, s->w->cq, s->w->cq, s);
    return e == GRPC_CALL_OK ? 0 : -EIO;
}

static int post_generic(generic_slot *g)
{
    grpc_call_details_init(&g->details);
    grpc_metadata_array_init(&g->metadata);
    g->call = NULL;
    grpc_call_error e =
        grpc_server_request_call(g->w->server, &g->call, &g->details, &g->metadata, g->w->cq, g->w->cq, g);
    return e == GRPC_CALL_OK ? 0 : -EIO;
}

static answer *take_answer(worker *w)
{
    answer *a = w->free_answers;
    if (a) {
        w->free_answers = a->next_free;
    } else {
        a = malloc(sizeof(*a));
        if (!a)
            return NULL;
    }
    memset(a, 0, sizeof(*a));
    a->kind = TAG_ANSWER;
    return a;
}

/* Answers call with status code, echoing payload when not NULL. Takes
 * ownership of call and payload. */
static void answer_call(worker *w, grpc_call *call, grpc_byte_buffer *payload, grpc_status_code code)
{
    answer *a = take_answer(w);
    if (!a) {
        grpc_call_cancel_with_status(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "ceiling: out of memory", NULL);
        grpc_call_unref(call);
        if (payload)
            grpc_byte_buffer_destroy(payload);
        return;
    }
    a->call = call;
    a->payload = payload;
    grpc_op ops[4];
    size_t n = 0;
    memset(ops, 0, sizeof(ops));
    ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
    if (payload) {
        ops[n].op = GRPC_OP_SEND_MESSAGE;
        ops[n++].data.send_message.send_message = payload;
    }
    ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[n++].data.send_status_from_server.status = code;
    ops[n].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    ops[n++].data.recv_close_on_server.cancelled = &a->cancelled;
    if (grpc_call_start_batch(call, ops, n, a, NULL) != GRPC_CALL_OK) {
        grpc_call_unref(call);
        if (payload)
            grpc_byte_buffer_destroy(payload);
        a->next_free = w->free_answers;
        w->free_answers = a;
        return;
    }
    w->answers_in_flight++;
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    for (size_t i = 0; i < w->n_slots; i++)
        post_registered(&w->slots[i]);
    for (size_t i = 0; i < GENERIC_SLOTS; i++)
        post_generic(&w->generic[i]);

    for (;;) {
        grpc_event ev = grpc_completion_queue_next(w->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
        if (ev.type == GRPC_QUEUE_SHUTDOWN)
            break;
        if (ev.type != GRPC_OP_COMPLETE)
            continue;
        switch (*(tag_kind *)ev.tag) {
        case TAG_REGISTERED: {
            request_slot *s = ev.tag;
            grpc_metadata_array_destroy(&s->metadata);
            if (!ev.success) /* server shutting down: not re-posted */
                break;
            grpc_call *call = s->call;
            grpc_byte_buffer *payload = s->payload;
            post_registered(s);
            answer_call(w, call, payload, GRPC_STATUS_OK);
            break;
        }
        case TAG_GENERIC: {
            generic_slot *g = ev.tag;
            grpc_call_details_destroy(&g->details);
            grpc_metadata_array_destroy(&g->metadata);
            if (!ev.success)
                break;
            grpc_call *call = g->call;
            post_generic(g);
            answer_call(w, call, NULL, GRPC_STATUS_UNIMPLEMENTED);
            break;
        }
        case TAG_ANSWER: {
            answer *a = ev.tag;
            grpc_call_unref(a->call);
            if (a->payload)
                grpc_byte_buffer_destroy(a->payload);
            a->next_free = w->free_answers;
            w->free_answers = a;
            w->answers_in_flight--;
            break;
        }
        }
    }
    return NULL;
}

static void usage(FILE *out)
{
    fprintf(out, "usage: ceiling --listen ADDR [--threads N] [--slots K]\n"
                 "  --listen ADDR  e.g. 127.0.0.1:0 (port 0: any free port, printed)\n"
                 "  --threads N    worker threads, one completion queue each (default: cores)\n"
                 "  --slots K      requests kept posted per method per thread (default 32, as helpwired)\n");
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"listen", required_argument, NULL, 'l'},
        {"threads", required_argument, NULL, 't'},
        {"slots", required_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int status = 1;
    const char *listen_addr = NULL;
    long threads = sysconf(_SC_NPROCESSORS_ONLN), slots = 32;
    grpc_server *server = NULL;
    grpc_completion_queue *shutdown_cq = NULL;
    worker *workers = NULL;
    bool started = false;
    int c;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        char *end = NULL;
        switch (c) {
        case 'l':
            listen_addr = optarg;
            break;
        case 't':
            threads = strtol(optarg, &end, 10);
            if (*end || threads < 1 || threads > 256) {
                fprintf(stderr, "ceiling: --threads wants 1..256\n");
                return 2;
            }
            break;
        case 's':
            slots = strtol(optarg, &end, 10);
            if (*end || slots < 1 || slots > 100000) {
                fprintf(stderr, "ceiling: --slots wants 1..100000\n");
                return 2;
            }
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (!listen_addr || optind < argc) {
        usage(stderr);
        return 2;
    }
    if (threads < 1)
        threads = 1;

    /* Signals are taken by sigwait() in this thread only: block them before
     * gRPC or the workers start threads, which inherit the mask. */
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);

    /* The same runtime settings as helpwired, so the ratios compare like with like. */
    hw_grpc_runtime_prepare();
    grpc_init();
    /* helpwired's defaults (server/net/net.c), so the transport is configured
     * alike: message size, streams per connection, keepalive. */
    grpc_arg args[] = {
        {GRPC_ARG_INTEGER, (char *)GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, {.integer = 4194304}},
        {GRPC_ARG_INTEGER, (char *)GRPC_ARG_MAX_SEND_MESSAGE_LENGTH, {.integer = 4194304}},
        {GRPC_ARG_INTEGER, (char *)GRPC_ARG_MAX_CONCURRENT_STREAMS, {.integer = 1000}},
        {GRPC_ARG_INTEGER, (char *)GRPC_ARG_KEEPALIVE_TIME_MS, {.integer = 7200000}},
        {GRPC_ARG_INTEGER, (char *)GRPC_ARG_KEEPALIVE_TIMEOUT_MS, {.integer = 20000}},
        {GRPC_ARG_INTEGER, (char *)GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, {.integer = 60000}},
    };
    grpc_channel_args server_args = {sizeof(args) / sizeof(args[0]), args};
    server = grpc_server_create(&server_args, NULL);
    void *methods[N_METHODS];
    for (size_t m = 0; m < N_METHODS; m++)
        methods[m] = grpc_server_register_method(server, echo_methods[m], NULL,
                                                 GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER, 0);
    workers = calloc((size_t)threads, sizeof(*workers));
    if (!workers) {
        fprintf(stderr, "ceiling: out of memory\n");
        goto out;
    }
    for (long i = 0; i < threads; i++) {
        worker *w = &workers[i];
        w->server = server;
        w->cq = grpc_completion_queue_create_for_next(NULL);
        grpc_server_register_completion_queue(server, w->cq, NULL);
        w->n_slots = (size_t)slots * N_METHODS;
        w->slots = calloc(w->n_slots, sizeof(*w->slots));
        if (!w->slots) {
            fprintf(stderr, "ceiling: out of memory\n");
            goto out;
        }
        for (size_t k = 0; k < w->n_slots; k++) {
            w->slots[k].kind = TAG_REGISTERED;
            w->slots[k].w = w;
            w->slots[k].method = methods[k % N_METHODS];
        }
        for (size_t g = 0; g < GENERIC_SLOTS; g++) {
            w->generic[g].kind = TAG_GENERIC;
            w->generic[g].w = w;
        }
    }
    shutdown_cq = grpc_completion_queue_create_for_next(NULL);
    grpc_server_register_completion_queue(server, shutdown_cq, NULL);

    grpc_server_credentials *creds = grpc_insecure_server_credentials_create();
    int port = grpc_server_add_http2_port(server, listen_addr, creds);
    grpc_server_credentials_release(creds);
    if (port <= 0) {
        fprintf(stderr, "ceiling: cannot listen on %s\n", listen_addr);
        goto out;
    }
    grpc_server_start(server);
    started = true;
    for (long i = 0; i < threads; i++) {
        if (pthread_create(&workers[i].thread, NULL, worker_main, &workers[i]) != 0) {
            fprintf(stderr, "ceiling: cannot start thread\n");
            goto out;
        }
        workers[i].thread_started = true;
    }
    const char *colon = strrchr(listen_addr, ':');
    int host_len = colon ? (int)(colon - listen_addr) : (int)strlen(listen_addr);
    printf("listening on %.*s:%d\n", host_len, listen_addr, port);
    fflush(stdout);

    int sig = 0;
    sigwait(&stop_signals, &sig);
    status = 0;

out:
    if (started) {
        grpc_server_shutdown_and_notify(server, shutdown_cq, NULL);
        grpc_server_cancel_all_calls(server);
        grpc_completion_queue_next(shutdown_cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
    }
    for (long i = 0; workers && i < threads; i++) {
        if (workers[i].cq)
            grpc_completion_queue_shutdown(workers[i].cq);
    }
    for (long i = 0; workers && i < threads; i++) {
        worker *w = &workers[i];
        if (w->thread_started)
            pthread_join(w->thread, NULL);
    }
    if (server)
        grpc_server_destroy(server);
    for (long i = 0; workers && i < threads; i++) {
        worker *w = &workers[i];
        if (w->cq) {
            if (!w->thread_started) {
                while (grpc_completion_queue_next(w->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL).type !=
                       GRPC_QUEUE_SHUTDOWN)
                    ;
            }
            grpc_completion_queue_destroy(w->cq);
        }
        while (w->free_answers) {
            answer *a = w->free_answers;
            w->free_answers = a->next_free;
            free(a);
        }
        free(w->slots);
    }
    free(workers);
    if (shutdown_cq) {
        grpc_completion_queue_shutdown(shutdown_cq);
        while (grpc_completion_queue_next(shutdown_cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL).type !=
               GRPC_QUEUE_SHUTDOWN)
            ;
        grpc_completion_queue_destroy(shutdown_cq);
    }
    grpc_shutdown();
    return status;
}
