/*
 * methods: the method table of helpwired. Each row maps an RPC path to its
 * request and reply descriptors, its handler, the roles allowed to call it
 * and whether it streams. Adding an RPC is one row here plus its handler.
 */
#ifndef HW_METHODS_H
#define HW_METHODS_H

#include <stddef.h>

#include "server/net/net.h"

/* The table, valid for the life of the process; *n receives its length. */
const hw_method *hw_methods(size_t *n);

#endif
