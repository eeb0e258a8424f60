/* SPDX-License-Identifier: MIT */
/* Creating workers, the child table, and reaping (see children.h). */
#include <errno.h>
#include <linux/sched.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "children.h"
#include "fd-util.h"
#include "log.h"
#include "master.h"
#include "privs.h"
#include "status.h"
#include "worker.h"

int children_init(struct master *m) {
        /* Small at first: the table grows with the number of workers. */
        return htab_init(&m->children, sizeof(pid_t), sizeof(struct child), 64);
}

void children_done(struct master *m) {
        htab_done(&m->children);
}

/*
 * A fork whose exit the kernel reports with exit_signal, a realtime signal,
 * instead of SIGCHLD: realtime signals are queued one per exit, never
 * coalesced, and each names its worker, so the master reaps exactly that
 * pid with waitid(P_PID), which is O(1) where waitpid(-1) walks every child.
 * clone3() takes its arguments in a struct, the same on every architecture
 * (clone()'s order differs on s390x and others). No atfork handlers run:
 * the master is single-threaded, so no lock can be held across it. Where
 * clone3() is missing (kernels before 5.3, or filtered with ENOSYS), a plain
 * fork() does: its SIGCHLD goes the same way through children_reap().
 */
static pid_t clone_worker(int exit_signal) {
        struct clone_args args = { .exit_signal = (uint64_t) exit_signal };
        long pid = syscall(SYS_clone3, &args, sizeof args);

        if (pid < 0 && (errno == ENOSYS || errno == EPERM))
                return fork();
        return (pid_t) pid;
}

static _noreturn_ void run_worker(struct master *m, int fd, const struct sockaddr_any *peer,
                                  const struct listener *l) {
        /* The worker keeps its connection, stdio and the journal socket
         * only: not the listeners, the epoll set or the signalfds. */
        const int keep[] = { fd, log_journal_fd() };
        int r;

        (void) close_all_fds_except(keep, ARRAY_SIZE(keep));
        if (m->have_caps) {
                r = privs_drop_caps();
                if (r < 0) {
                        /* Never serve a client with the master's capabilities. */
                        log_journal_fork_child();
                        log_record_text(LOG_ERR, false, ECHOD_MID_WORKER_FAILED, NULL,
                                        "worker cannot drop its capabilities, closing the connection unserved");
                        _exit(EXIT_FAILURE);
                }
        }
        log_journal_fork_child();
        _exit(worker_main(fd, fd, m->cfg, &(struct worker_args) {
                .remote = peer,
                .local_port = sockaddr_port(&l->addr),
                .poll_mask = &m->worker_poll_mask,
        }));
}

int children_spawn(struct master *m, int fd, const struct sockaddr_any *peer, const struct listener *l,
                   const struct netaddr *key, uint64_t now) {
        struct child *ch;
        pid_t pid;
        int r;

        pid = clone_worker(m->exit_signal);
        if (pid < 0) {
                r = -errno;
                safe_close(fd);
                return r;
        }
        if (pid == 0)
                run_worker(m, fd, peer, l);

        safe_close(fd);
        r = htab_put(&m->children, &pid, (void **) &ch);
        if (r < 0) {
                /* Cannot track it: do not let it run untracked. */
                (void) kill(pid, SIGKILL);
                (void) waitid(P_PID, (id_t) pid, &(siginfo_t) {}, WEXITED | __WALL);
                return r;
        }
        netaddr_from_sockaddr(&ch->remote, peer, 32, 128);
        ch->port = sockaddr_port(peer);
        ch->key = *key;
        ch->start = now;
        return 0;
}

static void log_abnormal_exit(const struct child *ch, const siginfo_t *si) {
        char host[ADDR_STR_MAX];

        netaddr_format_host(&ch->remote, host, sizeof host);
        if (si->si_code == CLD_EXITED)
                log_struct(LOG_WARNING,
                           LOG_MESSAGE_ID(ECHOD_MID_WORKER_FAILED),
                           "WORKER_PID=%d", (int) ch->pid,
                           "REMOTE_ADDR=%s", host,
                           "EXIT_STATUS=%d", si->si_status,
                           LOG_MESSAGE("worker %d (client %s port %u) exited with unexpected status %d",
                                       (int) ch->pid, host, ch->port, si->si_status));
        else
                log_struct(LOG_WARNING,
                           LOG_MESSAGE_ID(ECHOD_MID_WORKER_FAILED),
                           "WORKER_PID=%d", (int) ch->pid,
                           "REMOTE_ADDR=%s", host,
                           "SIGNAL=%d", si->si_status,
                           LOG_MESSAGE("worker %d (client %s port %u) was killed by signal %d (%s)",
                                       (int) ch->pid, host, ch->port, si->si_status, strsignal(si->si_status)));
}

int children_reap(struct master *m, pid_t pid, bool block) {
        siginfo_t si = {};
        struct child *ch;
        int reason;

        for (;;) {
                if (waitid(pid > 0 ? P_PID : P_ALL, pid > 0 ? (id_t) pid : 0, &si,
                           WEXITED | __WALL | (block ? 0 : WNOHANG)) == 0)
                        break;
                if (errno != EINTR)
                        return -errno;          /* ECHILD: none, or reaped already */
        }
        if (si.si_pid == 0)
                return 0;                       /* still running */

        ch = htab_get(&m->children, &si.si_pid);
        if (!ch)
                return 1;                       /* not a worker of ours: nothing to account */
        reason = si.si_code == CLD_EXITED ? close_reason_from_exit_code(si.si_status) : -1;
        if (reason >= 0)
                m->closed[reason]++;
        else {
                m->failed++;
                log_abnormal_exit(ch, &si);
        }
        sources_put(&m->sources, &ch->key, now_usec(CLOCK_MONOTONIC));
        htab_remove(&m->children, ch);
        status_changed(m);
        return 1;
}

/*
 * signalfd(2) reports the kernel's siginfo of a realtime exit signal in the
 * layout of SIGPOLL, without the pid; sigtimedwait() hands over the whole
 * siginfo, so the loop's exit_fd only wakes it and the signals are taken here.
 */
void children_reap_signalled(struct master *m) {
        static const struct timespec zero;
        siginfo_t si;

        for (;;) {
                if (sigtimedwait(&m->exit_mask, &si, &zero) < 0) {
                        if (errno == EINTR)
                                continue;
                        return;         /* EAGAIN: none left */
                }
                (void) children_reap(m, si.si_pid, false);
        }
}

/* The kernel drops a realtime signal it cannot allocate memory for: the
 * loop runs this once a second while workers run, not per connection. */
void children_sweep(struct master *m) {
        while (children_reap(m, -1, false) > 0)
                ;
}

void children_rekey(struct master *m, uint64_t now) {
        struct child *ch;
        size_t i = 0, failed = 0;

        while ((ch = htab_next(&m->children, &i)))
                if (sources_rekey(&m->sources, &ch->key, &ch->remote, now) < 0)
                        failed++;
        if (failed > 0)
                log_warning("cannot count %zu running connection%s under the new source prefixes (out of memory); "
                            "they stay counted under the old ones until they end", failed, failed == 1 ? "" : "s");
}

void children_signal(struct master *m, int sig) {
        const struct child *ch;
        size_t i = 0;

        while ((ch = htab_next(&m->children, &i)))
                (void) kill(ch->pid, sig);
}
