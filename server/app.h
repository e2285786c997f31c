/*
 * app: the server context handed to every handler (as the `app` pointer of
 * the method table). It only points at the modules; main owns them all and
 * creates them in order. There is no other global state.
 */
#ifndef HW_APP_H
#define HW_APP_H

#include "server/health.h"
#include "server/log.h"
#include "server/net.h"

typedef struct hw_app {
    const hw_log *log;
    hw_health *health;
    hw_net *net;
} hw_app;

#endif
