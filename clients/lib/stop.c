/*
 * stop: a sigtimedwait thread turns SIGTERM/SIGINT into an atomic flag and
 * a condition-variable broadcast (see stop.h). The thread polls every
 * 100 ms for its own end, which keeps destroy simple (no signal is sent to
 * wake it).
 */
#include "clients/lib/stop.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#define MAX_HOOKS 8

struct br_stop {
    atomic_bool requested;
    atomic_int signo;
    atomic_bool quit;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct {
        void (*fn)(void *);
        void *arg;
    } hooks[MAX_HOOKS];
    int n_hooks;
    bool hooks_ran;
};

static void run_request(br_stop *s, int signo)
{
    if (signo)
        atomic_store(&s->signo, signo);
    atomic_store(&s->requested, true);
    pthread_mutex_lock(&s->mu);
    pthread_cond_broadcast(&s->cv);
    bool run = !s->hooks_ran;
    s->hooks_ran = true;
    int n = s->n_hooks;
    pthread_mutex_unlock(&s->mu);
    if (run)
        for (int i = 0; i < n; i++)
            s->hooks[i].fn(s->hooks[i].arg);
}

static void *signal_thread(void *arg)
{
    br_stop *s = arg;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    while (!atomic_load(&s->quit)) {
        struct timespec t = {0, 100 * 1000000};
        int sig = sigtimedwait(&set, NULL, &t);
        if (sig > 0)
            run_request(s, sig);
    }
    return NULL;
}

int br_stop_create(br_stop **out)
{
    br_stop *s = calloc(1, sizeof *s);
    if (!s)
        return -1;
    pthread_mutex_init(&s->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cv, &ca);
    pthread_condattr_destroy(&ca);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (pthread_create(&s->thread, NULL, signal_thread, s) != 0) {
        pthread_cond_destroy(&s->cv);
        pthread_mutex_destroy(&s->mu);
        free(s);
        return -1;
    }
    *out = s;
    return 0;
}

void br_stop_destroy(br_stop *s)
{
    if (!s)
        return;
    atomic_store(&s->quit, true);
    pthread_join(s->thread, NULL);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

void br_stop_request(br_stop *s)
{
    run_request(s, 0);
}

bool br_stop_requested(const br_stop *s)
{
    return atomic_load(&((br_stop *)s)->requested);
}

int br_stop_signal(const br_stop *s)
{
    return atomic_load(&((br_stop *)s)->signo);
}

bool br_stop_sleep_ms(br_stop *s, int ms)
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (long)(ms % 1000) * 1000000;
    if (until.tv_nsec >= 1000000000) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&s->mu);
    while (!atomic_load(&s->requested)) {
        if (pthread_cond_timedwait(&s->cv, &s->mu, &until) == ETIMEDOUT)
            break;
    }
    pthread_mutex_unlock(&s->mu);
    return atomic_load(&s->requested);
}

int br_stop_on_request(br_stop *s, void (*fn)(void *), void *arg)
{
    pthread_mutex_lock(&s->mu);
    int rc = -1;
    if (s->n_hooks < MAX_HOOKS) {
        s->hooks[s->n_hooks].fn = fn;
        s->hooks[s->n_hooks].arg = arg;
        s->n_hooks++;
        rc = 0;
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}
