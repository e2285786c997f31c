/*
 * net: the gRPC C-core server of helpwired. N worker threads, each with its
 * own completion queue; every method of the method table is registered
 * (payload read with the initial batch) and kept pre-requested on every
 * worker; a unary call is decoded into a per-call arena, handed to its
 * handler, and answered in one batch (initial metadata, message, status,
 * close). Server-streaming methods get a send queue per call.
 *
 * Calls to methods not in the table are requested too and refused at once
 * with UNIMPLEMENTED (left alone, the core would hold them until their
 * deadline). Undecodable payloads get INVALID_ARGUMENT, oversize ones
 * RESOURCE_EXHAUSTED (over max_message_bytes here, counted; over twice
 * that by the core's size limit, before any call exists), expired calls
 * DEADLINE_EXCEEDED without running the handler, and calls arriving while
 * the server drains UNAVAILABLE.
 *
 * Every non-OK status carries a google.rpc.Status in the trailing metadata
 * "grpc-status-details-bin" (status_details.h decides what it holds: an
 * ErrorInfo always, and BadRequest, RetryInfo or PreconditionFailure by
 * code); hw_call_fail_field and hw_call_fail_ex say more than the code.
 *
 * Nothing here knows about the domain: handlers are plain functions that
 * receive the decoded request and an opaque application pointer.
 *
 * Tracing: every call has a W3C trace context (trace.h), continued from
 * its `traceparent` metadata or started here with the worker's own id
 * generator. While a worker handles a call's events (the handler, its
 * replies, the access line) the thread's log trace (hw_log_set_trace) is
 * the call's trace id, so every line written on its behalf ends with
 * trace=<id>; hw_call_fail and the access line set it themselves when they
 * run on another thread. A call relayed to the leader carries this call's
 * span as the leader's parent (traceparent) and the caller's tracestate.
 *
 * Access log (hw_log_access_enabled): one line per call when it ends,
 *   event=rpc method=<path> status=<code name> us=<microseconds>
 *   peer=<gRPC peer, e.g. ipv4:127.0.0.1:41234> req_bytes=<N> resp_bytes=<N>
 *   token=<token id or -> span=<this call's span id> [cancelled=true]
 *   trace=<trace id>
 * req_bytes / resp_bytes: the serialized (uncompressed) request and reply
 * messages, summed over a stream's messages; 0 when none was read or sent.
 * token: the id the authorization hook named (hw_call_set_token_id), "-"
 * for public methods and refused calls; never the secret.
 */
#ifndef HW_NET_H
#define HW_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <grpc/status.h>
#include <protobuf-c/protobuf-c.h>

#include "server/base/arena.h"
#include "server/base/log.h"
#include "server/base/metrics.h"
#include "server/base/trace.h"
#include "server/net/status_details.h"

typedef struct hw_net hw_net;
typedef struct hw_call hw_call;

/* Who may call a method: a bit set. HW_ALLOW_PUBLIC needs no credential. */
enum {
    HW_ALLOW_PUBLIC = 1u << 0,
    HW_ALLOW_BRIDGE = 1u << 1,
    HW_ALLOW_AGENT = 1u << 2,
    HW_ALLOW_ADMIN = 1u << 3,
};

/* A handler runs on a worker thread. A unary handler must eventually call
 * hw_call_reply() or hw_call_fail() exactly once, from any thread (for
 * example the store's writer thread after a commit). A streaming handler
 * sends with hw_call_stream_send() and ends with hw_call_fail() (status OK
 * allowed); to keep the stream after returning it takes a reference
 * (hw_call_ref) and registers hw_call_on_close. */
typedef void (*hw_handler_fn)(hw_call *call, const ProtobufCMessage *request, void *app);

/* One row of the method table. */
typedef struct hw_method {
    const char *path; /* "/helpwire.v1.Router/Route" */
    const ProtobufCMessageDescriptor *request;
    const ProtobufCMessageDescriptor *reply;
    hw_handler_fn handler;
    unsigned allow; /* HW_ALLOW_* bits */
    bool server_streaming;
    /* Bidirectional (with server_streaming): the handler runs once per
     * request message the client sends, on the stream's worker, one at a
     * time; when the client half-closes, the stream ends with OK unless the
     * handler ended it before. */
    bool client_streaming;
    /* Served while the server drains (health: probes must read NOT_SERVING
     * during the grace period, not an error); other methods then get
     * UNAVAILABLE. */
    bool during_drain;
    /* Changes the store: on a replica that is not the leader the call is
     * forwarded to the leader (hw_net_options.cluster). */
    bool write;
} hw_method;

/* Replication hooks (all NULL on a single node), called on worker threads.
 *
 * Forwarding: a call to a write method (or any call carrying metadata
 * "helpwire-read: leader") on a replica whose leader_target names another
 * replica is relayed to it as it came (path, request bytes, authorization
 * and other metadata, deadline; with metadata "helpwire-forwarded: 1", and
 * a forwarded call is never forwarded again), and its answer (message,
 * status, details, trailing metadata) is relayed back once this replica has
 * applied the leader's index (trailing "helpwire-applied-index"), so a
 * client reading here next reads its own write. The relay is asynchronous
 * (on the worker's completion queue); the call's deadline bounds it.
 * Authorization runs here first: a refused call is not relayed. A leader
 * that cannot be reached gives UNAVAILABLE "forwarding to leader ADDR:
 * <why>". Only unary calls are relayed: a streaming call with
 * "helpwire-read: leader" gets UNIMPLEMENTED ("helpwire-read: leader is
 * for unary calls"), as would a streaming write method on a follower.
 * The relay is plaintext gRPC to the address leader_target gives.
 *
 * Read your writes: a call with metadata "helpwire-min-applied-index: N" is
 * handled once applied_index >= N (waiting with when_applied, bounded by
 * its deadline: DEADLINE_EXCEEDED "waiting for applied index N (at M)"
 * then); the handler still runs on the call's worker. N that is not a
 * decimal index gives INVALID_ARGUMENT. At shutdown, waits still pending
 * when the drain times out end with UNAVAILABLE.
 *
 * Every reply carries trailing metadata "helpwire-applied-index" (the
 * applied index when it was sent; unary replies, errors and stream ends).
 * With cluster NULL none of this happens: the headers are ignored. */
typedef struct hw_net_cluster {
    /* Copies the leader's gRPC address ("host:port") into buf and returns
     * true when calls to write methods must go there; false: handle them
     * here (this replica leads, or no leader is known: the handler's write
     * then fails with UNAVAILABLE). */
    bool (*leader_target)(void *app, char *buf, size_t len);
    uint64_t (*applied_index)(void *app);
    /* Calls cb(arg, ok) once applied_index >= index (at once if it is); ok
     * false when the server stops first. */
    void (*when_applied)(void *app, uint64_t index, void (*cb)(void *arg, bool ok), void *arg);
} hw_net_cluster;

typedef struct hw_net_options {
    const char *const *listen; /* plaintext addresses; port 0 binds a free port */
    size_t n_listen;
    const char *const *tls_listen; /* TLS addresses (need tls_cert_pem, tls_key_pem) */
    size_t n_tls_listen;
    const char *tls_cert_pem;      /* certificate chain, PEM text */
    const char *tls_key_pem;       /* private key, PEM text */
    const char *tls_client_ca_pem; /* non-NULL: require and verify client certificates */
    int max_in_flight;             /* 0 = unbounded; public methods exempt */
    /* > 0: unary calls are also admitted under a limit that adapts (within
     * [HW_NET_MIN_LIMIT, max_in_flight]) so that their mean latency stays
     * near this many microseconds; streams are exempt from it. */
    int latency_target_us;
    /* May be NULL. Created with hw_metrics_create_server for this method
     * table (same rows) and at least `threads` workers: every call is
     * counted there, started, messages, handled, on its worker's counters. */
    hw_metrics *metrics;
    int threads;          /* >= 1 */
    int calls_per_method; /* pre-requested per method and worker */
    int max_message_bytes;
    int max_concurrent_streams;
    int keepalive_time_ms;
    int keepalive_timeout_ms;
    int min_ping_interval_ms;
    const hw_method *methods; /* the method table; must outlive the server */
    size_t n_methods;
    void *app;         /* passed to every handler */
    const hw_log *log; /* may be NULL */
    /* Called on each worker thread before it serves / after it stops, with
     * the worker's index (per-thread state such as store readers). May be
     * NULL. */
    void (*worker_start)(void *app, int worker);
    /* Called for every call to a non-public method before its request is
     * decoded; returns false after failing the call (UNAUTHENTICATED,
     * PERMISSION_DENIED). NULL lets every call through. */
    bool (*authorize)(void *app, hw_call *call, const hw_method *method);
    void (*worker_stop)(void *app, int worker);
    /* NULL on a single node; must outlive the server. */
    const hw_net_cluster *cluster;
} hw_net_options;

/* Creates the server and binds every address. Returns 0, or -1 with one
 * line in err. Not started yet. */
int hw_net_create(hw_net **out, const hw_net_options *opts, char *err, size_t errlen);

/* The address actually bound for entry i (port 0 resolved), e.g.
 * "127.0.0.1:43517"; entries are the plaintext addresses, then the TLS
 * ones. Owned by net; NULL past the end. */
const char *hw_net_bound_address(const hw_net *net, size_t i);

/* Starts the workers. Returns 0 or -1 with err. */
int hw_net_start(hw_net *net, char *err, size_t errlen);

/* From now on new calls get UNAVAILABLE; in-flight calls go on. Thread-safe,
 * idempotent. */
void hw_net_begin_drain(hw_net *net);

/* Whether hw_net_begin_drain was called. */
bool hw_net_draining(const hw_net *net);

/* Drains and stops: ends open streams with UNAVAILABLE, closes the
 * listeners, waits up to timeout_ms for in-flight calls, then cancels the
 * rest, waits for every handler to answer, and joins the workers. Returns
 * 0 when every call finished by itself, 1 when some had to be cancelled.
 * Call once, from the thread that started the server. */
int hw_net_shutdown(hw_net *net, int64_t timeout_ms);

/* Frees the server (after hw_net_shutdown, or if never started). */
void hw_net_destroy(hw_net *net);

/* Calls currently being handled. */
int64_t hw_net_calls_in_flight(const hw_net *net);

/* The adaptive admission limit's bounds and first value. */
#define HW_NET_MIN_LIMIT 4
#define HW_NET_START_LIMIT 64

/* Unary calls admitted at once now: the adaptive limit when
 * latency_target_us is set, else max_in_flight (0 = unbounded). */
int64_t hw_net_admission_limit(const hw_net *net);

/* Whether a request protobuf-c decoded, and every message in it, is free
 * of unknown fields numbered 0. protobuf-c lets such a field through when
 * its tag is written in more bytes than needed (0x80 0x00), keeps it, and
 * writes it back in the short form, which no decoder accepts (protobuf-c's
 * neither): echoed or stored, it would make replies undecodable. net
 * answers such a request INVALID_ARGUMENT, as it answers any payload that
 * does not decode (other protobuf decoders refuse field number 0 too). */
bool hw_net_request_decodable(const ProtobufCMessage *m);

/* ---- per call (valid from the handler until the call ends) ---- */

/* Memory for this call; freed when the call ends. */
hw_arena *hw_call_arena(hw_call *call);

/* The worker index the call arrived on (0..threads-1). */
int hw_call_worker(const hw_call *call);

/* The method table row of the call. */
const hw_method *hw_call_method(const hw_call *call);

/* The first value of request metadata key (lower-case), NUL-terminated in
 * the call's arena, or NULL. */
const char *hw_call_metadata(hw_call *call, const char *key);

/* Who is calling, as established by the authorization hook (see
 * hw_net_options.authorize); NULL when the method is public or no hook is
 * set. Lives as long as the call. */
const void *hw_call_principal(const hw_call *call);
void hw_call_set_principal(hw_call *call, const void *principal);

/* The call's W3C trace context (see the top of this file). */
const hw_trace *hw_call_trace(const hw_call *call);

/* The caller's tracestate, passed on with the trace; NULL when it sent
 * none, or an unusable one (hw_trace_state_ok), or its traceparent was not
 * valid. In the call's arena. */
const char *hw_call_tracestate(const hw_call *call);

/* The caller's address as gRPC reports it ("ipv4:127.0.0.1:40112"), in
 * the call's arena; "" when unknown. */
const char *hw_call_peer(hw_call *call);

/* For the authorization hook: the id of the token the call presented
 * (never the secret), written as token= on the call's access line.
 * Borrowed: must live as long as the call (its arena). */
void hw_call_set_token_id(hw_call *call, const char *token_id);

/* For the authorization hook of a replica: the credential is not known
 * here (yet: a token created on the leader and not applied here), so the
 * call goes to the leader as it came, which decides; the hook then returns
 * true without a principal. Returns false (nothing changes) on a single
 * node and for a call already forwarded to this replica; the hook then
 * refuses the call itself. A call marked so that finds no leader to go to,
 * or is a stream, is refused with UNAUTHENTICATED. */
bool hw_call_forward_to_leader(hw_call *call);

/* Unary: sends reply with status OK. Any thread, once. reply is packed
 * before return; the caller keeps ownership. From a thread other than the
 * call's worker (a store's done callback), the packed reply is handed to
 * the worker, which sends it (see hw_call_reply_kept). */
void hw_call_reply(hw_call *call, const ProtobufCMessage *reply);

/* Unary: hw_call_reply for a reply that lives as long as the call (in its
 * arena) and is not changed after this call: from a thread other than the
 * call's worker (the store's writer, after a commit), the reply is packed
 * and sent by the call's worker, not by the calling thread, which only
 * pushes the call on the worker's hand-off list (and, for the first reply
 * on an empty list, wakes the worker with a batch of that call's initial
 * metadata: one small batch per wake-up rather than one reply batch per
 * call). On the worker itself it is hw_call_reply. Any thread, once. */
void hw_call_reply_kept(hw_call *call, const ProtobufCMessage *reply);

/* Whether a unary reply sent from a thread other than the call's worker
 * is handed to the worker (the default) or sent by the calling thread
 * itself: a store writer with little to do answers sooner itself, a busy
 * one is spared the replies. Before the reply, from the replying thread. */
void hw_call_set_handoff(hw_call *call, bool hand_off);

/* Unary: sends bytes[0..len), a reply message packed already (the method's
 * reply type), with status OK. bytes must live as long as the call (its
 * arena): off the call's worker they are copied into the reply by the
 * worker, as hw_call_reply_kept. Any thread, once. On a stream the call
 * is failed with INTERNAL. */
void hw_call_reply_packed(hw_call *call, const void *bytes, size_t len);

/* Unary: ends the call with code and a message (printf format, may be
 * NULL). Streaming: ends the stream after the queued messages. Any thread. */
void hw_call_fail(hw_call *call, grpc_status_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* hw_call_fail with what the error details should say beyond the code
 * (reason, field, subject, retry delay; hint may be NULL, its strings are
 * copied before return). Without a hint the details come from the code
 * and, for INVALID_ARGUMENT, the "field: why" prefix of the text. The
 * details are encoded into the call's arena (streams: malloc'd, freed with
 * the call). Any thread, like hw_call_fail. */
void hw_call_fail_ex(hw_call *call, grpc_status_code code, const hw_error_hint *hint, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* INVALID_ARGUMENT naming field (ErrorInfo INVALID_FIELD, BadRequest). */
void hw_call_fail_field(hw_call *call, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Streaming: queues msg (packed now; caller keeps ownership). Any thread.
 * Returns 0, or -1 when the stream has ended (cancelled or finished). */
int hw_call_stream_send(hw_call *call, const ProtobufCMessage *msg);

/* A server stream's initial metadata (its response headers) goes out when
 * its handler returns, so a client that has the headers knows what the
 * handler set up (a watch in its hub) is in place; messages sent before
 * that queue behind the headers. */

/* Streaming, for a sender on its own thread (never a worker: the sends
 * complete on the call's worker): waits until at most max_waiting messages
 * are queued or in flight, so that a large transfer keeps a bounded amount
 * in memory instead of the send queue's limit. The caller holds a
 * reference. Returns 0, or -1 once the stream has ended or is ending
 * (cancelled, deadline, hw_call_fail, shutdown). */
int hw_call_stream_wait(hw_call *call, size_t max_waiting);

/* Streaming: reference counting for holders of a stream (watch lists). */
void hw_call_ref(hw_call *call);
void hw_call_unref(hw_call *call);

/* Streaming: fn(call, arg) runs once on a worker thread when the stream
 * ends for any reason (client cancel, deadline, finish, shutdown). Set it
 * from the handler before returning. */
void hw_call_on_close(hw_call *call, void (*fn)(hw_call *call, void *arg), void *arg);

#endif
