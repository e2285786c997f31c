/*
 * classify: which skill queue a customer's message belongs to, and how
 * urgent it is. Skills are data (their keywords, in any language, are
 * tokenized exactly like search text), so "退款" and "refund" both land in
 * billing if its keywords say so. Priority comes from urgent words, the
 * customer's tier and the queue's default, in that order, and the rule
 * that decided is named for the reply.
 *
 * Each worker keeps its own model of the skills (built with its own
 * tokenizer) and rebuilds it only after a committed skill change: the
 * skills_changed effect bumps hw_app.skills_gen (hw_classify_skills_changed)
 * and a worker whose model is older reloads the skills on its next call.
 */
#ifndef HW_CLASSIFY_H
#define HW_CLASSIFY_H

#include <stdbool.h>
#include <stddef.h>

#include "helpwire/v1/agents.pb-c.h"
#include "helpwire/v1/customers.pb-c.h"
#include "server/base/arena.h"
#include "server/domain/app.h"
#include "server/net/net.h"
#include "server/search/tokenize.h"

/* Every skill's keywords, tokenized once, kept by a worker for as long as
 * the skills do not change. Owns copies of everything it needs; immutable
 * once built, so one thread builds it and then may share it read-only. */
typedef struct hw_classify_model hw_classify_model;

/* Builds the model of skills (tok is the calling thread's tokenizer).
 * Invalid UTF-8 in a keyword skips that keyword.
 * @return HW_OK; HW_ENOMEM (*out NULL). */
int hw_classify_build(hw_tokenizer *tok, Helpwire__V1__Skill *const *skills, size_t n_skills,
                      hw_classify_model **out);

/* Scores text against every skill's keywords: a keyword counts when all its
 * terms occur in the text, weighted by its number of terms. Returns the
 * best skill's name (owned by m; the first listed wins a tie), or the
 * fallback queue (hw_classify_fallback) when none scores; *score receives
 * the best score (0 for the fallback). tok is the calling thread's
 * tokenizer. */
const char *hw_classify_text(const hw_classify_model *m, hw_tokenizer *tok, const char *text, double *score);

/* The same for a text already tokenized (hw_tokenize), so a caller that
 * also searches with the text tokenizes it once. */
const char *hw_classify_tokens(const hw_classify_model *m, const hw_token *toks, size_t n, double *score);

/* The fallback queue, where a text that matches no skill goes: the skill
 * marked is_default; with none marked, the first skill by name (each
 * worker logs no_default_skill when it builds such a model); "" when there are no skills at all
 * (the ticket is then in no queue and raises UNASSIGNABLE). Owned by m.
 * *marked (may be NULL) tells whether a skill is marked default. */
const char *hw_classify_fallback(const hw_classify_model *m, bool *marked);

/* NULL is a no-op. */
void hw_classify_free(hw_classify_model *m);

/* The priority of a new ticket and the rule that decided it, e.g.
 * "urgent-word:紧急", "tier:vip", "skill-default:billing" or "default"
 * (allocated in a). skill may be NULL. */
Helpwire__V1__Priority hw_priority_derive(const char *text, Helpwire__V1__CustomerTier tier,
                                          const Helpwire__V1__Skill *skill, hw_arena *a, const char **reason);

/* "zh" when text holds CJK characters, else "en". */
const char *hw_classify_locale(const char *text);

/* ---- the per-worker skill model (worker threads, inside a call) ---- */

/* The calling worker's skill model, rebuilt first when a skill changed
 * since it was built (reading the skills on the worker's reader, and using
 * the worker's tokenizer: call this before tokenizing text for
 * hw_classify_tokens). Owned by the worker; valid until its next call
 * here. NULL when the call was failed (store error, no memory). */
const hw_classify_model *hw_classify_skill_model(hw_call *call, hw_app *app);

/* The skill queue for text on the calling worker: the best keyword match
 * among all skills (the fallback queue when none matches), copied into the
 * call's arena. NULL when the call was failed (store error, no memory). */
const char *hw_classify_queue(hw_call *call, hw_app *app, const char *text);

/* After the commit of a skill change (the skills_changed sink of
 * effects.h): every worker rebuilds its model before its next
 * classification. Any thread, never blocks. */
void hw_classify_skills_changed(hw_app *app);

#endif
