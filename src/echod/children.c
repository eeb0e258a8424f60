/* SPDX-License-Identifier: MIT */
/* Creating workers, the child table, and reaping (see children.h). */
#include <errno.h>
#include <linux/sched.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "children.h"
#include "fd-util.h"
#include "log.h"
#include "master.h"
#include "privs.h"
#include "status.h"
#include "udp.h"
#include "worker.h"

/*
 * The report socket: a datagram socketpair made before any fork. Every
 * worker inherits the one end and sends its report there; on the master's
 * end SO_PASSCRED makes the kernel attach each sender's credentials, which
 * a worker cannot forge (only CAP_SYS_ADMIN may claim another pid, and
 * workers have no capabilities). Nobody else can reach a socketpair.
 */
static int report_socket_open(struct master *m) {
        int sv[2], one = 1, r;

        if (m->args && m->args->upgrade) {
                /* Kept across an in-place upgrade (upgrade.h), without CLOEXEC. */
                m->report_fd = m->args->upgrade->report_fd;
                m->report_worker_fd = m->args->upgrade->report_worker_fd;
                r = fd_set_cloexec(m->report_fd, true);
                if (r >= 0)
                        r = fd_set_cloexec(m->report_worker_fd, true);
                if (r < 0)
                        return r;
        } else {
                if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv) < 0)
                        return -errno;
                m->report_fd = sv[0];
                m->report_worker_fd = sv[1];
        }
        if (setsockopt(m->report_fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof one) < 0)
                return -errno;
        r = fd_set_nonblock(m->report_fd, true);
        if (r < 0)
                return r;
        /* Level-triggered: reports are drained before each reap, and
         * whatever a worker sends wakes the loop even before its exit. */
        if (epoll_ctl(m->epoll_fd, EPOLL_CTL_ADD, m->report_fd,
                      &(struct epoll_event) { .events = EPOLLIN, .data.u64 = MASTER_EXIT_TAG }) < 0)
                return -errno;
        return 0;
}

int children_init(struct master *m) {
        int r;

        /* Small at first: the table grows with the number of workers. */
        r = htab_init(&m->children, sizeof(pid_t), sizeof(struct child), 64);
        if (r < 0)
                return r;
        return report_socket_open(m);
}

void children_done(struct master *m) {
        htab_done(&m->children);
        m->report_fd = safe_close(m->report_fd);
        m->report_worker_fd = safe_close(m->report_worker_fd);
}

unsigned children_take_reports(struct master *m) {
        unsigned taken = 0;

        for (;;) {
                union {
                        struct cmsghdr h;
                        char buf[CMSG_SPACE(sizeof(struct ucred))];
                } control;
                struct worker_report rep;
                struct iovec iov = { &rep, sizeof rep };
                struct msghdr mh = {
                        .msg_iov = &iov,
                        .msg_iovlen = 1,
                        .msg_control = &control,
                        .msg_controllen = sizeof control,
                };
                const struct ucred *cred = NULL;
                struct child *ch = NULL;
                ssize_t n;

                n = recvmsg(m->report_fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return taken;   /* EAGAIN: none left */
                }
                for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
                        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS &&
                            c->cmsg_len == CMSG_LEN(sizeof(struct ucred)))
                                cred = (const struct ucred *) CMSG_DATA(c);
                if (cred && cred->pid > 0)
                        ch = htab_get(&m->children, &cred->pid);
                if (!ch || n != (ssize_t) sizeof rep || (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) ||
                    rep.magic != WORKER_REPORT_MAGIC || rep.pid != cred->pid ||
                    rep.reason >= _CLOSE_REASON_WORKER_MAX || ch->reported) {
                        m->reports_ignored++;
                        continue;
                }
                ch->reported = true;
                ch->reason = (uint8_t) rep.reason;
                ch->error = rep.error;
                ch->bytes = rep.bytes;
                /* The worker is done with its client and only exits now:
                 * the client may connect again at once. */
                sources_put(&m->sources, &ch->key, now_usec(CLOCK_MONOTONIC));
                taken++;
        }
}

/*
 * A fork whose exit the kernel reports with exit_signal, a realtime signal,
 * instead of SIGCHLD: realtime signals are queued one per exit, never
 * coalesced, and each names its worker, so the master reaps exactly that
 * pid with waitid(P_PID), which is O(1) where waitpid(-1) walks every child.
 * clone3() takes its arguments in a struct, the same on every architecture.
 * Where it is missing (kernels before 5.3) or filtered with ENOSYS (as
 * systemd's RestrictNamespaces= does, since seccomp cannot look into the
 * struct), the raw clone() does, with only flags set: every other argument
 * is zero, so only the architectures that take the stack first (s390,
 * CONFIG_CLONE_BACKWARDS2) need their own order. Never glibc's fork(): it
 * runs the atfork handlers that libraries registered (libsystemd's, for its
 * pid cache) in the child, whose copies of those libraries fork-trim.c left
 * out. No atfork handler is needed: the master is single-threaded, so no
 * lock can be held across the fork.
 */
static pid_t clone_worker(int exit_signal) {
        struct clone_args args = { .exit_signal = (uint64_t) exit_signal };
        long pid = syscall(SYS_clone3, &args, sizeof args);

        if (pid >= 0 || errno != ENOSYS)
                return (pid_t) pid;
#if defined(__s390__) || defined(__CRIS__)
        return (pid_t) syscall(SYS_clone, 0UL, (unsigned long) exit_signal, 0UL, 0UL, 0UL);
#else
        return (pid_t) syscall(SYS_clone, (unsigned long) exit_signal, 0UL, 0UL, 0UL, 0UL);
#endif
}

pid_t children_clone(int exit_signal) {
        return clone_worker(exit_signal);
}

static _noreturn_ void run_worker(struct master *m, int fd, const struct sockaddr_any *peer,
                                  const struct listener *l) {
        /* The worker keeps its connection, stdio, its end of the report
         * socket and the journal socket (payload records) only: not the
         * listeners, the epoll set or the signalfds. */
        const int keep[] = { fd, m->report_worker_fd, log_journal_fd() };
        int r;

        log_journal_forget();
        (void) close_all_fds_except(keep, ARRAY_SIZE(keep));
        if (m->have_caps) {
                r = privs_drop_caps();
                if (r < 0) {
                        /* Never serve a client with the master's capabilities. */
                        log_record_text(LOG_ERR, false, ECHOD_MID_WORKER_FAILED, NULL,
                                        "worker cannot drop its capabilities, closing the connection unserved");
                        _exit(EXIT_FAILURE);
                }
        }
        _exit(worker_main(fd, fd, m->cfg, &(struct worker_args) {
                .remote = peer,
                .local_port = sockaddr_port(&l->addr),
                .report_fd = m->report_worker_fd,
                .poll_mask = &m->worker_poll_mask,
        }));
}

static void log_connection(struct master *m, const struct child *ch, const siginfo_t *si,
                           enum close_reason reason, uint64_t now);

int children_spawn(struct master *m, int fd, const struct sockaddr_any *peer, const struct listener *l,
                   const struct netaddr *key, uint64_t now) {
        return children_spawn_proxied(m, fd, peer, NULL, l, key, now);
}

int children_spawn_proxied(struct master *m, int fd, const struct sockaddr_any *peer,
                           const struct sockaddr_any *balancer, const struct listener *l,
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
        *ch = (struct child) {
                .pid = pid,
                .port = sockaddr_port(peer),
                .local_port = sockaddr_port(&l->addr),
                .key = *key,
                .start = now,
        };
        netaddr_from_sockaddr(&ch->remote, peer, 32, 128);
        if (balancer) {
                ch->proxied = true;
                ch->proxy_port = sockaddr_port(balancer);
                netaddr_from_sockaddr(&ch->proxy, balancer, 32, 128);
        }
        if (conn_record_wanted(m->cfg->log_connections, true, CLOSE_EOF))
                log_connection(m, ch, NULL, CLOSE_EOF, now);
        return 0;
}

/* How a reaped worker's connection ended: what it reported, or what its
 * exit says when it could not report. */
static enum close_reason end_reason(const struct child *ch, const siginfo_t *si) {
        int code = si->si_code == CLD_EXITED ? close_reason_from_exit_code(si->si_status) : -1;

        if (ch->reported)
                return (enum close_reason) ch->reason;
        if (si->si_code == CLD_KILLED || si->si_code == CLD_DUMPED)
                return CLOSE_KILLED;
        if (code >= 0)
                return (enum close_reason) code;        /* its report was lost */
        return CLOSE_FAILED;
}

/* The open record (si NULL) or the one record of how the connection ended:
 * what the worker reported, joined with what the master knows. */
static void log_connection(struct master *m, const struct child *ch, const siginfo_t *si,
                           enum close_reason reason, uint64_t now) {
        char host[ADDR_STR_MAX], proxy_host[ADDR_STR_MAX];
        struct conn_record r = {
                .host = host,
                .proxy_host = ch->proxied ? proxy_host : NULL,
                .proxy_port = ch->proxy_port,
                .remote_port = ch->port,
                .local_port = ch->local_port,
                .pid = (int) ch->pid,
                .open = !si,
                .duration_usec = now - ch->start,
        };

        if (si) {
                if (!conn_record_wanted(m->cfg->log_connections, false, reason))
                        return;
                if (ch->reported) {
                        r.error = ch->error;
                        r.bytes_known = true;
                        r.bytes = ch->bytes;
                } else if (reason == CLOSE_KILLED)
                        r.signal = si->si_status;
                r.reason = close_reason_to_string(reason);
                r.warning = close_reason_warning(reason);
        }
        netaddr_format_host(&ch->remote, host, sizeof host);
        if (ch->proxied)
                netaddr_format_host(&ch->proxy, proxy_host, sizeof proxy_host);
        status_conn_record(m, &r, reason, now);
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
        enum close_reason reason;
        uint64_t now;

        for (;;) {
                if (waitid(pid > 0 ? P_PID : P_ALL, pid > 0 ? (id_t) pid : 0, &si,
                           WEXITED | __WALL | (block ? 0 : WNOHANG)) == 0)
                        break;
                if (errno != EINTR)
                        return -errno;          /* ECHILD: none, or reaped already */
        }
        if (si.si_pid == 0)
                return 0;                       /* still running */

        if (si.si_pid == m->udp.pid) {
                udp_exited(m, &si, now_usec(CLOCK_MONOTONIC));
                return 1;
        }
        ch = htab_get(&m->children, &si.si_pid);
        if (!ch)
                return 1;                       /* not a worker of ours: nothing to account */
        /* Its report, if it sent one, was queued before it exited. */
        (void) children_take_reports(m);
        now = now_usec(CLOCK_MONOTONIC);
        reason = end_reason(ch, &si);
        m->closed[reason]++;
        if (ch->reported)
                m->bytes_echoed += ch->bytes;
        if (si.si_code != CLD_EXITED || close_reason_from_exit_code(si.si_status) < 0) {
                m->failed++;
                log_abnormal_exit(ch, &si);
        }
        log_connection(m, ch, &si, reason, now);
        if (!ch->reported)
                sources_put(&m->sources, &ch->key, now);
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

        /* The loop woke for an exit signal or for a report: a report whose
         * worker is still on its way out waits in its struct child. */
        (void) children_take_reports(m);
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
                if (!ch->reported && sources_rekey(&m->sources, &ch->key, &ch->remote, now) < 0)
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
