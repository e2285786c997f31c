/*
 * app: the server context handed to every handler (as the `app` pointer of
 * the method table). It only points at the modules; main owns them all and
 * creates them in order. There is no other global state.
 */
#ifndef HW_APP_H
#define HW_APP_H

#include <stdatomic.h>
#include <stdint.h>

#include "server/domain/effects.h"
#include "server/net/health.h"
#include "server/base/log.h"
#include "server/base/metrics.h"
#include "server/net/net.h"

typedef struct hw_clock hw_clock;
typedef struct hw_timers hw_timers;
typedef struct hw_hours_cache hw_hours_cache;
typedef struct hw_store hw_store;
typedef struct hw_store_reader hw_store_reader;
typedef struct hw_index hw_index;
typedef struct hw_searcher hw_searcher;
typedef struct hw_indexer hw_indexer;
typedef struct hw_synonyms hw_synonyms;
typedef struct hw_outbox hw_outbox;
typedef struct hw_notifier hw_notifier;
typedef struct hw_watch hw_watch;
typedef struct hw_reflection hw_reflection;
typedef struct hw_repl hw_repl;
typedef struct hw_route_limits hw_route_limits;
typedef struct hw_signals hw_signals;

/* Per worker thread: created by the worker itself when it starts. */
typedef struct hw_tokenizer hw_tokenizer;
typedef struct hw_classify_model hw_classify_model;

typedef struct hw_worker_ctx {
    hw_store_reader *reader;
    hw_searcher *searcher;
    hw_tokenizer *tokenizer;        /* for skill classification */
    hw_classify_model *skill_model; /* the skills' keywords, tokenized; NULL until first used */
    uint64_t skill_model_gen;       /* the app's skills_gen it was built at */
} hw_worker_ctx;

/* Domain settings from the configuration. */
typedef struct hw_settings {
    double answer_threshold;     /* confidence needed to auto-reply, (0, 1] */
    uint32_t route_hits;         /* hits listed in a Route reply, 1..5 (0 = 3) */
    const char *survey_base_url; /* survey links are base + token */
    int64_t survey_ttl_ms;       /* a survey expires this long after it is sent */
    const char *webhook_url;     /* supervisor alerts; NULL = none */
    /* Their signing secrets (webhook_sign.h), owned by main; NULL = unsigned. */
    const struct hw_webhook_keys *webhook_keys;
    int64_t alert_retention_ms;  /* undelivered alerts older than this are dropped; 0 = kept */
    /* UNASSIGNABLE after waiting this long (a skill's own limit wins) */
    int64_t unassigned_alert_after_ms;
    int64_t reassign_grace_ms; /* an away/offline agent's tickets move after this */
    uint64_t attachment_max_bytes; /* CommitAttachment's limit; 0 = 20 MiB (attachments.h) */
    /* WhatsApp outside the 24-hour window: the approved template replies
     * are sent as (--whatsapp-template NAME[:LANG]); NULL = none, such
     * replies are refused. */
    const char *whatsapp_template_name;
    const char *whatsapp_template_language;
} hw_settings;

typedef struct hw_app {
    const hw_log *log;
    hw_clock *clock;                 /* the time of day for everything the domain stores */
    hw_health *health;
    hw_net *net;
    hw_metrics *metrics;
    hw_store *store;
    hw_index *index;
    hw_indexer *indexer;             /* applies knowledge changes to index (hw-indexer) */
    hw_synonyms *synonyms;           /* synonym sets: store <-> index (synonyms.h) */
    hw_outbox *outbox;               /* Outbox hub */
    hw_notifier *notifier;           /* supervisor webhook sender */
    hw_watch *watch;                 /* WatchTickets hub */
    hw_timers *timers;               /* durable one-shot timers (hw-timers) */
    hw_hours_cache *hours_cache;     /* skills' compiled business hours (hours.h) */
    hw_reflection *reflection;       /* server reflection index */
    hw_repl *repl;                   /* raft replication (server/repl); NULL on a single node */
    hw_route_limits *route_limits;   /* Route's per-sender limits (limits.h); NULL = none */
    hw_signals *signals;             /* SendChannelSignal's TYPING memory and counts (signals.h); NULL = none */
    const char *grpc_address;        /* where clients reach this server (host:port), or NULL */
    hw_worker_ctx *workers;          /* [threads] */
    atomic_uint_fast64_t skills_gen; /* bumped after every committed skill change */
    hw_effects_sinks after_commit;   /* where committed writes' effects go (main wires it) */
    int n_workers;
    hw_settings settings;
    int64_t started_unix_ms;
} hw_app;

#endif
