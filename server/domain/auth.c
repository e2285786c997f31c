/*
 * auth: token checks and the token RPCs of the Admin service (see
 * auth.h).
 *
 * A presented secret is hashed and the hash is the key looked up in the
 * store; the secret itself is never compared or stored. (The lookup's
 * timing depends on the hash, which tells an attacker nothing about any
 * secret's preimage.)
 */
#include "server/domain/auth.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "server/base/files.h"
#include "server/domain/audit.h"
#include "server/domain/rpc.h"
#include "server/base/secret.h"
#include "server/store/records.h"

#define SECRET_RANDOM_BYTES 32 /* 256 bits */
#define MAX_DESCRIPTION 256
#define DENIED_NS HW_STORE_AUDIT_DENIED_NS /* (token id \0 method) -> be64 ms of the last entry */
#define DENIED_EVERY_MS 60000    /* at most one access.denied per (token, method) per minute */

static const struct {
    Helpwire__V1__Role role;
    unsigned allow;
    const char *name;
} roles[] = {
    {HELPWIRE__V1__ROLE__ROLE_BRIDGE, HW_ALLOW_BRIDGE, "bridge"},
    {HELPWIRE__V1__ROLE__ROLE_AGENT, HW_ALLOW_AGENT, "agent"},
    {HELPWIRE__V1__ROLE__ROLE_ADMIN, HW_ALLOW_ADMIN, "admin"},
};

static int role_index(Helpwire__V1__Role r)
{
    for (size_t i = 0; i < sizeof roles / sizeof roles[0]; i++)
        if (roles[i].role == r)
            return (int)i;
    return -1;
}

/* ---- access.denied: a refused admin call, recorded at most once per
 * (token, method) per minute. The last entry's time per pair is a kv
 * record; the worker reads it first and submits a write only when an
 * entry is due, and the write checks again, so a flood of refused calls
 * costs reads, not log entries nor (mostly) writes. */

typedef struct denied_ctx {
    int64_t now;
    char key[128 + 256];
    size_t key_len;
    char *token_id, *role, *agent, *method, *peer, *trace_id;
} denied_ctx;

static void be64_put(unsigned char *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (unsigned char)(v & 0xffu);
}

static uint64_t be64_get(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

static void denied_key(const char *token_id, const char *method, char *key, size_t len, size_t *n)
{
    int k = snprintf(key, len, "%s%c%s", token_id, '\0', method);
    *n = k < 0 ? 0 : (size_t)k < len ? (size_t)k : len - 1;
}

/* Whether an entry for (token, method) is due at now (1), per the kv
 * record read in t; 0 when one was written less than a minute ago. */
static int denied_due_in(hw_store_txn *t, hw_arena *a, const char *key, size_t key_len, int64_t now)
{
    void *v = NULL;
    size_t vl = 0;
    if (hw_store_kv_get(t, DENIED_NS, key, key_len, a, &v, &vl) != HW_OK || vl != 8)
        return 1;
    int64_t last = (int64_t)be64_get(v);
    return now - last >= DENIED_EVERY_MS || now < last;
}

static int t_denied_due(hw_app *app, hw_call *call, const char *token_id, const char *method)
{
    char key[128 + 256];
    size_t kl;
    denied_key(token_id, method, key, sizeof key, &kl);
    hw_store_txn *t = hw_rpc_read(call, app);
    if (!t)
        return 0;
    int due = denied_due_in(t, hw_call_arena(call), key, kl, hw_rpc_now_ms(app));
    hw_rpc_read_end(call, app);
    return due;
}

static int denied_fn(hw_store_txn *w, void *arg)
{
    denied_ctx *d = arg;
    if (!denied_due_in(w, hw_store_txn_arena(w), d->key, d->key_len, d->now))
        return HW_OK; /* another refused call wrote it meanwhile */
    hw_audit_rec r = {.actor = d->token_id,
                      .action = "access.denied",
                      .target = d->method,
                      .outcome = HELPWIRE__V1__AUDIT_OUTCOME__AUDIT_OUTCOME_DENIED,
                      .peer = d->peer,
                      .trace_id = d->trace_id};
    hw_audit_detail(&r, "role", d->role);
    if (d->agent[0])
        hw_audit_detail(&r, "agent", d->agent);
    hw_audit_detail(&r, "reason", "the token's role may not call the method");
    int rc = hw_audit_append(w, d->now, &r);
    if (rc != HW_OK)
        return rc;
    unsigned char v[8];
    be64_put(v, (uint64_t)d->now);
    return hw_store_kv_put(w, DENIED_NS, d->key, d->key_len, v, sizeof v);
}

static void denied_done(void *arg, int status)
{
    (void)status; /* best effort: the call is refused either way */
    denied_ctx *d = arg;
    free(d->token_id);
    free(d->role);
    free(d->agent);
    free(d->method);
    free(d->peer);
    free(d->trace_id);
    free(d);
}

/* Submits the access.denied entry when due (the call may end first: the
 * context owns copies). */
static void note_denied(hw_app *app, hw_call *call, int due, const Helpwire__V1__TokenInfo *info,
                        const char *role, const char *method)
{
    if (!due)
        return;
    denied_ctx *d = calloc(1, sizeof *d);
    if (!d)
        return;
    hw_call_set_token_id(call, info->id); /* the access line names the refused token too */
    const hw_trace *tr = hw_call_trace(call);
    char actor[160];
    snprintf(actor, sizeof actor, "token:%s", info->id);
    d->now = hw_rpc_now_ms(app);
    denied_key(info->id, method, d->key, sizeof d->key, &d->key_len);
    d->token_id = strdup(actor);
    d->role = strdup(role);
    d->agent = strdup(info->role == HELPWIRE__V1__ROLE__ROLE_AGENT && info->agent_id ? info->agent_id : "");
    d->method = strdup(method);
    d->peer = strdup(hw_call_peer(call));
    d->trace_id = strdup(tr ? tr->trace_id : "");
    if (!d->token_id || !d->role || !d->agent || !d->method || !d->peer || !d->trace_id ||
        hw_store_submit(app->store, denied_fn, denied_done, d) != HW_OK)
        denied_done(d, HW_ENOMEM);
}

bool hw_auth_authorize(void *appv, hw_call *call, const hw_method *m)
{
    hw_app *app = appv;
    const char *h = hw_call_metadata(call, "authorization");
    if (!h || strncasecmp(h, "Bearer ", 7) != 0 || !h[7]) {
        hw_call_fail(call, GRPC_STATUS_UNAUTHENTICATED,
                     "missing credentials: send metadata 'authorization: Bearer <token>'");
        return false;
    }
    const char *secret = h + 7;
    unsigned char hash[HW_SECRET_HASH_BYTES];
    if (strlen(secret) > 512 || hw_secret_hash(secret, strlen(secret), hash) != 0) {
        hw_call_fail(call, GRPC_STATUS_UNAUTHENTICATED, "invalid token");
        return false;
    }
    hw_store_txn *t = hw_rpc_read(call, app);
    if (!t)
        return false;
    Helpwire__V1__TokenInfo *info = NULL;
    hw_arena *a = hw_call_arena(call);
    int rc = hw_store_token_get_by_hash(t, hash, sizeof hash, a, &info);
    hw_rpc_read_end(call, app);
    if (rc == HW_ENOTFOUND && app->repl && !hw_store_is_leader(app->store) && hw_call_forward_to_leader(call))
        return true; /* a token this replica has not applied yet: the leader decides */
    if (rc == HW_ENOTFOUND || (rc == HW_OK && info->revoked_unix_ms)) {
        hw_call_fail(call, GRPC_STATUS_UNAUTHENTICATED, "unknown or revoked token");
        return false;
    }
    if (rc != HW_OK) {
        hw_rpc_fail(call, rc, "checking the token failed: %s", hw_strerror(rc));
        return false;
    }
    int ri = role_index(info->role);
    if (ri < 0 || !(m->allow & roles[ri].allow)) {
        if (m->allow == HW_ALLOW_ADMIN)
            note_denied(app, call, t_denied_due(app, call, info->id, m->path), info,
                        ri < 0 ? "?" : roles[ri].name, m->path);
        hw_call_fail(call, GRPC_STATUS_PERMISSION_DENIED, "a %s token may not call %s",
                     ri < 0 ? "?" : roles[ri].name, m->path);
        return false;
    }
    hw_principal *p = hw_arena_calloc(a, 1, sizeof *p);
    if (!p) {
        hw_call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "server out of memory");
        return false;
    }
    p->role = (int)roles[ri].allow;
    p->token_id = info->id;
    p->agent_id = info->role == HELPWIRE__V1__ROLE__ROLE_AGENT ? info->agent_id : NULL;
    p->actor = p->agent_id ? hw_arena_printf(a, "agent:%s", p->agent_id)
                           : hw_arena_printf(a, "%s:%s", roles[ri].name, info->id);
    hw_call_set_principal(call, p);
    hw_call_set_token_id(call, info->id);
    return true;
}

int hw_auth_create_token_in(hw_store_txn *w, Helpwire__V1__Role role, const char *agent_id,
                            const char *description, int64_t now_ms, hw_arena *a,
                            Helpwire__V1__TokenInfo **info_out, char **secret_out)
{
    if (role_index(role) < 0)
        return HW_EINVALID;
    if (role == HELPWIRE__V1__ROLE__ROLE_AGENT) {
        Helpwire__V1__Agent *ag;
        int rc = agent_id && *agent_id ? hw_store_agent_get(w, agent_id, a, &ag) : HW_EINVALID;
        if (rc != HW_OK)
            return rc;
    }
    uint64_t n;
    int rc = hw_store_next_seq(w, "token", 1, &n);
    if (rc != HW_OK)
        return rc;
    char *secret = hw_arena_alloc(a, 3 + (SECRET_RANDOM_BYTES + 2) / 3 * 4 + 1);
    Helpwire__V1__TokenInfo *info = hw_arena_alloc(a, sizeof *info);
    if (!secret || !info)
        return HW_ENOMEM;
    if (hw_secret_new("hw_", SECRET_RANDOM_BYTES, secret, 3 + (SECRET_RANDOM_BYTES + 2) / 3 * 4 + 1) != 0)
        return HW_EIO;
    unsigned char hash[HW_SECRET_HASH_BYTES];
    if (hw_secret_hash(secret, strlen(secret), hash) != 0)
        return HW_EIO;
    helpwire__v1__token_info__init(info);
    info->id = hw_arena_printf(a, "tok-%llu", (unsigned long long)n);
    info->role = role;
    info->agent_id = (char *)(role == HELPWIRE__V1__ROLE__ROLE_AGENT ? agent_id : "");
    info->description = (char *)(description ? description : "");
    info->created_unix_ms = now_ms;
    rc = hw_store_token_put(w, info, hash, sizeof hash, HW_PUT_CREATE);
    *info_out = info;
    *secret_out = secret;
    return rc;
}

/* ----------------------------------------------------- start-up tokens */

typedef struct {
    const char *agent_id;
    char *secrets[3];
    hw_arena *a;
} demo_ctx;

static int demo_fn(hw_store_txn *w, void *arg)
{
    demo_ctx *d = arg;
    for (size_t i = 0; i < 3; i++) {
        Helpwire__V1__TokenInfo *info;
        int rc = hw_auth_create_token_in(w, roles[i].role, d->agent_id, "demo", hw_effects_now_ms(NULL), d->a,
                                         &info, &d->secrets[i]);
        if (rc != HW_OK)
            return rc;
    }
    return HW_OK;
}

int hw_auth_demo_tokens(hw_store *store, const char *agent_id, FILE *out)
{
    demo_ctx d = {.agent_id = agent_id, .a = hw_arena_create(0)};
    if (!d.a)
        return HW_ENOMEM;
    int rc = hw_store_write(store, demo_fn, &d);
    if (rc == HW_OK)
        for (size_t i = 0; i < 3; i++)
            fprintf(out, "helpwired token %s %s\n", roles[i].name, d.secrets[i]);
    hw_arena_destroy(d.a);
    return rc;
}

typedef struct {
    hw_arena *a;
    char *secret;
    bool created;
} boot_ctx;

static int boot_fn(hw_store_txn *w, void *arg)
{
    boot_ctx *b = arg;
    hw_store_cursor cur = {0};
    Helpwire__V1__TokenInfo **list, *info;
    size_t n;
    b->created = false;
    int rc = hw_store_token_list(w, &cur, 1, b->a, &list, &n);
    if (rc != HW_OK || n > 0)
        return rc;
    int64_t now = hw_effects_now_ms(NULL);
    rc = hw_auth_create_token_in(w, HELPWIRE__V1__ROLE__ROLE_ADMIN, NULL, "bootstrap", now, b->a, &info,
                                 &b->secret);
    if (rc != HW_OK)
        return rc;
    hw_audit_rec r = {.actor = "system", .action = "token.create", .target = info->id};
    hw_audit_detail(&r, "token_role", "admin");
    hw_audit_detail(&r, "description", "bootstrap");
    if ((rc = hw_audit_append(w, now, &r)) != HW_OK)
        return rc;
    b->created = true;
    return HW_OK;
}

int hw_auth_bootstrap(hw_store *store, const char *path, bool *created, char *err, size_t errlen)
{
    boot_ctx b = {.a = hw_arena_create(0)};
    *created = false;
    if (!b.a)
        return HW_ENOMEM;
    /* Claim the file first, so a failure leaves no token nobody can see. An
     * empty file is a claim that a crash or power cut interrupted: the
     * token is made again if the store still has none. */
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    struct stat st;
    if (fd < 0 && errno == EEXIST && stat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == 0 &&
        unlink(path) == 0)
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    int rc = HW_OK;
    if (fd < 0) {
        if (errno == EEXIST) /* kept from an earlier start */
            goto out;
        snprintf(err, errlen, "--bootstrap-token-file %s: %s", path, strerror(errno));
        rc = HW_EIO;
        goto out;
    }
    rc = hw_store_write(store, boot_fn, &b);
    if (rc == HW_OK && b.created) {
        size_t len = strlen(b.secret);
        if (write(fd, b.secret, len) != (ssize_t)len || write(fd, "\n", 1) != 1 || fsync(fd) != 0 ||
            hw_fsync_parent(path) != 0) {
            snprintf(err, errlen, "--bootstrap-token-file %s: %s", path, strerror(errno));
            rc = HW_EIO;
        }
        *created = rc == HW_OK;
    } else if (rc != HW_OK) {
        snprintf(err, errlen, "creating the bootstrap token failed: %s", hw_strerror(rc));
    }
    close(fd);
    if (!*created)
        unlink(path);
out:
    hw_arena_destroy(b.a);
    return rc;
}

int hw_auth_any_token(hw_store *store, bool *any)
{
    *any = false;
    hw_arena *a = hw_arena_create(0);
    hw_store_reader *r = NULL;
    hw_store_txn *t = NULL;
    int rc = a ? hw_store_reader_create(store, &r) : HW_ENOMEM;
    if (rc == HW_OK)
        rc = hw_store_read_begin(r, &t);
    if (rc == HW_OK) {
        hw_store_cursor cur = {0};
        Helpwire__V1__TokenInfo **list;
        size_t n = 0;
        rc = hw_store_token_list(t, &cur, 1, a, &list, &n);
        *any = rc == HW_OK && n > 0;
        hw_store_read_end(r);
    }
    hw_store_reader_destroy(r);
    hw_arena_destroy(a);
    return rc;
}

/* --------------------------------------------------------- the RPCs */

typedef struct {
    hw_wctx h;
    const Helpwire__V1__CreateTokenRequest *req;
    Helpwire__V1__TokenInfo *info;
    char *secret;
    hw_audit_rec audit; /* the caller's part */
} token_ctx;

static int create_token_fn(hw_store_txn *w, void *arg)
{
    token_ctx *c = arg;
    int rc =
        hw_auth_create_token_in(w, c->req->role, c->req->agent_id, c->req->description,
                                hw_effects_now_ms(&c->h.fx), hw_call_arena(c->h.call), &c->info, &c->secret);
    if (rc == HW_ENOTFOUND)
        return hw_rpc_wfail(&c->h, rc, "agent_id: no agent with id %s", c->req->agent_id);
    if (rc != HW_OK)
        return rc;
    /* Who made which token: never its secret. */
    hw_audit_rec r = c->audit;
    r.action = "token.create";
    r.target = c->info->id;
    hw_audit_detail(&r, "token_role", roles[role_index(c->req->role)].name);
    if (c->info->agent_id[0])
        hw_audit_detail(&r, "token_agent", c->info->agent_id);
    hw_audit_detail(&r, "description", c->info->description);
    return hw_audit_append(w, hw_effects_now_ms(&c->h.fx), &r);
}

static void create_token_done(void *arg, int status)
{
    token_ctx *c = arg;
    if (hw_rpc_write_failed(&c->h, status))
        return;
    Helpwire__V1__CreateTokenReply r = HELPWIRE__V1__CREATE_TOKEN_REPLY__INIT;
    r.info = c->info;
    r.token = c->secret;
    hw_call_reply(c->h.call, &r.base);
}

void hw_auth_create_token(hw_call *call, const ProtobufCMessage *request, void *app)
{
    const Helpwire__V1__CreateTokenRequest *req = (const void *)request;
    if (!hw_rpc_check_enum(call, "role", &helpwire__v1__role__descriptor, req->role, false) ||
        !hw_rpc_check_id(call, "agent_id", req->agent_id, 64, req->role != HELPWIRE__V1__ROLE__ROLE_AGENT) ||
        !hw_rpc_check_text(call, "description", req->description, 0, MAX_DESCRIPTION))
        return;
    token_ctx *c = hw_rpc_ctx_new(call, app, sizeof *c);
    if (!c)
        return;
    c->req = (const void *)request;
    hw_audit_from_call(&c->audit, call);
    hw_rpc_write(&c->h, create_token_fn, create_token_done);
}

typedef struct {
    hw_wctx h;
    const char *id;
    Helpwire__V1__TokenInfo *info;
    hw_audit_rec audit; /* the caller's part */
} revoke_ctx;

static int revoke_fn(hw_store_txn *w, void *arg)
{
    revoke_ctx *c = arg;
    int rc = hw_store_token_get(w, c->id, hw_call_arena(c->h.call), &c->info);
    if (rc == HW_ENOTFOUND)
        return hw_rpc_wfail(&c->h, rc, "no token with id %s", c->id);
    if (rc != HW_OK)
        return rc;
    if (c->info->revoked_unix_ms)
        return HW_OK; /* revoked before: nothing changes, nothing to record */
    c->info->revoked_unix_ms = hw_effects_now_ms(&c->h.fx);
    if ((rc = hw_store_token_put(w, c->info, NULL, 0, HW_PUT_REPLACE)) != HW_OK)
        return rc;
    hw_audit_rec r = c->audit;
    r.action = "token.revoke";
    r.target = c->info->id;
    int ri = role_index(c->info->role);
    hw_audit_detail(&r, "token_role", ri < 0 ? "?" : roles[ri].name);
    if (c->info->agent_id[0])
        hw_audit_detail(&r, "token_agent", c->info->agent_id);
    hw_audit_detail(&r, "description", c->info->description);
    return hw_audit_append(w, c->info->revoked_unix_ms, &r);
}

static void revoke_done(void *arg, int status)
{
    revoke_ctx *c = arg;
    if (hw_rpc_write_failed(&c->h, status))
        return;
    Helpwire__V1__RevokeTokenReply r = HELPWIRE__V1__REVOKE_TOKEN_REPLY__INIT;
    r.info = c->info;
    hw_call_reply(c->h.call, &r.base);
}

void hw_auth_revoke_token(hw_call *call, const ProtobufCMessage *request, void *app)
{
    const Helpwire__V1__RevokeTokenRequest *req = (const void *)request;
    if (!hw_rpc_check_id(call, "id", req->id, 64, false))
        return;
    revoke_ctx *c = hw_rpc_ctx_new(call, app, sizeof *c);
    if (!c)
        return;
    c->id = req->id;
    hw_audit_from_call(&c->audit, call);
    hw_rpc_write(&c->h, revoke_fn, revoke_done);
}

void hw_auth_list_tokens(hw_call *call, const ProtobufCMessage *request, void *app)
{
    (void)request;
    hw_store_txn *t = hw_rpc_read(call, app);
    if (!t)
        return;
    hw_store_cursor cur = {0};
    Helpwire__V1__ListTokensReply r = HELPWIRE__V1__LIST_TOKENS_REPLY__INIT;
    int rc = hw_store_token_list(t, &cur, HW_STORE_LIST_MAX, hw_call_arena(call), &r.tokens, &r.n_tokens);
    hw_rpc_read_end(call, app);
    if (rc != HW_OK) {
        hw_rpc_fail(call, rc, NULL);
        return;
    }
    hw_call_reply(call, &r.base);
}
