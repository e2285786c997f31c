/*
 * health: statuses in a small array (a server has a dozen services) and a
 * linked list of watchers, both under one mutex. Watchers hold a reference
 * to their stream and drop it when the stream closes.
 */
#include "server/net/health.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "grpc/health/v1/health.pb-c.h"

#define HW_HEALTH_MAX_NAME 200

typedef struct watcher {
    struct watcher *next;
    hw_call *call;
    int last_sent;
    char service[HW_HEALTH_MAX_NAME + 1];
} watcher;

typedef struct {
    char *name;
    int status;
} service_status;

struct hw_health {
    pthread_mutex_t mu;
    service_status *services; /* [0] is "" */
    size_t n;
    watcher *watchers;
};

static int add_service(hw_health *h, const char *name, size_t len)
{
    for (size_t i = 0; i < h->n; i++)
        if (strlen(h->services[i].name) == len && strncmp(h->services[i].name, name, len) == 0)
            return 0;
    char *copy = strndup(name, len);
    if (!copy)
        return -1;
    h->services[h->n].name = copy;
    h->services[h->n].status = HW_HEALTH_NOT_SERVING;
    h->n++;
    return 0;
}

hw_health *hw_health_create(const hw_method *methods, size_t n_methods)
{
    return hw_health_create_with(methods, n_methods, NULL, 0);
}

hw_health *hw_health_create_with(const hw_method *methods, size_t n_methods, const char *const *extra,
                                 size_t n_extra)
{
    hw_health *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    pthread_mutex_init(&h->mu, NULL);
    h->services = calloc(n_methods + n_extra + 1, sizeof *h->services);
    if (!h->services || add_service(h, "", 0) != 0)
        goto fail;
    for (size_t i = 0; i < n_methods; i++) {
        const char *p = methods[i].path + 1, *slash = strchr(p, '/');
        if (slash && add_service(h, p, (size_t)(slash - p)) != 0)
            goto fail;
    }
    for (size_t i = 0; i < n_extra; i++)
        if (add_service(h, extra[i], strlen(extra[i])) != 0)
            goto fail;
    return h;
fail:
    hw_health_destroy(h);
    return NULL;
}

void hw_health_destroy(hw_health *h)
{
    if (!h)
        return;
    for (size_t i = 0; i < h->n; i++)
        free(h->services[i].name);
    free(h->services);
    pthread_mutex_destroy(&h->mu);
    free(h);
}

/* Caller holds h->mu. */
static int status_of(const hw_health *h, const char *service)
{
    for (size_t i = 0; i < h->n; i++)
        if (strcmp(h->services[i].name, service) == 0)
            return h->services[i].status;
    return -1;
}

static void send_status(hw_call *call, int status)
{
    Grpc__Health__V1__HealthCheckResponse r = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
    r.status = (Grpc__Health__V1__HealthCheckResponse__ServingStatus)status;
    hw_call_stream_send(call, &r.base);
}

int hw_health_set(hw_health *h, const char *service, int status)
{
    int rc = service ? -1 : 0;
    pthread_mutex_lock(&h->mu);
    for (size_t i = 0; i < h->n; i++)
        if (!service || strcmp(h->services[i].name, service) == 0) {
            h->services[i].status = status;
            rc = 0;
        }
    for (watcher *w = h->watchers; w; w = w->next) {
        int now = status_of(h, w->service);
        if (now >= 0 && now != w->last_sent) {
            send_status(w->call, now);
            w->last_sent = now;
        }
    }
    pthread_mutex_unlock(&h->mu);
    return rc;
}

void hw_health_check(hw_call *call, const ProtobufCMessage *request, hw_health *h)
{
    const Grpc__Health__V1__HealthCheckRequest *req = (const void *)request;
    pthread_mutex_lock(&h->mu);
    int status = status_of(h, req->service);
    pthread_mutex_unlock(&h->mu);
    if (status < 0) {
        hw_call_fail(call, GRPC_STATUS_NOT_FOUND, "unknown service '%.200s'", req->service);
        return;
    }
    Grpc__Health__V1__HealthCheckResponse r = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
    r.status = (Grpc__Health__V1__HealthCheckResponse__ServingStatus)status;
    hw_call_reply(call, &r.base);
}

static void on_watch_closed(hw_call *call, void *arg)
{
    hw_health *h = arg;
    watcher *gone = NULL;
    pthread_mutex_lock(&h->mu);
    for (watcher **p = &h->watchers; *p; p = &(*p)->next)
        if ((*p)->call == call) {
            gone = *p;
            *p = gone->next;
            break;
        }
    pthread_mutex_unlock(&h->mu);
    if (gone) {
        hw_call_unref(call);
        free(gone);
    }
}

void hw_health_watch(hw_call *call, const ProtobufCMessage *request, hw_health *h)
{
    const Grpc__Health__V1__HealthCheckRequest *req = (const void *)request;
    if (strlen(req->service) > HW_HEALTH_MAX_NAME) {
        hw_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "service: longer than %d bytes", HW_HEALTH_MAX_NAME);
        return;
    }
    watcher *w = calloc(1, sizeof *w);
    if (!w) {
        hw_call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "server out of memory");
        return;
    }
    strcpy(w->service, req->service);
    w->call = call;
    hw_call_ref(call);
    hw_call_on_close(call, on_watch_closed, h);
    pthread_mutex_lock(&h->mu);
    int status = status_of(h, req->service);
    w->last_sent = status < 0 ? HW_HEALTH_SERVICE_UNKNOWN : status;
    send_status(call, w->last_sent);
    w->next = h->watchers;
    h->watchers = w;
    pthread_mutex_unlock(&h->mu);
}
