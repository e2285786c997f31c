/*
 * store_powercut_test: a write is acknowledged only once a flush has made
 * its group durable, so it survives a power cut right after its ack.
 *
 * A done callback that ran before its group's commit had flushed both the
 * data pages and the meta page would acknowledge a write a power cut still
 * drops.
 *
 * - on_lossyfs: each round mounts tests/powerloss/lossyfs (a FUSE file
 *   system that forgets every page not fsynced) and forks a child that
 *   opens the store there and writes, reporting each acknowledged key on
 *   a pipe. After `target` acks the child's done callback (on the writer
 *   thread, so no further commit or flush can happen) reports and blocks;
 *   the parent cuts the power (SIGUSR1: lossyfs keeps none of the unsynced
 *   pages), kills the child, opens the store on what the disk kept and
 *   checks every acknowledged key is there. Rounds with hw_store_submit
 *   from several threads (groups of many) and with hw_store_write (one
 *   request).
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "server/store/store_internal.h"
#include "tests/unit/store_test_util.h"

enum { THREADS = 4, WINDOW = 32, MAX_ACKED = 1 << 20 };

static const uint64_t STOP = UINT64_MAX;

/* ---- the child: writes and reports acks --------------------------------- */

typedef struct child {
    hw_store *s;
    int fd; /* acks, 8 bytes each, STOP after the last */
    unsigned target;
    unsigned acked; /* writer thread only */
    sem_t window[THREADS];
} child;

typedef struct put_req {
    child *c;
    unsigned thread;
    uint64_t key;
} put_req;

static int put_fn(hw_store_txn *w, void *ctx)
{
    put_req *p = ctx;
    char val[100];
    memset(val, (int)(p->key & 0xff), sizeof val);
    return hw_store_kv_put(w, "pc", &p->key, sizeof p->key, val, sizeof val);
}

static void write_all(int fd, const void *buf, size_t n)
{
    const char *b = buf;
    while (n > 0) {
        ssize_t k = write(fd, b, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            _exit(3);
        b += k;
        n -= (size_t)k;
    }
}

static void put_done(void *ctx, int status)
{
    put_req *p = ctx;
    child *c = p->c;
    if (status != HW_OK)
        _exit(4);
    write_all(c->fd, &p->key, sizeof p->key);
    if (++c->acked >= c->target) {
        /* Acknowledged: the power goes now, before the writer can flush
         * anything more. */
        write_all(c->fd, &STOP, sizeof STOP);
        for (;;)
            pause();
    }
    sem_post(&c->window[p->thread]);
    free(p);
}

typedef struct submitter {
    child *c;
    unsigned thread;
} submitter;

static void *submit_main(void *arg)
{
    submitter *sb = arg;
    for (uint64_t i = 0;; i++) {
        sem_wait(&sb->c->window[sb->thread]);
        put_req *p = malloc(sizeof *p);
        if (!p)
            _exit(5);
        *p = (put_req){.c = sb->c, .thread = sb->thread, .key = (uint64_t)sb->thread << 32 | i};
        if (hw_store_submit(sb->c->s, put_fn, put_done, p) != HW_OK)
            _exit(6);
    }
    return NULL;
}

static void child_main(const char *dir, int fd, unsigned target, bool sync)
{
    static child c;
    c.fd = fd;
    c.target = target;
    c.s = hw_test_open(dir, 0, 0);
    if (!c.s)
        _exit(2);
    if (sync) {
        for (uint64_t i = 0;; i++) {
            put_req p = {.c = &c, .key = (uint64_t)THREADS << 32 | i};
            if (hw_store_write(c.s, put_fn, &p) != HW_OK)
                _exit(4);
            write_all(fd, &p.key, sizeof p.key);
            if (i + 1 >= target) {
                write_all(fd, &STOP, sizeof STOP);
                for (;;)
                    pause();
            }
        }
    }
    static submitter sb[THREADS];
    pthread_t th[THREADS];
    for (unsigned t = 0; t < THREADS; t++) {
        sem_init(&c.window[t], 0, WINDOW);
        sb[t] = (submitter){.c = &c, .thread = t};
        if (pthread_create(&th[t], NULL, submit_main, &sb[t]) != 0)
            _exit(7);
    }
    for (;;)
        pause();
}

/* ---- the parent ----------------------------------------------------------- */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    remove(path);
    return 0;
}

/* Starts lossyfs over backing at mount; returns its pid once mounted. */
static pid_t lossyfs_start(const char *backing, const char *mount)
{
    int out[2];
    assert_int_equal(pipe(out), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(out[1], 1);
        close(out[0]);
        close(out[1]);
        execl("tests/powerloss/lossyfs", "lossyfs", backing, mount, (char *)NULL);
        _exit(127);
    }
    close(out[1]);
    char line[64] = {0};
    size_t n = 0;
    while (n < sizeof line - 1) {
        ssize_t k = read(out[0], line + n, 1);
        if (k <= 0 || line[n] == '\n')
            break;
        n++;
    }
    close(out[0]);
    if (strncmp(line, "lossyfs ready", 13) != 0)
        fail_msg("lossyfs did not mount (is /dev/fuse usable?): \"%s\"", line);
    return pid;
}

static int read_full(int fd, void *buf, size_t n, int timeout_ms)
{
    char *b = buf;
    while (n > 0) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, timeout_ms) <= 0)
            return -1;
        ssize_t k = read(fd, b, n);
        if (k <= 0)
            return -1;
        b += k;
        n -= (size_t)k;
    }
    return 0;
}

static void one_round(unsigned target, bool sync)
{
    char backing[PATH_MAX], mount[PATH_MAX];
    hw_test_dir(backing, sizeof backing, "pc-disk");
    hw_test_dir(mount, sizeof mount, "pc-mnt");
    pid_t fs = lossyfs_start(backing, mount);

    int acks[2];
    assert_int_equal(pipe(acks), 0);
    pid_t kid = fork();
    assert_true(kid >= 0);
    if (kid == 0) {
        close(acks[0]);
        child_main(mount, acks[1], target, sync);
        _exit(0);
    }
    close(acks[1]);
    uint64_t *acked = malloc(MAX_ACKED * sizeof *acked);
    assert_non_null(acked);
    size_t n = 0;
    for (;;) {
        uint64_t k;
        if (read_full(acks[0], &k, sizeof k, 60000) != 0)
            fail_msg("the child stopped before %u acks (%zu)", target, n);
        if (k == STOP)
            break;
        assert_true(n < MAX_ACKED);
        acked[n++] = k;
    }
    /* The power cut, right after the last ack. */
    assert_int_equal(kill(fs, SIGUSR1), 0);
    int st;
    assert_int_equal(waitpid(fs, &st, 0), fs);
    kill(kid, SIGKILL);
    assert_int_equal(waitpid(kid, &st, 0), kid);
    close(acks[0]);

    /* What the disk kept. */
    hw_store *s = hw_test_open(backing, 0, 0);
    assert_non_null(s);
    hw_store_reader *r;
    assert_int_equal(hw_store_reader_create(s, &r), HW_OK);
    hw_store_txn *t;
    assert_int_equal(hw_store_read_begin(r, &t), HW_OK);
    hw_arena *a = hw_arena_create(0);
    size_t lost = 0;
    for (size_t i = 0; i < n; i++) {
        void *v;
        size_t vl;
        if (hw_store_kv_get(t, "pc", &acked[i], sizeof acked[i], a, &v, &vl) != HW_OK) {
            if (lost++ < 5)
                fprintf(stderr, "acknowledged key %llx lost\n", (unsigned long long)acked[i]);
        }
    }
    hw_arena_destroy(a);
    hw_store_read_end(r);
    hw_store_reader_destroy(r);
    hw_store_close(s);
    if (lost)
        fail_msg("%zu of %zu acknowledged writes lost in the power cut (%s)", lost, n, sync ? "write" : "submit");
    free(acked);
    nftw(backing, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    rmdir(mount);
}

static void on_lossyfs(void **state)
{
    (void)state;
    srand((unsigned)time(NULL) ^ (unsigned)getpid());
    for (int round = 0; round < 8; round++)
        one_round(20 + (unsigned)rand() % 3000, false);
    for (int round = 0; round < 3; round++)
        one_round(1 + (unsigned)rand() % 40, true);
}

/* ---- in process ------------------------------------------------------------ */

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(on_lossyfs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
