/*
 * auth: bearer tokens with roles. Every RPC but the public ones (health)
 * needs `authorization: Bearer <token>` metadata. A token's secret is
 * shown once when created and stored only as its SHA-256; a token has one
 * role (bridge, agent, admin; the method table says which roles may call
 * each RPC) and an agent token names its agent, which becomes the actor in
 * ticket history. Revocation takes effect on the next call: tokens are
 * looked up in the store on every call (one LMDB read), not cached.
 */
#ifndef HW_AUTH_H
#define HW_AUTH_H

#include <stdbool.h>
#include <stdio.h>

#include "helpwire/v1/admin.pb-c.h"
#include "server/domain/app.h"
#include "server/net/net.h"
#include "server/store/store.h"

/* The authorization hook of the net layer: checks the caller's token
 * against the method's roles and attaches the principal (see rpc.h). On
 * failure it has answered UNAUTHENTICATED or PERMISSION_DENIED and returns
 * false; nothing else has been read or written. */
bool hw_auth_authorize(void *app, hw_call *call, const hw_method *method);

/* Inside a write fn: creates a token created at now_ms (the write's time);
 * *secret (shown once) and *info are allocated in a. agent_id is required
 * for ROLE_AGENT and must exist.
 * @return HW_OK; HW_EINVALID; HW_ENOTFOUND (agent); store codes. */
int hw_auth_create_token_in(hw_store_txn *w, Helpwire__V1__Role role, const char *agent_id,
                            const char *description, int64_t now_ms, hw_arena *a,
                            Helpwire__V1__TokenInfo **info, char **secret);

/* Creates one token per role (the agent token for agent_id) and prints
 * them to out as "helpwired token <role> <secret>" lines. For --demo on a
 * freshly seeded store. Returns HW_OK or a store code. */
int hw_auth_demo_tokens(hw_store *store, const char *agent_id, FILE *out);

/* When the store holds no token at all, creates an admin token and writes
 * its secret to path (mode 0600, created new); *created says whether it
 * did. Returns HW_OK, a store code, or HW_EIO (err says why). */
int hw_auth_bootstrap(hw_store *store, const char *path, bool *created, char *err, size_t errlen);

/* Whether the store holds any token at all (revoked ones included, as
 * hw_auth_bootstrap counts them). Returns HW_OK or a store code. */
int hw_auth_any_token(hw_store *store, bool *any);

/* The token RPCs of the Admin service; app is a hw_app. */
void hw_auth_create_token(hw_call *call, const ProtobufCMessage *request, void *app);
void hw_auth_revoke_token(hw_call *call, const ProtobufCMessage *request, void *app);
void hw_auth_list_tokens(hw_call *call, const ProtobufCMessage *request, void *app);

#endif
