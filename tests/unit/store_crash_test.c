/*
 * store_crash_test: nothing acknowledged is lost on kill -9.
 *
 * Each round forks a child that opens the store and writes from several
 * threads (a ticket with all its indexes, an update of an older ticket, an
 * event and an outbox message per request); after each acknowledged write
 * it reports the ticket number on a pipe. The parent SIGKILLs the child at
 * a random moment, drains the pipe, reopens the store (which clears the dead
 * child's reader slots) and checks that every number ever acknowledged is
 * there and that every index agrees with the records. 24 rounds.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "server/store/records.h"
#include "tests/unit/store_test_util.h"

enum { ROUNDS = 24, CHILD_THREADS = 6, MAX_ACKED = 200000 };

typedef struct child_ctx {
    hw_store *s;
    int fd;
} child_ctx;

typedef struct crash_req {
    uint64_t number;
} crash_req;

static int crash_write(hw_store_txn *w, void *ctx)
{
    crash_req *r = ctx;
    hw_arena *a = hw_store_txn_arena(w);
    int rc = hw_store_next_seq(w, "ticket", 1000, &r->number);
    if (rc)
        return rc;
    static char *queues[] = {"technical", "billing", "general"};
    static char *agents[] = {"", "a-1", "a-2", "a-3"};
    char *id = hw_arena_printf(a, "t-%llu", (unsigned long long)r->number);
    char *cust = hw_arena_printf(a, "c-%llu", (unsigned long long)(r->number % 7));
    Helpwire__V1__Ticket tk = HELPWIRE__V1__TICKET__INIT;
    tk.id = id;
    tk.number = r->number;
    tk.customer_id = cust;
    tk.queue = queues[r->number % 3];
    tk.status = HELPWIRE__V1__TICKET_STATUS__TICKET_STATUS_OPEN;
    tk.priority = (Helpwire__V1__Priority)(1 + r->number % 4);
    tk.assignee_agent_id = agents[r->number % 4];
    tk.subject = "crash test";
    tk.version = 1;
    if ((rc = hw_store_ticket_put(w, &tk, HW_PUT_CREATE, 0)))
        return rc;
    /* Move an older ticket between index entries. */
    if (r->number > 1003) {
        Helpwire__V1__Ticket *old;
        rc = hw_store_ticket_get_by_number(w, r->number - 3, a, &old);
        if (rc == HW_OK) {
            old->status = (Helpwire__V1__TicketStatus)(1 + (old->status % 5));
            old->assignee_agent_id = agents[(r->number + 1) % 4];
            old->version++;
            if ((rc = hw_store_ticket_put(w, old, HW_PUT_REPLACE, old->version - 1)))
                return rc;
        } else if (rc != HW_ENOTFOUND) {
            return rc;
        }
    }
    Helpwire__V1__TicketEvent ev = HELPWIRE__V1__TICKET_EVENT__INIT;
    ev.ticket_id = id;
    ev.kind = HELPWIRE__V1__TICKET_EVENT_KIND__TICKET_EVENT_KIND_CREATED;
    ev.actor = "system";
    if ((rc = hw_store_ticket_event_append(w, &ev)))
        return rc;
    Helpwire__V1__OutboundMessage m = HELPWIRE__V1__OUTBOUND_MESSAGE__INIT;
    m.channel = HELPWIRE__V1__CHANNEL__CHANNEL_WEBCHAT;
    m.channel_user_id = cust;
    m.ticket_id = id;
    m.text = "we got your message";
    return hw_store_outbox_append(w, &m);
}

static void *child_writer(void *p)
{
    child_ctx *c = p;
    for (;;) {
        crash_req r = {0};
        if (hw_store_write(c->s, crash_write, &r) != HW_OK)
            _exit(3);
        /* Reported only after the durable commit. 8 bytes < PIPE_BUF:
         * atomic. */
        if (write(c->fd, &r.number, sizeof(r.number)) != sizeof(r.number))
            _exit(4);
    }
    return NULL;
}

static void child_main(const char *dir, int fd)
{
    child_ctx c = {.s = hw_test_open(dir, 256 * 1024, 0), .fd = fd};
    if (!c.s)
        _exit(2);
    pthread_t th[CHILD_THREADS];
    for (int i = 0; i < CHILD_THREADS; i++)
        pthread_create(&th[i], NULL, child_writer, &c);
    for (;;)
        pause();
}

static uint64_t acked[MAX_ACKED];
static size_t nacked;

static void verify(const char *dir, int round)
{
    hw_store *s = hw_test_open(dir, 256 * 1024, 0);
    assert_non_null(s);
    hw_store_reader *r;
    hw_store_txn *t;
    hw_arena *a = hw_arena_create(0);
    assert_int_equal(hw_store_reader_create(s, &r), HW_OK);
    assert_int_equal(hw_store_read_begin(r, &t), HW_OK);
    uint64_t max = 0;
    for (size_t i = 0; i < nacked; i++) {
        Helpwire__V1__Ticket *tk;
        int rc = hw_store_ticket_get_by_number(t, acked[i], a, &tk);
        if (rc != HW_OK)
            fail_msg("round %d: acknowledged ticket %llu: %s", round, (unsigned long long)acked[i],
                     hw_errname(rc));
        if (acked[i] > max)
            max = acked[i];
        hw_arena_reset(a);
    }
    uint64_t last;
    assert_int_equal(hw_store_peek_seq(t, "ticket", &last), HW_OK);
    assert_true(last >= max);
    char err[256];
    int rc = hw_store_check(t, err, sizeof(err));
    if (rc != HW_OK)
        fail_msg("round %d: store inconsistent: %s", round, err);
    hw_store_read_end(r);
    hw_store_reader_destroy(r);
    hw_arena_destroy(a);
    hw_store_close(s);
}

static void test_kill_9_loses_no_acknowledged_write(void **state)
{
    (void)state;
    char dir[PATH_MAX];
    hw_test_dir(dir, sizeof(dir), "crash");
    srand((unsigned)time(NULL) ^ (unsigned)getpid());
    size_t killed_with_acks = 0;
    for (int round = 0; round < ROUNDS; round++) {
        int fds[2];
        assert_int_equal(pipe(fds), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(fds[0]);
            child_main(dir, fds[1]);
        }
        close(fds[1]);
        /* Kill at a random moment: 2..80 ms after the start (some rounds
         * die while opening, most in the middle of group commits). */
        struct timespec ts = {0, (long)(2 + rand() % 79) * 1000000L};
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
        size_t before = nacked;
        uint64_t num;
        ssize_t n;
        while ((n = read(fds[0], &num, sizeof(num))) == sizeof(num)) {
            assert_true(nacked < MAX_ACKED);
            acked[nacked++] = num;
        }
        close(fds[0]);
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
        if (nacked > before)
            killed_with_acks++;
        verify(dir, round);
    }
    print_message("%d rounds, %zu acknowledged writes, %zu rounds killed mid-write\n", ROUNDS, nacked,
                  killed_with_acks);
    assert_true(killed_with_acks >= ROUNDS / 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kill_9_loses_no_acknowledged_write),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
