/* listen: see listen.h. */
#include "server/base/listen.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define BACKLOG 128

/* Splits addr into host (may become "", every interface) and port; the
 * port must be a number 0..65535. Returns 0 or -1 (err says why). */
static int split(const char *addr, char *host, size_t hostlen, char *port, size_t portlen, char *err,
                 size_t errlen)
{
    const char *p;
    size_t hl;
    if (addr[0] == '[') {
        const char *end = strchr(addr, ']');
        if (!end || end[1] != ':')
            goto bad;
        hl = (size_t)(end - addr - 1);
        if (hl >= hostlen)
            goto bad;
        memcpy(host, addr + 1, hl);
        p = end + 2;
    } else {
        const char *colon = strrchr(addr, ':');
        if (!colon || memchr(addr, ':', (size_t)(colon - addr))) /* a bare v6 address needs [] */
            goto bad;
        hl = (size_t)(colon - addr);
        if (hl >= hostlen)
            goto bad;
        memcpy(host, addr, hl);
        p = colon + 1;
    }
    host[hl] = '\0';
    char *end = NULL;
    errno = 0;
    long n = strtol(p, &end, 10);
    if (!*p || *end || errno || n < 0 || n > 65535 || strlen(p) >= portlen)
        goto bad;
    snprintf(port, portlen, "%ld", n);
    return 0;
bad:
    snprintf(err, errlen, "cannot listen on %.200s: expected host:port, [v6]:port or :port (port 0-65535)",
             addr);
    return -1;
}

static bool same_addr(const struct addrinfo *a, const struct addrinfo *b)
{
    return a->ai_family == b->ai_family && a->ai_addrlen == b->ai_addrlen &&
           memcmp(a->ai_addr, b->ai_addr, a->ai_addrlen) == 0;
}

static void set_port(struct sockaddr *sa, int port)
{
    if (sa->sa_family == AF_INET)
        ((struct sockaddr_in *)sa)->sin_port = htons((uint16_t)port);
    else if (sa->sa_family == AF_INET6)
        ((struct sockaddr_in6 *)sa)->sin6_port = htons((uint16_t)port);
}

static int bound_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
        return -1;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return -1;
}

/* One listening socket on ai (its port set already); v6only when an IPv4
 * socket of the same set covers the IPv4 side. Returns the fd or -1 with
 * errno set. */
static int open_one(const struct addrinfo *ai, bool v6only)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0)
        return -1;
    int one = 1, v6 = v6only ? 1 : 0;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        (ai->ai_family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6, sizeof v6) != 0) ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, BACKLOG) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

int hw_listen_open(const char *addr, hw_listen_set *out, char *err, size_t errlen)
{
    char host[256], port[8];
    memset(out, 0, sizeof *out);
    for (size_t i = 0; i < HW_LISTEN_MAX; i++)
        out->fds[i] = -1;
    if (split(addr, host, sizeof host, port, sizeof port, err, errlen) != 0)
        return -1;
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    hints.ai_socktype = SOCK_STREAM;
    int g = getaddrinfo(host[0] ? host : NULL, port, &hints, &res);
    if (g != 0 || !res) {
        snprintf(err, errlen, "cannot listen on %.200s: %s", addr,
                 g == EAI_NONAME ? "no such host name or address" : gai_strerror(g));
        return -1;
    }
    bool has_v4 = false;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next)
        has_v4 |= ai->ai_family == AF_INET;
    int rc = -1;
    int want = atoi(port);
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6)
            continue;
        bool dup = false;
        for (struct addrinfo *b = res; b != ai; b = b->ai_next)
            dup |= same_addr(ai, b);
        if (dup)
            continue;
        if (out->n == HW_LISTEN_MAX) {
            snprintf(err, errlen, "cannot listen on %.200s: the name stands for more than %d addresses", addr,
                     HW_LISTEN_MAX);
            goto out;
        }
        /* Port 0: the first socket picks the port, the others take it. */
        if (want == 0 && out->n > 0)
            set_port(ai->ai_addr, out->port);
        int fd = open_one(ai, ai->ai_family == AF_INET6 && has_v4);
        if (fd < 0) {
            snprintf(err, errlen, "cannot listen on %.200s: %s", addr,
                     errno == EADDRINUSE ? "address already in use (is another process serving it?)"
                                         : strerror(errno));
            goto out;
        }
        out->fds[out->n++] = fd;
        if (out->n == 1)
            out->port = bound_port(fd);
    }
    if (out->n == 0) {
        snprintf(err, errlen, "cannot listen on %.200s: no IPv4 or IPv6 address", addr);
        goto out;
    }
    rc = 0;
out:
    freeaddrinfo(res);
    if (rc != 0)
        hw_listen_close(out);
    return rc;
}

void hw_listen_close(hw_listen_set *set)
{
    for (size_t i = 0; i < set->n; i++)
        if (set->fds[i] >= 0)
            close(set->fds[i]);
    set->n = 0;
}

/* A unix socket path: in use when something answers a connect there. */
static int check_unix(const char *addr, const char *path, char *err, size_t errlen)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return 0; /* nothing there: free */
    if (!S_ISSOCK(st.st_mode)) {
        snprintf(err, errlen, "cannot listen on %.200s: a file that is not a socket is in the way", addr);
        return -1;
    }
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof sun.sun_path) {
        snprintf(err, errlen, "cannot listen on %.200s: the path is longer than %zu bytes", addr,
                 sizeof sun.sun_path - 1);
        return -1;
    }
    strcpy(sun.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 0;
    int live = connect(fd, (struct sockaddr *)&sun, sizeof sun) == 0;
    close(fd);
    if (live) {
        snprintf(err, errlen, "cannot listen on %.200s: address already in use (another process serves it)",
                 addr);
        return -1;
    }
    return 0; /* a stale socket file: the server replaces it */
}

int hw_listen_check(const char *addr, char *err, size_t errlen)
{
    if (strncmp(addr, "unix:", 5) == 0)
        return check_unix(addr, addr + 5, err, errlen);
    /* gRPC's own target schemes for listeners. */
    const char *a = addr;
    if (strncmp(a, "ipv4:", 5) == 0 || strncmp(a, "ipv6:", 5) == 0)
        a += 5;
    else if (strncmp(a, "dns:", 4) == 0)
        a += 4;
    hw_listen_set set;
    char why[256];
    if (hw_listen_open(a, &set, why, sizeof why) != 0) {
        snprintf(err, errlen, "%s", why);
        return -1;
    }
    hw_listen_close(&set);
    return 0;
}
