/*
 * lossyfs: a FUSE file system over a backing directory that forgets, on a
 * simulated power cut, every write that was not made durable with fsync or
 * fdatasync. Tests use it to show that helpwired acknowledges only what
 * survives losing power, which kill -9 alone cannot show: after kill -9 the
 * kernel still writes back the page cache.
 *
 * Model. Each file's writes go to an overlay of 4 KiB pages held in memory
 * (what a kernel page cache holds dirty); reads see the overlay over the
 * backing file, so a running program sees its own writes as usual. fsync
 * and fdatasync of a file write its dirty pages and size to the backing
 * file and fsync it. Metadata (create, unlink, rename, mkdir, truncate,
 * chmod) goes to the backing directory at once, as a journaling file
 * system would make it durable.
 *
 * With --unsynced-names, directory entries follow POSIX instead: a create,
 * mkdir, unlink, rmdir or rename is durable only once the directories it
 * changed have been fsynced (fsync of the file itself does not count).
 * Each such change is journalled with how to undo it (what an unlink or a
 * rename over a file removed is kept in a trash directory beside the
 * backing one), and the power cut undoes, newest first, every change not
 * yet durable: a file created and fsynced in a directory nobody fsynced is
 * gone, a file renamed over another is the old one again.
 *
 * SIGUSR2 toggles a full disk: while it is full, writes past a file's end,
 * growing truncates, creates and mkdirs fail with ENOSPC; writes inside a
 * file (blocks a real disk has already allocated) still succeed.
 *
 * SIGUSR1 is the power cut: the file system stops serving, keeps a random
 * share of the dirty pages (--keep-unsynced, default 0: a disk that wrote
 * none of them back; with a fraction, a disk that wrote some back in no
 * particular order) and drops the rest, unmounts and exits 0. SIGTERM or
 * SIGINT is a clean shutdown: everything is written back first.
 *
 * Usage: lossyfs [--keep-unsynced F] [--seed N] [--unsynced-names] BACKING_DIR MOUNTPOINT
 *   Prints "lossyfs ready" on stdout once mounted. Single-threaded, so the
 *   overlay needs no locks. Tests only.
 *
 * Written by hand: no packaged library offers a file system that loses
 * unsynced writes on demand (device-mapper's log-writes needs kernel
 * support that test machines do not always have).
 */
#define FUSE_USE_VERSION 31
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fuse3/fuse.h>
#include <fuse3/fuse_lowlevel.h>
#include <ftw.h>
#include <libgen.h>
#include <limits.h>
#include <stdbool.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#define PAGE 4096u

typedef struct page {
    uint64_t index;
    struct page *next;
    unsigned char data[PAGE];
} page;

/* The overlay of one backing file (by its path under the backing dir). */
typedef struct ofile {
    char *path;
    int fd;     /* backing file, O_RDWR; kept open while the overlay lives */
    off_t size; /* logical size: what a reader sees */
    page **buckets;
    size_t n_buckets, n_pages;
    struct ofile *next;
} ofile;

/* A directory change not yet durable, with what undoes it. */
typedef enum { NS_CREATE, NS_MKDIR, NS_UNLINK, NS_RMDIR, NS_RENAME } ns_kind;

typedef struct nsop {
    ns_kind kind;
    char *a;       /* the path changed (a rename's source) */
    char *b;       /* a rename's target, else NULL */
    char *trash;   /* backing path of what an unlink or a rename replaced */
    bool synced_a; /* a's directory fsynced since */
    bool synced_b; /* b's directory fsynced since */
} nsop;

typedef struct lossy {
    char backing[PATH_MAX];
    ofile *files;
    double keep;
    unsigned seed;
    bool names;               /* --unsynced-names */
    char trash_dir[PATH_MAX]; /* beside the backing dir, same file system */
    unsigned trash_seq;
    nsop *ns;
    size_t n_ns, cap_ns;
    struct fuse *fuse;
    volatile sig_atomic_t cut;
    volatile sig_atomic_t full; /* SIGUSR2 toggles */
} lossy;

static lossy *L(void)
{
    return fuse_get_context()->private_data;
}

static int bpath(char *out, const char *path)
{
    int n = snprintf(out, PATH_MAX, "%s%s", L()->backing, path);
    return n < 0 || n >= PATH_MAX ? -ENAMETOOLONG : 0;
}

static ofile *ofile_find(lossy *l, const char *path)
{
    for (ofile *f = l->files; f; f = f->next)
        if (strcmp(f->path, path) == 0)
            return f;
    return NULL;
}

/* The overlay of path, created on first use. */
static ofile *ofile_get(lossy *l, const char *path, int *err)
{
    ofile *f = ofile_find(l, path);
    if (f)
        return f;
    char bp[PATH_MAX];
    if ((*err = bpath(bp, path)) != 0)
        return NULL;
    f = calloc(1, sizeof *f);
    if (!f || !(f->path = strdup(path)) || !(f->buckets = calloc(1024, sizeof *f->buckets))) {
        if (f)
            free(f->path);
        free(f);
        *err = -ENOMEM;
        return NULL;
    }
    f->n_buckets = 1024;
    f->fd = open(bp, O_RDWR | O_CLOEXEC);
    struct stat st;
    if (f->fd < 0 || fstat(f->fd, &st) != 0) {
        *err = -errno;
        if (f->fd >= 0)
            close(f->fd);
        free(f->buckets);
        free(f->path);
        free(f);
        return NULL;
    }
    f->size = st.st_size;
    f->next = l->files;
    l->files = f;
    return f;
}

static page *page_find(ofile *f, uint64_t index)
{
    for (page *p = f->buckets[index % f->n_buckets]; p; p = p->next)
        if (p->index == index)
            return p;
    return NULL;
}

/* The dirty page index of f, read from the backing file on first write. */
static page *page_get(ofile *f, uint64_t index)
{
    page *p = page_find(f, index);
    if (p)
        return p;
    if (!(p = calloc(1, sizeof *p)))
        return NULL;
    p->index = index;
    ssize_t n = pread(f->fd, p->data, PAGE, (off_t)(index * PAGE));
    (void)n; /* a short read (past the end) leaves zeros, as a hole reads */
    p->next = f->buckets[index % f->n_buckets];
    f->buckets[index % f->n_buckets] = p;
    f->n_pages++;
    return p;
}

/* Drops every dirty page; with write_back, first writes each (or, when
 * keep < 1, each with probability keep) to the backing file. */
static int ofile_settle(ofile *f, int write_back, double keep, unsigned *seed)
{
    int rc = 0;
    for (size_t b = 0; b < f->n_buckets; b++) {
        page *p = f->buckets[b];
        while (p) {
            page *next = p->next;
            int write = write_back && (keep >= 1 || (double)rand_r(seed) / RAND_MAX < keep);
            off_t off = (off_t)(p->index * PAGE);
            /* a page that survives makes the file at least reach it */
            size_t len = PAGE;
            if (off + (off_t)len > f->size)
                len = f->size > off ? (size_t)(f->size - off) : 0;
            if (write && len && pwrite(f->fd, p->data, len, off) != (ssize_t)len)
                rc = -EIO;
            free(p);
            p = next;
        }
        f->buckets[b] = NULL;
    }
    f->n_pages = 0;
    return rc;
}

/* fsync: the file's dirty pages and size become durable. */
static int ofile_sync(ofile *f)
{
    unsigned unused = 0;
    int rc = ofile_settle(f, 1, 1.0, &unused);
    if (rc == 0 && ftruncate(f->fd, f->size) != 0)
        rc = -errno;
    if (rc == 0 && fsync(f->fd) != 0)
        rc = -errno;
    return rc;
}

static void ofile_forget(lossy *l, const char *path)
{
    for (ofile **pp = &l->files; *pp; pp = &(*pp)->next)
        if (strcmp((*pp)->path, path) == 0) {
            ofile *f = *pp;
            *pp = f->next;
            unsigned unused = 0;
            ofile_settle(f, 0, 0, &unused);
            close(f->fd);
            free(f->buckets);
            free(f->path);
            free(f);
            return;
        }
}

/* ---- the directory journal (--unsynced-names) ---- */

/* The directory holding path ("/" for "/x"), in out (PATH_MAX bytes). */
static void parent_of(const char *path, char *out)
{
    snprintf(out, PATH_MAX, "%s", path);
    char *d = dirname(out);
    if (d != out)
        memmove(out, d, strlen(d) + 1);
}

static int ns_log(lossy *l, ns_kind kind, const char *a, const char *b, char *trash)
{
    if (l->n_ns == l->cap_ns) {
        size_t cap = l->cap_ns ? l->cap_ns * 2 : 64;
        nsop *bigger = realloc(l->ns, cap * sizeof *bigger);
        if (!bigger)
            return -ENOMEM;
        l->ns = bigger;
        l->cap_ns = cap;
    }
    nsop *o = &l->ns[l->n_ns];
    *o = (nsop){.kind = kind, .a = strdup(a), .b = b ? strdup(b) : NULL, .trash = trash};
    if (!o->a || (b && !o->b)) {
        free(o->a);
        free(o->b);
        return -ENOMEM;
    }
    l->n_ns++;
    return 0;
}

/* Moves the backing file bp into the trash; *trash receives where. */
static int ns_trash(lossy *l, const char *bp, char **trash)
{
    char t[PATH_MAX];
    int n = snprintf(t, sizeof t, "%s/%u", l->trash_dir, l->trash_seq++);
    if (n < 0 || n >= (int)sizeof t)
        return -ENAMETOOLONG;
    if (rename(bp, t) != 0)
        return -errno;
    if (!(*trash = strdup(t))) {
        rename(t, bp);
        return -ENOMEM;
    }
    return 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    remove(path);
    return 0;
}

static void rm_tree(const char *path)
{
    nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* The power cut for directories: undoes, newest first, every change whose
 * directories were not all fsynced after it. Returns how many. */
static size_t ns_undo(lossy *l)
{
    size_t undone = 0;
    for (size_t i = l->n_ns; i-- > 0;) {
        nsop *o = &l->ns[i];
        if (o->synced_a && (!o->b || o->synced_b))
            continue;
        char ba[PATH_MAX], bb[PATH_MAX];
        snprintf(ba, sizeof ba, "%s%s", l->backing, o->a);
        if (o->b)
            snprintf(bb, sizeof bb, "%s%s", l->backing, o->b);
        int rc = 0;
        switch (o->kind) {
        case NS_CREATE:
            rc = unlink(ba);
            break;
        case NS_MKDIR:
            rm_tree(ba);
            break;
        case NS_UNLINK:
            rc = rename(o->trash, ba);
            break;
        case NS_RMDIR:
            rc = mkdir(ba, 0700);
            break;
        case NS_RENAME:
            rc = rename(bb, ba);
            if (rc == 0 && o->trash)
                rc = rename(o->trash, bb);
            break;
        }
        if (rc != 0)
            fprintf(stderr, "lossyfs: undoing a change of %s: %s\n", o->a, strerror(errno));
        undone++;
    }
    return undone;
}

static void ns_free(lossy *l)
{
    for (size_t i = 0; i < l->n_ns; i++) {
        free(l->ns[i].a);
        free(l->ns[i].b);
        free(l->ns[i].trash);
    }
    free(l->ns);
    if (l->trash_dir[0])
        rm_tree(l->trash_dir);
}

/* ---- operations ---- */

static int op_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
    (void)fi;
    char bp[PATH_MAX];
    int rc = bpath(bp, path);
    if (rc)
        return rc;
    if (lstat(bp, st) != 0)
        return -errno;
    ofile *f = ofile_find(L(), path);
    if (f && S_ISREG(st->st_mode)) {
        st->st_size = f->size;
        st->st_blocks = (f->size + 511) / 512;
    }
    return 0;
}

static int op_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t off, struct fuse_file_info *fi,
                      enum fuse_readdir_flags flags)
{
    (void)off, (void)fi, (void)flags;
    char bp[PATH_MAX];
    int rc = bpath(bp, path);
    if (rc)
        return rc;
    DIR *d = opendir(bp);
    if (!d)
        return -errno;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        fill(buf, e->d_name, NULL, 0, 0);
    closedir(d);
    return 0;
}

static int op_mkdir(const char *path, mode_t mode)
{
    char bp[PATH_MAX];
    int rc = bpath(bp, path);
    if (rc)
        return rc;
    if (L()->full)
        return -ENOSPC;
    if (mkdir(bp, mode) != 0)
        return -errno;
    return L()->names ? ns_log(L(), NS_MKDIR, path, NULL, NULL) : 0;
}

static int op_rmdir(const char *path)
{
    char bp[PATH_MAX];
    int rc = bpath(bp, path);
    if (rc)
        return rc;
    if (rmdir(bp) != 0)
        return -errno;
    return L()->names ? ns_log(L(), NS_RMDIR, path, NULL, NULL) : 0;
}

static int op_unlink(const char *path)
{
    char bp[PATH_MAX];
    int rc = bpath(bp, path);
    if (rc)
        return rc;
    ofile_forget(L(), path);
    if (!L()->names)
        return unlink(bp) == 0 ? 0 : -errno;
    char *trash = NULL;
    if ((rc = ns_trash(L(), bp, &trash)) != 0)
        return rc;
    return ns_log(L(), NS_UNLINK, path, NULL, trash);
}

static int op_rename(const char *from, const char *to, unsigned int flags)
{
    if (flags)
        return -EINVAL;
    char bf[PATH_MAX], bt[PATH_MAX];
    int rc = bpath(bf, from);
    if (!rc)
        rc = bpath(bt, to);
    if (rc)
        return rc;
    /* pending writes of the source become durable first: rename as a
     * commit point, as programs that rename after fsync expect */
    ofile *f = ofile_find(L(), from);
    if (f && (rc = ofile_sync(f)) != 0)
        return rc;
    ofile_forget(L(), from);
    ofile_forget(L(), to);
    if (!L()->names)
        return rename(bf, bt) == 0 ? 0 : -errno;
    struct stat st;
    char *trash = NULL;
    if (lstat(bt, &st) == 0 && !S_ISDIR(st.st_mode) && (rc = ns_trash(L(), bt, &trash)) != 0)
        return rc;
    if (rename(bf, bt) != 0) {
        rc = -errno;
        if (trash) {
            rename(trash, bt);
            free(trash);
        }
        return rc;
    }
    return ns_log(L(), NS_RENAME, from, to, trash);
}

static int op_chmod(const char *path, mode_t mode, struct fuse_file_info *fi)
{
    (void)fi;
    char bp[PATH_MAX];
    int rc = bpath(bp, path);
    return rc ? rc : chmod(bp, mode) == 0 ? 0 : -errno;
}

static int op_utimens(const char *path, const struct timespec tv[2], struct fuse_file_info *fi)
{
    (void)fi;
    char bp[PATH_MAX];
    int rc = bpath(bp, path);
    return rc ? rc : utimensat(AT_FDCWD, bp, tv, AT_SYMLINK_NOFOLLOW) == 0 ? 0 : -errno;
}

static int op_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
    (void)fi;
    int err = 0;
    ofile *f = ofile_get(L(), path, &err);
    if (!f)
        return err;
    if (L()->full && size > f->size)
        return -ENOSPC;
    /* pages past the new end go; the size is metadata (durable at once) */
    for (size_t b = 0; b < f->n_buckets; b++)
        for (page **pp = &f->buckets[b]; *pp;) {
            if ((off_t)((*pp)->index * PAGE) >= size) {
                page *p = *pp;
                *pp = p->next;
                free(p);
                f->n_pages--;
            } else {
                pp = &(*pp)->next;
            }
        }
    f->size = size;
    return ftruncate(f->fd, size) == 0 ? 0 : -errno;
}

static int op_create(const char *path, mode_t mode, struct fuse_file_info *fi)
{
    char bp[PATH_MAX];
    int rc = bpath(bp, path);
    if (rc)
        return rc;
    struct stat st;
    bool existed = lstat(bp, &st) == 0;
    if (!existed && L()->full)
        return -ENOSPC;
    int fd = open(bp, O_CREAT | O_RDWR | O_CLOEXEC | (fi->flags & O_EXCL), mode);
    if (fd < 0)
        return -errno;
    close(fd);
    return L()->names && !existed ? ns_log(L(), NS_CREATE, path, NULL, NULL) : 0;
}

static int op_open(const char *path, struct fuse_file_info *fi)
{
    int err = 0;
    if (!ofile_get(L(), path, &err))
        return err;
    if (fi->flags & O_TRUNC)
        return op_truncate(path, 0, NULL);
    return 0;
}

/* The next piece of an access of size bytes at off, done bytes in: its
 * page, the offset in that page, and its length (to the page's end at most). */
static size_t page_step(off_t off, size_t done, size_t size, uint64_t *index, size_t *in)
{
    off_t at = off + (off_t)done;
    *index = (uint64_t)at / PAGE;
    *in = (size_t)(at % PAGE);
    size_t n = PAGE - *in;
    return n < size - done ? n : size - done;
}

static int op_read(const char *path, char *buf, size_t size, off_t off, struct fuse_file_info *fi)
{
    (void)fi;
    int err = 0;
    ofile *f = ofile_get(L(), path, &err);
    if (!f)
        return err;
    if (off >= f->size)
        return 0;
    if ((off_t)size > f->size - off)
        size = (size_t)(f->size - off);
    size_t done = 0;
    while (done < size) {
        uint64_t index;
        size_t in, n = page_step(off, done, size, &index, &in);
        page *p = page_find(f, index);
        if (p) {
            memcpy(buf + done, p->data + in, n);
        } else {
            ssize_t r = pread(f->fd, buf + done, n, off + (off_t)done);
            if (r < 0)
                return -errno;
            if ((size_t)r < n)
                memset(buf + done + r, 0, n - (size_t)r);
        }
        done += n;
    }
    return (int)done;
}

static int op_write(const char *path, const char *buf, size_t size, off_t off, struct fuse_file_info *fi)
{
    (void)fi;
    int err = 0;
    ofile *f = ofile_get(L(), path, &err);
    if (!f)
        return err;
    if (L()->full && off + (off_t)size > f->size)
        return -ENOSPC;
    size_t done = 0;
    while (done < size) {
        uint64_t index;
        size_t in, n = page_step(off, done, size, &index, &in);
        page *p = page_get(f, index);
        if (!p)
            return -ENOMEM;
        memcpy(p->data + in, buf + done, n);
        done += n;
    }
    if (off + (off_t)size > f->size)
        f->size = off + (off_t)size;
    return (int)size;
}

static int op_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
    (void)datasync, (void)fi;
    ofile *f = ofile_find(L(), path);
    return f ? ofile_sync(f) : 0;
}

/* fsync of a directory: the changes of its entries made so far are
 * durable. Changes durable in all their directories leave the journal (the
 * cut would never undo them), and what they replaced leaves the trash. */
static int op_fsyncdir(const char *path, int datasync, struct fuse_file_info *fi)
{
    (void)datasync, (void)fi;
    lossy *l = L();
    char dir[PATH_MAX];
    size_t kept = 0;
    for (size_t i = 0; i < l->n_ns; i++) {
        nsop *o = &l->ns[i];
        parent_of(o->a, dir);
        if (strcmp(dir, path) == 0)
            o->synced_a = true;
        if (o->b) {
            parent_of(o->b, dir);
            if (strcmp(dir, path) == 0)
                o->synced_b = true;
        }
        if (o->synced_a && (!o->b || o->synced_b)) {
            if (o->trash)
                remove(o->trash);
            free(o->a);
            free(o->b);
            free(o->trash);
        } else {
            l->ns[kept++] = *o;
        }
    }
    l->n_ns = kept;
    return 0;
}

static int op_statfs(const char *path, struct statvfs *st)
{
    (void)path;
    return statvfs(L()->backing, st) == 0 ? 0 : -errno;
}

static void *op_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
    (void)conn;
    cfg->use_ino = 0;
    cfg->kernel_cache = 0;
    cfg->direct_io = 0;
    cfg->attr_timeout = 0;
    cfg->entry_timeout = 0;
    cfg->negative_timeout = 0;
    return fuse_get_context()->private_data;
}

static const struct fuse_operations ops = {
    .init = op_init,
    .getattr = op_getattr,
    .readdir = op_readdir,
    .mkdir = op_mkdir,
    .rmdir = op_rmdir,
    .unlink = op_unlink,
    .rename = op_rename,
    .chmod = op_chmod,
    .utimens = op_utimens,
    .truncate = op_truncate,
    .create = op_create,
    .open = op_open,
    .read = op_read,
    .write = op_write,
    .fsync = op_fsync,
    .fsyncdir = op_fsyncdir,
    .statfs = op_statfs,
};

/* The one process-wide pointer a signal handler needs (set in main). */
static lossy *g_lossy;

static void on_signal(int sig)
{
    if (sig == SIGUSR2) {
        g_lossy->full = !g_lossy->full;
        return;
    }
    if (sig == SIGUSR1)
        g_lossy->cut = 1;
    fuse_session_exit(fuse_get_session(g_lossy->fuse));
}

static int usage(void)
{
    fprintf(stderr,
            "usage: lossyfs [--keep-unsynced F] [--seed N] [--unsynced-names] BACKING_DIR MOUNTPOINT\n");
    return 2;
}

int main(int argc, char **argv)
{
    lossy l = {.keep = 0, .seed = 1};
    int i = 1;
    for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
        if (strcmp(argv[i], "--unsynced-names") == 0)
            l.names = true;
        else if (i + 1 < argc && strcmp(argv[i], "--keep-unsynced") == 0)
            l.keep = atof(argv[++i]);
        else if (i + 1 < argc && strcmp(argv[i], "--seed") == 0)
            l.seed = (unsigned)strtoul(argv[++i], NULL, 10);
        else
            return usage();
    }
    if (argc - i != 2 || l.keep < 0 || l.keep > 1 || !realpath(argv[i], l.backing))
        return usage();
    if (l.names) {
        int n = snprintf(l.trash_dir, sizeof l.trash_dir, "%s.trash-XXXXXX", l.backing);
        if (n < 0 || n >= (int)sizeof l.trash_dir || !mkdtemp(l.trash_dir)) {
            fprintf(stderr, "lossyfs: cannot make a trash directory beside %s\n", l.backing);
            return 1;
        }
    }
    const char *mountpoint = argv[i + 1];
    char *fargv[] = {argv[0], "-o", "default_permissions", NULL};
    struct fuse_args args = FUSE_ARGS_INIT(3, fargv);
    l.fuse = fuse_new(&args, &ops, sizeof ops, &l);
    fuse_opt_free_args(&args);
    if (!l.fuse || fuse_mount(l.fuse, mountpoint) != 0) {
        fprintf(stderr, "lossyfs: cannot mount %s\n", mountpoint);
        return 1;
    }
    g_lossy = &l;
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    struct sigaction toggle = {.sa_handler = on_signal, .sa_flags = SA_RESTART};
    sigemptyset(&toggle.sa_mask);
    sigaction(SIGUSR2, &toggle, NULL);
    printf("lossyfs ready\n");
    fflush(stdout);
    int rc = fuse_loop(l.fuse);
    /* The power cut, or a clean stop that writes everything back. */
    size_t dropped = 0, files = 0;
    for (ofile *f = l.files; f; f = f->next, files++) {
        dropped += f->n_pages;
        if (l.cut)
            ofile_settle(f, l.keep > 0, l.keep, &l.seed);
        else
            ofile_sync(f);
    }
    fuse_unmount(l.fuse);
    fuse_destroy(l.fuse);
    size_t undone = l.cut ? ns_undo(&l) : 0;
    ns_free(&l);
    while (l.files) {
        ofile *f = l.files;
        l.files = f->next;
        close(f->fd);
        free(f->buckets);
        free(f->path);
        free(f);
    }
    fprintf(stderr, "lossyfs: %s, %zu unsynced pages in %zu files %s, %zu directory changes undone\n",
            l.cut ? "power cut" : "stopped", dropped, files,
            l.cut ? (l.keep > 0 ? "partly kept" : "dropped") : "written back", undone);
    return rc < 0 ? 1 : 0;
}
