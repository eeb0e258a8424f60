/* SPDX-License-Identifier: MIT */
/* Unit tests for children.c: real workers forked on socketpairs, and the
 * one reap path that every exit takes (the exit signal, the sweep, a wait),
 * with the source counts it releases. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "children.h"
#include "fd-util.h"
#include "log.h"
#include "master.h"
#include "unit.h"
#include "worker.h"

#define T0 (1000 * USEC_PER_SEC)

struct fixture {
        struct master m;
        struct listener l;
        int exit_fd;
};

static void setup(struct fixture *f, const char *config) {
        struct strv errors = {};
        sigset_t block;

        memset(f, 0, sizeof *f);
        log_open(LOG_TARGET_STDERR);
        ck_assert_int_eq(config_load_text("test.conf", config, strlen(config), &f->m.cfg, &errors), 0);
        f->m.epoll_fd = epoll_create1(EPOLL_CLOEXEC);
        ck_assert_int_ge(f->m.epoll_fd, 0);
        ck_assert_int_eq(children_init(&f->m), 0);
        ck_assert_int_eq(sources_init(&f->m.sources, 64, 32, 64), 0);
        f->m.exit_signal = SIGRTMIN;
        sigemptyset(&f->m.exit_mask);
        sigaddset(&f->m.exit_mask, f->m.exit_signal);
        block = f->m.exit_mask;
        sigaddset(&block, SIGCHLD);
        ck_assert_int_eq(sigprocmask(SIG_BLOCK, &block, NULL), 0);
        worker_signals_install();
        sigemptyset(&f->m.worker_poll_mask);
        f->exit_fd = signalfd(-1, &f->m.exit_mask, SFD_NONBLOCK | SFD_CLOEXEC);
        ck_assert_int_ge(f->exit_fd, 0);
        ck_assert_int_eq(sockaddr_parse("127.0.0.1:7", &f->l.addr), 0);
        f->l.fd = -1;
}

static void teardown(struct fixture *f) {
        children_done(&f->m);
        safe_close(f->m.epoll_fd);
        sources_done(&f->m.sources);
        config_free(f->m.cfg);
        safe_close(f->exit_fd);
}

/* Forks a worker for a connection from addr, counted as admit() would;
 * returns the client's end of its socketpair. */
static int spawn(struct fixture *f, const char *addr, struct netaddr *ret_key) {
        struct sockaddr_any peer;
        struct netaddr remote, key;
        struct source *s;
        int sv[2];

        ck_assert_int_eq(sockaddr_parse(addr, &peer), 0);
        netaddr_from_sockaddr(&remote, &peer, 32, 128);
        key = sources_key(&f->m.sources, &remote);
        ck_assert_int_eq(sources_acquire(&f->m.sources, &key, T0, &s), 0);
        s->active++;
        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
        ck_assert_int_eq(children_spawn(&f->m, sv[0], &peer, &f->l, &key, T0), 0);
        ck_assert_int_eq(fd_set_nonblock(sv[1], false), 0);
        if (ret_key)
                *ret_key = key;
        return sv[1];
}

static unsigned active_of(struct fixture *f, const struct netaddr *key) {
        struct source *s = sources_get(&f->m.sources, key);
        return s ? s->active : 0;
}

/* Echoes one byte through the worker, proving it runs. */
static void ping(int fd) {
        char c = 'x';

        ck_assert_int_eq(write(fd, &c, 1), 1);
        ck_assert_int_eq(read(fd, &c, 1), 1);
        ck_assert_int_eq(c, 'x');
}

/* Waits (bounded) until a worker's exit signal is queued, as the loop's epoll does. */
static void wait_exit_signal(struct fixture *f) {
        struct pollfd p = { .fd = f->exit_fd, .events = POLLIN };

        ck_assert_int_eq(poll(&p, 1, 10000), 1);
}

START_TEST(test_exit_signal_reaps_and_releases)
{
        struct fixture f;
        struct netaddr k1, k2;
        int c1, c2, c3;

        setup(&f, "log_connections = false\n");
        c1 = spawn(&f, "192.0.2.1:1000", &k1);
        c2 = spawn(&f, "192.0.2.1:1001", NULL);
        c3 = spawn(&f, "198.51.100.1:1000", &k2);
        ping(c1);
        ping(c2);
        ping(c3);
        ck_assert_uint_eq(master_active(&f.m), 3);
        ck_assert_uint_eq(active_of(&f, &k1), 2);

        /* EOF from the client: the worker ends normally; its exit comes as
         * the realtime signal and is reaped by pid. */
        close(c1);
        wait_exit_signal(&f);
        while (master_active(&f.m) == 3) {
                children_reap_signalled(&f.m);
                if (master_active(&f.m) == 3)
                        wait_exit_signal(&f);
        }
        ck_assert_uint_eq(master_active(&f.m), 2);
        ck_assert_uint_eq(active_of(&f, &k1), 1);
        ck_assert_uint_eq(f.m.failed, 0);

        close(c2);
        close(c3);
        while (master_active(&f.m) > 0)
                ck_assert_int_eq(children_reap(&f.m, -1, true), 1);
        ck_assert_uint_eq(active_of(&f, &k1), 0);
        ck_assert_uint_eq(active_of(&f, &k2), 0);
        ck_assert_uint_eq(f.m.sources.h.len, 0);
        ck_assert_uint_eq(f.m.failed, 0);
        ck_assert_int_eq(children_reap(&f.m, -1, false), -ECHILD);
        teardown(&f);
}
END_TEST

START_TEST(test_killed_worker_counted_as_failed)
{
        struct fixture f;
        struct netaddr k;
        const struct child *ch;
        size_t i = 0;
        int c;

        setup(&f, "log_connections = false\n");
        c = spawn(&f, "192.0.2.9:4000", &k);
        ping(c);
        ch = htab_next(&f.m.children, &i);
        ck_assert_ptr_nonnull(ch);
        ck_assert_int_eq(kill(ch->pid, SIGKILL), 0);
        ck_assert_int_eq(children_reap(&f.m, -1, true), 1);
        ck_assert_uint_eq(master_active(&f.m), 0);
        ck_assert_uint_eq(f.m.failed, 1);
        ck_assert_uint_eq(active_of(&f, &k), 0);
        close(c);
        teardown(&f);
}
END_TEST

START_TEST(test_stopped_worker_is_not_an_exit)
{
        struct fixture f;
        const struct child *ch;
        siginfo_t si;
        size_t i = 0;
        pid_t pid;
        int c;

        setup(&f, "log_connections = false\n");
        c = spawn(&f, "192.0.2.9:4000", NULL);
        ping(c);
        ch = htab_next(&f.m.children, &i);
        pid = ch->pid;
        ck_assert_int_eq(kill(pid, SIGSTOP), 0);
        /* Wait until it is stopped (WNOWAIT leaves the state to be seen again). */
        ck_assert_int_eq(waitid(P_PID, (id_t) pid, &si, WSTOPPED | WNOWAIT | __WALL), 0);
        ck_assert_int_eq(children_reap(&f.m, pid, false), 0);
        ck_assert_uint_eq(master_active(&f.m), 1);
        ck_assert_int_eq(kill(pid, SIGCONT), 0);
        ping(c);
        close(c);
        ck_assert_int_eq(children_reap(&f.m, pid, true), 1);
        ck_assert_uint_eq(master_active(&f.m), 0);
        ck_assert_uint_eq(f.m.failed, 0);
        teardown(&f);
}
END_TEST

/* An exit whose signal was lost (taken here without reaping) is found by the sweep. */
START_TEST(test_sweep_finds_lost_exit)
{
        static const struct timespec ten_s = { .tv_sec = 10 };
        struct fixture f;
        struct netaddr k;
        siginfo_t si;
        int c;

        setup(&f, "log_connections = false\n");
        c = spawn(&f, "192.0.2.5:5000", &k);
        ping(c);
        close(c);
        ck_assert_int_eq(sigtimedwait(&f.m.exit_mask, &si, &ten_s), f.m.exit_signal);
        children_reap_signalled(&f.m);          /* nothing queued any more */
        ck_assert_uint_eq(master_active(&f.m), 1);
        children_sweep(&f.m);
        ck_assert_uint_eq(master_active(&f.m), 0);
        ck_assert_uint_eq(active_of(&f, &k), 0);
        teardown(&f);
}
END_TEST

/* New prefixes while workers run: each is counted under its new key, and
 * its exit releases exactly that one. */
START_TEST(test_rekey_then_reap)
{
        struct fixture f;
        struct netaddr old;
        int c1, c2;

        setup(&f, "log_connections = false\n");
        c1 = spawn(&f, "192.0.2.1:1000", &old);
        c2 = spawn(&f, "192.0.2.2:1000", NULL);
        ping(c1);
        ping(c2);
        sources_configure(&f.m.sources, 64, 24, 64);
        children_rekey(&f.m, T0);
        struct netaddr key;
        ck_assert_int_eq(netaddr_parse_cidr("192.0.2.0/24", &key), 0);
        ck_assert_uint_eq(active_of(&f, &old), 0);
        ck_assert_uint_eq(active_of(&f, &key), 2);
        ck_assert_uint_eq(f.m.sources.h.len, 1);
        close(c1);
        close(c2);
        while (master_active(&f.m) > 0)
                ck_assert_int_eq(children_reap(&f.m, -1, true), 1);
        ck_assert_uint_eq(f.m.sources.h.len, 0);
        teardown(&f);
}
END_TEST

static Suite *children_suite(void) {
        Suite *s = suite_create("children");
        TCase *tc = tcase_create("reap");

        tcase_set_timeout(tc, 30);
        tcase_add_test(tc, test_exit_signal_reaps_and_releases);
        tcase_add_test(tc, test_killed_worker_counted_as_failed);
        tcase_add_test(tc, test_stopped_worker_is_not_an_exit);
        tcase_add_test(tc, test_sweep_finds_lost_exit);
        tcase_add_test(tc, test_rekey_then_reap);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return unit_run(children_suite());
}
