/*
 * driver: worker threads, channels and call slots of helpwire-bench (the
 * contract and the measuring rules are in driver.h).
 *
 * A slot is the tag of its call's only batch, so a completion hands back
 * everything needed to account for the call and to start the next one. A
 * worker touches only its own slots, statistics and request context; the
 * only shared, written state is the claimed-request counter, the stop flag,
 * the running-worker count and each worker's two progress counters, all
 * atomics.
 *
 * What a call is comes from the clients' one library (clients/lib/client.h):
 * the channel (hw_channel_open), the bearer metadata (hw_client_auth, one
 * for every worker, never copied per call), the six-op batch and its
 * release (hw_client_call, embedded in each slot), the status names and
 * the queues' shutdown.
 * The driver does not use the library's blocking calls or pipes: those own
 * a completion queue per call or per pipe and a channel per client, while
 * the driver's hot path is its own loop over one queue per worker thread,
 * with many channels per worker, registered methods (no method-name lookup
 * per call), pre-packed request slices, an open-loop schedule and per-slot
 * accounting; none of that fits a blocking API, and wrapping it would add
 * a layer to every call being measured.
 */
#include "bench/driver.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <grpc/byte_buffer.h>
#include <grpc/grpc.h>
#include <grpc/support/time.h>

#include "clients/lib/channel.h"
#include "clients/lib/client.h"

#define NS_PER_S 1000000000ull
#define NS_PER_MS 1000000ull
/* Longest a worker sleeps in its completion queue before re-checking its
 * phase and the stop flag. */
#define IDLE_WAIT_NS (50 * NS_PER_MS)

const char *hw_status_name(int slot)
{
    if (slot < 0 || slot >= HW_STATUS_SLOTS)
        return "?";
    return slot == HW_STATUS_CLIENT_ERROR ? "CLIENT_ERROR" : hw_client_status_name(slot);
}

typedef struct conn {
    grpc_channel *channel;
    void *method[HW_RPC_COUNT]; /* grpc_channel_register_call handles */
} conn;

struct worker;

typedef struct slot {
    struct worker *w;
    conn *conn;
    hw_client_call rpc;
    uint64_t start_ns; /* sent (closed loop) or scheduled (open loop) */
    size_t sent_bytes;
    hw_rpc_kind kind;
    bool counted;
    struct slot *next_free;
} slot;

typedef struct worker {
    hw_drv *d;
    unsigned index;
    pthread_t thread;
    bool thread_started;
    grpc_completion_queue *cq;
    slot *slots;
    size_t n_slots;
    slot *free_list;
    size_t inflight;
    bool stopping;  /* sends no more calls */
    bool cancelled; /* has cancelled its calls after hw_drv_stop */
    hw_req_ctx req;
    hw_rpc_stats stats[HW_RPC_COUNT];
    uint64_t warmup_calls;
    uint64_t late_sends;
    uint64_t last_done_ns;
    uint64_t interval_ns; /* open loop: time between sends */
    uint64_t next_send_ns;
    _Atomic uint64_t progress_counted;
    _Atomic uint64_t progress_errors;
} worker;

struct hw_drv {
    hw_drv_config cfg;
    hw_client_auth auth; /* read by every worker */
    conn *conns;
    unsigned n_conns;
    worker *workers;
    unsigned n_workers;
    uint64_t start_ns;
    uint64_t measure_start_ns;
    uint64_t measure_end_ns; /* duration mode only */
    _Atomic uint64_t claimed;
    _Atomic bool stop;
    _Atomic unsigned running;
    bool started;
    bool joined;
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

static gpr_timespec deadline_in_ns(uint64_t ns)
{
    return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_nanos((int64_t)ns, GPR_TIMESPAN));
}

/* ---- one call ---- */

static void count_call(worker *w, slot *s, int status_slot, uint64_t done_ns, size_t recv_bytes)
{
    hw_rpc_stats *st = &w->stats[s->kind];
    st->calls++;
    st->by_status[status_slot]++;
    st->bytes_sent += s->sent_bytes;
    st->bytes_received += recv_bytes;
    if (status_slot == GRPC_STATUS_OK)
        hw_hist_record(st->latency_ns, done_ns > s->start_ns ? done_ns - s->start_ns : 0);
    else
        atomic_fetch_add_explicit(&w->progress_errors, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&w->progress_counted, 1, memory_order_relaxed);
    if (done_ns > w->last_done_ns)
        w->last_done_ns = done_ns;
}

/* Starts the next call in s, scheduled at start_ns. Returns false (and sets
 * w->stopping) when the run has no more calls for this worker; s stays
 * free then. */
static bool start_call(worker *w, slot *s, uint64_t start_ns)
{
    hw_drv *d = w->d;
    const hw_drv_config *cfg = &d->cfg;
    bool counted = start_ns >= d->measure_start_ns;
    if (w->stopping)
        return false;
    if (counted) {
        if (cfg->requests > 0) {
            if (atomic_fetch_add(&d->claimed, 1) >= cfg->requests) {
                w->stopping = true;
                return false;
            }
        } else if (start_ns >= d->measure_end_ns) {
            w->stopping = true;
            return false;
        }
    }

    s->kind = cfg->fixed ? hw_mix_first(cfg->mix) : hw_mix_pick(cfg->mix, hw_req_random(&w->req));
    s->start_ns = start_ns;
    s->counted = counted;
    grpc_slice body;
    if (cfg->fixed) {
        body = grpc_slice_ref(*cfg->fixed);
    } else if (hw_req_build(&w->req, s->kind, &body) != 0) {
        goto client_error;
    }
    s->sent_bytes = GRPC_SLICE_LENGTH(body);
    grpc_byte_buffer *request = grpc_raw_byte_buffer_create(&body, 1);
    grpc_slice_unref(body);
    grpc_call *call = grpc_channel_create_registered_call(
        s->conn->channel, NULL, GRPC_PROPAGATE_DEFAULTS, w->cq, s->conn->method[s->kind],
        deadline_in_ns((uint64_t)cfg->timeout_ms * NS_PER_MS), NULL);
    /* The slot is the tag of the batch. */
    if (hw_client_call_start(&s->rpc, call, d->auth.md, d->auth.count, request, s) != GRPC_CALL_OK)
        goto client_error;
    w->inflight++;
    return true;

client_error:
    /* Not a server answer: count it, and stop this worker so a broken
     * client cannot spin. */
    if (counted)
        count_call(w, s, HW_STATUS_CLIENT_ERROR, now_ns(), 0);
    hw_client_call_end(&s->rpc);
    w->stopping = true;
    return false;
}

static void finish_call(worker *w, slot *s, int success)
{
    uint64_t done_ns = now_ns();
    int status_slot = success ? (int)s->rpc.status : HW_STATUS_CLIENT_ERROR;
    if (status_slot < 0 || status_slot >= HW_STATUS_CLIENT_ERROR)
        status_slot = GRPC_STATUS_UNKNOWN;
    size_t recv_bytes = s->rpc.reply ? grpc_byte_buffer_length(s->rpc.reply) : 0;

    if (status_slot == GRPC_STATUS_OK && s->rpc.reply && s->kind == HW_RPC_CREATE_TICKET) {
        grpc_slice all = hw_client_buffer_slice(s->rpc.reply);
        hw_req_learn(&w->req, s->kind, GRPC_SLICE_START_PTR(all), GRPC_SLICE_LENGTH(all));
        grpc_slice_unref(all);
    }
    if (s->counted)
        count_call(w, s, status_slot, done_ns, recv_bytes);
    else
        w->warmup_calls++;

    hw_client_call_end(&s->rpc);
    w->inflight--;
}

/* ---- a worker ---- */

static void push_free(worker *w, slot *s)
{
    s->next_free = w->free_list;
    w->free_list = s;
}

static slot *pop_free(worker *w)
{
    slot *s = w->free_list;
    if (s)
        w->free_list = s->next_free;
    return s;
}

static void cancel_inflight(worker *w)
{
    for (size_t i = 0; i < w->n_slots; i++) {
        if (w->slots[i].rpc.call)
            grpc_call_cancel(w->slots[i].rpc.call, NULL);
    }
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    hw_drv *d = w->d;
    bool open_loop = d->cfg.rate > 0;

    if (!open_loop) {
        slot *s;
        uint64_t t = now_ns();
        while ((s = pop_free(w)) != NULL) {
            if (!start_call(w, s, t)) {
                push_free(w, s);
                break;
            }
        }
    }
    for (;;) {
        uint64_t now = now_ns();
        if (!w->cancelled && atomic_load(&d->stop)) {
            w->cancelled = true;
            w->stopping = true;
            cancel_inflight(w);
        }
        if (!w->stopping && d->cfg.requests == 0 && now >= d->measure_end_ns)
            w->stopping = true;
        if (open_loop) {
            slot *s;
            while (!w->stopping && w->next_send_ns <= now && (s = pop_free(w)) != NULL) {
                if (now - w->next_send_ns > NS_PER_MS)
                    w->late_sends++;
                if (!start_call(w, s, w->next_send_ns)) {
                    push_free(w, s);
                    break;
                }
                w->next_send_ns += w->interval_ns;
            }
        }
        if (w->stopping && w->inflight == 0)
            break;

        uint64_t wait_ns = IDLE_WAIT_NS;
        if (open_loop && !w->stopping && w->free_list) {
            now = now_ns();
            wait_ns = w->next_send_ns > now ? w->next_send_ns - now : 0;
            if (wait_ns > IDLE_WAIT_NS)
                wait_ns = IDLE_WAIT_NS;
        }
        grpc_event ev = grpc_completion_queue_next(w->cq, deadline_in_ns(wait_ns), NULL);
        if (ev.type != GRPC_OP_COMPLETE)
            continue;
        slot *s = ev.tag;
        finish_call(w, s, ev.success);
        if (open_loop || w->stopping || !start_call(w, s, now_ns()))
            push_free(w, s);
    }
    atomic_fetch_sub(&d->running, 1);
    return NULL;
}

/* ---- setup and teardown ---- */

static int connect_all(hw_drv *d, char *err, size_t errlen)
{
    int rc = 0;
    grpc_completion_queue *cq = grpc_completion_queue_create_for_next(NULL);
    gpr_timespec deadline = deadline_in_ns((uint64_t)d->cfg.connect_timeout_ms * NS_PER_MS);
    for (unsigned i = 0; i < d->n_conns && rc == 0; i++) {
        grpc_channel *ch = d->conns[i].channel;
        grpc_connectivity_state state;
        while ((state = grpc_channel_check_connectivity_state(ch, 1)) != GRPC_CHANNEL_READY) {
            if (state == GRPC_CHANNEL_SHUTDOWN) {
                rc = -ECONNREFUSED;
                break;
            }
            grpc_channel_watch_connectivity_state(ch, state, deadline, cq, &d->conns[i]);
            grpc_event ev = grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
            if (ev.type != GRPC_OP_COMPLETE || !ev.success) {
                rc = -ECONNREFUSED;
                break;
            }
        }
        if (rc != 0)
            snprintf(err, errlen, "cannot connect to %s within %u ms (connection %u)", d->cfg.target,
                     d->cfg.connect_timeout_ms, i + 1);
    }
    hw_client_cq_destroy(cq);
    return rc;
}

static int create_channels(hw_drv *d, char *err, size_t errlen)
{
    d->conns = calloc(d->n_conns, sizeof(*d->conns));
    if (!d->conns)
        return -ENOMEM;
    hw_channel_security sec = {.tls_ca_file = d->cfg.tls_ca_file, .tls_server_name = d->cfg.tls_server_name};
    for (unsigned i = 0; i < d->n_conns; i++) {
        /* A local subchannel pool per channel, and an argument that differs
         * per channel, so each channel opens its own TCP connection. */
        grpc_arg args[4];
        memset(args, 0, sizeof(args));
        /* The minimal filter stack: the client is a measuring tool and its
         * cost competes with the server's on the same cores. Deadlines are
         * still enforced by the call itself (checked against a server that
         * never answers). */
        args[3].type = GRPC_ARG_INTEGER;
        args[3].key = (char *)GRPC_ARG_MINIMAL_STACK;
        args[3].value.integer = 1;
        args[0].type = GRPC_ARG_INTEGER;
        args[0].key = (char *)GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL;
        args[0].value.integer = 1;
        args[1].type = GRPC_ARG_INTEGER;
        args[1].key = (char *)GRPC_ARG_ENABLE_RETRIES;
        args[1].value.integer = 0;
        args[2].type = GRPC_ARG_INTEGER;
        args[2].key = (char *)"helpwire.bench.connection";
        args[2].value.integer = (int)i;
        if (hw_channel_open(d->cfg.target, &sec, NULL, args, 4, &d->conns[i].channel, err, errlen) != 0)
            return -EINVAL;
        for (int k = 0; k < HW_RPC_COUNT; k++)
            d->conns[i].method[k] = grpc_channel_register_call(
                d->conns[i].channel, hw_rpc_info_of((hw_rpc_kind)k)->path, NULL, NULL);
    }
    return connect_all(d, err, errlen);
}

static int init_worker(hw_drv *d, worker *w, unsigned index)
{
    const hw_drv_config *cfg = &d->cfg;
    w->d = d;
    w->index = index;
    atomic_init(&w->progress_counted, 0);
    atomic_init(&w->progress_errors, 0);
    w->cq = grpc_completion_queue_create_for_next(NULL);
    hw_req_init(&w->req, cfg->corpus, cfg->ids, cfg->run_id, index, cfg->users, now_ns());
    for (int k = 0; k < HW_RPC_COUNT; k++) {
        w->stats[k].latency_ns = hw_hist_create();
        if (!w->stats[k].latency_ns)
            return -ENOMEM;
    }
    /* Connections i with i % n_workers == index belong to this worker. */
    for (unsigned c = index; c < d->n_conns; c += d->n_workers)
        w->n_slots += cfg->concurrency;
    w->slots = calloc(w->n_slots, sizeof(*w->slots));
    if (!w->slots)
        return -ENOMEM;
    size_t n = 0;
    for (unsigned c = index; c < d->n_conns; c += d->n_workers) {
        for (unsigned m = 0; m < cfg->concurrency; m++, n++) {
            slot *s = &w->slots[n];
            s->w = w;
            s->conn = &d->conns[c];
            hw_client_call_init(&s->rpc);
        }
    }
    for (size_t i = w->n_slots; i > 0; i--)
        push_free(w, &w->slots[i - 1]);
    if (cfg->rate > 0) {
        double total_slots = (double)cfg->connections * cfg->concurrency;
        double my_rate = cfg->rate * (double)w->n_slots / total_slots;
        w->interval_ns = (uint64_t)(1e9 / my_rate);
        if (w->interval_ns == 0)
            w->interval_ns = 1;
    }
    return 0;
}

static void free_worker(worker *w)
{
    if (w->cq)
        hw_client_cq_destroy(w->cq);
    for (size_t i = 0; w->slots && i < w->n_slots; i++)
        hw_client_call_fini(&w->slots[i].rpc);
    free(w->slots);
    for (int k = 0; k < HW_RPC_COUNT; k++)
        hw_hist_destroy(w->stats[k].latency_ns);
}

static int check_config(const hw_drv_config *cfg, char *err, size_t errlen)
{
    if (!cfg->target || !*cfg->target) {
        snprintf(err, errlen, "no target");
        return -EINVAL;
    }
    if (cfg->connections == 0 || cfg->concurrency == 0 || cfg->threads == 0) {
        snprintf(err, errlen, "connections, concurrency and threads must be at least 1");
        return -EINVAL;
    }
    if (cfg->requests == 0 && !(cfg->duration_s > 0)) {
        snprintf(err, errlen, "give a duration or a request count");
        return -EINVAL;
    }
    if (cfg->warmup_s < 0 || cfg->rate < 0 || cfg->timeout_ms == 0 || !cfg->mix || !cfg->corpus ||
        !cfg->run_id || cfg->mix->total == 0) {
        snprintf(err, errlen, "bad warm-up, rate, timeout or mix");
        return -EINVAL;
    }
    return 0;
}

int hw_drv_create(const hw_drv_config *cfg, hw_drv **out, char *err, size_t errlen)
{
    int rc = check_config(cfg, err, errlen);
    if (rc != 0)
        return rc;
    hw_drv *d = calloc(1, sizeof(*d));
    if (!d)
        return -ENOMEM;
    d->cfg = *cfg;
    d->n_conns = cfg->connections;
    d->n_workers = cfg->threads < cfg->connections ? cfg->threads : cfg->connections;
    atomic_init(&d->claimed, 0);
    atomic_init(&d->stop, false);
    atomic_init(&d->running, 0);
    d->workers = calloc(d->n_workers, sizeof(*d->workers));
    if (!d->workers) {
        rc = -ENOMEM;
        goto out;
    }
    if (hw_client_auth_init(&d->auth, cfg->token, err, errlen) != 0) {
        rc = -EINVAL;
        goto out;
    }
    rc = create_channels(d, err, errlen);
    if (rc != 0)
        goto out;
    for (unsigned i = 0; i < d->n_workers; i++) {
        rc = init_worker(d, &d->workers[i], i);
        if (rc != 0) {
            snprintf(err, errlen, "out of memory");
            goto out;
        }
    }
out:
    if (rc != 0) {
        hw_drv_destroy(d);
        return rc;
    }
    *out = d;
    return 0;
}

int hw_drv_start(hw_drv *d)
{
    d->start_ns = now_ns();
    d->measure_start_ns = d->start_ns + (uint64_t)(d->cfg.warmup_s * 1e9);
    d->measure_end_ns =
        d->cfg.requests > 0 ? UINT64_MAX : d->measure_start_ns + (uint64_t)(d->cfg.duration_s * 1e9);
    for (unsigned i = 0; i < d->n_workers; i++) {
        worker *w = &d->workers[i];
        if (w->interval_ns)
            w->next_send_ns = d->start_ns + w->interval_ns * i / d->n_workers;
    }
    d->started = true;
    for (unsigned i = 0; i < d->n_workers; i++) {
        atomic_fetch_add(&d->running, 1);
        int err = pthread_create(&d->workers[i].thread, NULL, worker_main, &d->workers[i]);
        if (err != 0) {
            atomic_fetch_sub(&d->running, 1);
            atomic_store(&d->stop, true);
            return -err;
        }
        d->workers[i].thread_started = true;
    }
    return 0;
}

void hw_drv_stop(hw_drv *d)
{
    atomic_store(&d->stop, true);
}

void hw_drv_progress_get(hw_drv *d, hw_drv_progress *out)
{
    uint64_t now = now_ns();
    memset(out, 0, sizeof(*out));
    out->since_start_s = (double)(now - d->start_ns) / 1e9;
    out->warming_up = now < d->measure_start_ns;
    for (unsigned i = 0; i < d->n_workers; i++) {
        out->counted += atomic_load_explicit(&d->workers[i].progress_counted, memory_order_relaxed);
        out->errors += atomic_load_explicit(&d->workers[i].progress_errors, memory_order_relaxed);
    }
}

bool hw_drv_wait(hw_drv *d, unsigned timeout_ms)
{
    if (d->joined)
        return true;
    uint64_t until = now_ns() + (uint64_t)timeout_ms * NS_PER_MS;
    for (;;) {
        if (atomic_load(&d->running) == 0)
            break;
        if (now_ns() >= until)
            return false;
        struct timespec nap = {0, 5 * 1000 * 1000};
        nanosleep(&nap, NULL);
    }
    for (unsigned i = 0; i < d->n_workers; i++) {
        if (d->workers[i].thread_started)
            pthread_join(d->workers[i].thread, NULL);
        d->workers[i].thread_started = false;
    }
    d->joined = true;
    return true;
}

static void merge_stats(hw_rpc_stats *dst, const hw_rpc_stats *src)
{
    dst->calls += src->calls;
    for (int i = 0; i < HW_STATUS_SLOTS; i++)
        dst->by_status[i] += src->by_status[i];
    dst->bytes_sent += src->bytes_sent;
    dst->bytes_received += src->bytes_received;
    hw_hist_merge(dst->latency_ns, src->latency_ns);
}

void hw_results_clear(hw_results *r)
{
    for (int k = 0; k < HW_RPC_COUNT; k++)
        hw_hist_destroy(r->rpc[k].latency_ns);
    hw_hist_destroy(r->total.latency_ns);
    memset(r, 0, sizeof(*r));
}

int hw_drv_results(hw_drv *d, hw_results *out)
{
    memset(out, 0, sizeof(*out));
    for (int k = 0; k < HW_RPC_COUNT; k++)
        out->rpc[k].latency_ns = hw_hist_create();
    out->total.latency_ns = hw_hist_create();
    for (int k = 0; k < HW_RPC_COUNT; k++) {
        if (!out->rpc[k].latency_ns || !out->total.latency_ns) {
            hw_results_clear(out);
            return -ENOMEM;
        }
    }
    uint64_t last_ns = d->measure_start_ns;
    for (unsigned i = 0; i < d->n_workers; i++) {
        worker *w = &d->workers[i];
        for (int k = 0; k < HW_RPC_COUNT; k++) {
            merge_stats(&out->rpc[k], &w->stats[k]);
            merge_stats(&out->total, &w->stats[k]);
        }
        out->warmup_calls += w->warmup_calls;
        out->late_sends += w->late_sends;
        if (w->last_done_ns > last_ns)
            last_ns = w->last_done_ns;
    }
    out->elapsed_s = (double)(last_ns - d->measure_start_ns) / 1e9;
    out->interrupted = atomic_load(&d->stop);
    return 0;
}

void hw_drv_destroy(hw_drv *d)
{
    if (!d)
        return;
    if (d->started && !d->joined) {
        hw_drv_stop(d);
        while (!hw_drv_wait(d, 1000))
            ;
    }
    /* Every call is finished once the workers have returned; channels go
     * before the queues they used. */
    for (unsigned i = 0; d->conns && i < d->n_conns; i++) {
        if (d->conns[i].channel)
            grpc_channel_destroy(d->conns[i].channel);
    }
    for (unsigned i = 0; d->workers && i < d->n_workers; i++)
        free_worker(&d->workers[i]);
    free(d->conns);
    free(d->workers);
    hw_client_auth_clear(&d->auth);
    free(d);
}
