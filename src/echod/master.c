/* SPDX-License-Identifier: MIT */
/*
 * The master: event loop, accept path, limits, fork, reaping, reload, drain
 * and status. Its per-event work is O(1) in the number of workers (hashed
 * per-pid and per-source tables), and it logs nothing on the hot path but
 * rate-limited refusals: workers log their own connections.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon.h"
#include "echod-config.h"
#include "htab.h"
#include "fork-trim.h"
#include "sources.h"
#include "listen.h"
#include "log.h"
#include "master.h"
#include "notify.h"
#include "privs.h"
#include "proctitle.h"
#include "fd-util.h"
#include "parse.h"
#include "worker.h"

#define ACCEPT_BATCH 32                         /* per listener per wake-up */
#define BACKOFF_USEC (100 * USEC_PER_MSEC)      /* pause after EMFILE or fork failure */
#define SIGNAL_TAG UINT64_MAX
#define EXIT_TAG (UINT64_MAX - 1)


enum refuse_reason {
        REFUSED_LIMIT,
        REFUSED_PER_SOURCE,
        REFUSED_RATE,
        REFUSED_PER_SOURCE_RATE,
        REFUSED_ACCESS,
        REFUSED_SOURCES,
        REFUSED_RESOURCES,
        _REFUSED_MAX,
};

static const struct {
        const char *reason;     /* CLOSE_REASON= */
        const char *field;      /* status field */
} refuse_names[_REFUSED_MAX] = {
        [REFUSED_LIMIT] = { "refused-limit", "REFUSED_LIMIT" },
        [REFUSED_PER_SOURCE] = { "refused-per-source", "REFUSED_PER_SOURCE" },
        [REFUSED_RATE] = { "refused-rate", "REFUSED_RATE" },
        [REFUSED_PER_SOURCE_RATE] = { "refused-per-source-rate", "REFUSED_PER_SOURCE_RATE" },
        [REFUSED_ACCESS] = { "refused-access", "REFUSED_ACCESS" },
        [REFUSED_SOURCES] = { "refused-sources-full", "REFUSED_SOURCES_FULL" },
        [REFUSED_RESOURCES] = { "refused-resources", "REFUSED_RESOURCES" },
};

struct child {
        pid_t pid;              /* must stay first: it is the hash key */
        uint16_t port;
        struct netaddr remote;  /* full address */
        uint64_t start;
};

struct master {
        struct config *cfg;
        const struct master_args *args;

        int epoll_fd;
        int signal_fd;
        int exit_fd;                    /* signalfd of exit_signal, only to wake the loop */
        sigset_t saved_mask;

        struct listener *listeners;
        size_t n_listeners;
        bool socket_activated;
        bool watching;                  /* listeners are in the epoll set */
        uint64_t paused_until;          /* 0 = not paused */

        struct htab children;           /* pid -> struct child */
        int exit_signal;                /* the kernel reports a worker's exit with it */
        sigset_t exit_mask;
        sigset_t worker_poll_mask;      /* a worker's mask while it waits in ppoll() */
        uint64_t next_sweep;
        struct source_table sources;
        uint64_t rate_tat;

        uint64_t served;
        uint64_t closed[_CLOSE_REASON_MAX];
        uint64_t failed;                /* abnormal worker exits */
        uint64_t refused[_REFUSED_MAX];
        struct log_ratelimit refuse_rl[_REFUSED_MAX];
        struct log_ratelimit resource_rl;

        bool status_dirty;
        uint64_t status_sent;
        bool reload_failed;

        bool stopping;
        uint64_t stop_deadline;
        bool killed;
        int ready_fd;                   /* daemon readiness pipe until reported */
        bool have_caps;                 /* workers must drop them */
};

static unsigned n_active(const struct master *m) {
        return (unsigned) m->children.len;
}

/* ---- listeners in the epoll set ---- */

static int watch_listeners(struct master *m, bool on) {
        if (m->watching == on)
                return 0;
        for (size_t i = 0; i < m->n_listeners; i++) {
                struct epoll_event ev = { .events = EPOLLIN, .data.u64 = i };
                if (epoll_ctl(m->epoll_fd, on ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, m->listeners[i].fd, &ev) < 0)
                        return -errno;
        }
        m->watching = on;
        return 0;
}

/* Stops accepting for a moment: out of descriptors or processes. */
static void pause_accepting(struct master *m, uint64_t now) {
        (void) watch_listeners(m, false);
        m->paused_until = now + BACKOFF_USEC;
}

/* ---- status ---- */

static void format_refused(const struct master *m, char *buf, size_t size) {
        uint64_t total = 0;
        size_t off;

        for (int i = 0; i < _REFUSED_MAX; i++)
                total += m->refused[i];
        off = (size_t) snprintf(buf, size, "%" PRIu64 " refused", total);
        if (total == 0)
                return;
        for (int i = 0; i < _REFUSED_MAX && off < size; i++)
                if (m->refused[i] > 0)
                        off += (size_t) snprintf(buf + off, size - off, "%s%s %" PRIu64,
                                                 off && buf[off - 1] == 'd' ? " (" : ", ",
                                                 refuse_names[i].reason + strlen("refused-"), m->refused[i]);
        if (off < size)
                snprintf(buf + off, size - off, ")");
}

static void send_status(struct master *m, uint64_t now) {
        char refused[256];

        format_refused(m, refused, sizeof refused);
        (void) notify_send("STATUS=%s%u active, %" PRIu64 " served, %s",
                          m->reload_failed ? "Reload failed, old configuration in use; " : "",
                          n_active(m), m->served, refused);
        m->status_sent = now;
        m->status_dirty = false;
}

/* STATUS= at most once a second; the loop's timer sends what is pending. */
static void status_changed(struct master *m) {
        m->status_dirty = true;
}

static void log_status(struct master *m) {
        char fields_buf[_REFUSED_MAX + 8][96], top[512] = "", refused[256];
        const char *fields[_REFUSED_MAX + 9];
        struct { const struct source *s; } best[5] = {};
        size_t nf = 0, i = 0;
        const struct source *s;

        /* Top sources by active connections: one pass over the table, on demand. */
        while ((s = htab_next(&m->sources.h, &i))) {
                if (s->active == 0)
                        continue;
                for (size_t k = 0; k < ARRAY_SIZE(best); k++) {
                        if (!best[k].s || s->active > best[k].s->active) {
                                memmove(&best[k + 1], &best[k], (ARRAY_SIZE(best) - k - 1) * sizeof best[0]);
                                best[k].s = s;
                                break;
                        }
                }
        }
        for (size_t k = 0, off = 0; k < ARRAY_SIZE(best) && best[k].s && off < sizeof top; k++) {
                char net[64];
                netaddr_format(&best[k].s->key, net, sizeof net);
                off += (size_t) snprintf(top + off, sizeof top - off, "%s%s=%u", k ? " " : "", net, best[k].s->active);
        }

        snprintf(fields_buf[nf], sizeof fields_buf[nf], "ACTIVE=%u", n_active(m)); nf++;
        snprintf(fields_buf[nf], sizeof fields_buf[nf], "SERVED=%" PRIu64, m->served); nf++;
        snprintf(fields_buf[nf], sizeof fields_buf[nf], "FAILED=%" PRIu64, m->failed); nf++;
        snprintf(fields_buf[nf], sizeof fields_buf[nf], "SOURCES=%zu", m->sources.h.len); nf++;
        snprintf(fields_buf[nf], sizeof fields_buf[nf], "TOP_SOURCES=%s", top); nf++;
        for (int r = 0; r < _REFUSED_MAX; r++, nf++)
                snprintf(fields_buf[nf], sizeof fields_buf[nf], "%s=%" PRIu64, refuse_names[r].field, m->refused[r]);
        for (size_t k = 0; k < nf; k++)
                fields[k] = fields_buf[k];
        fields[nf] = NULL;

        format_refused(m, refused, sizeof refused);
        log_record(LOG_NOTICE, true, ECHOD_MID_STATUS, fields,
                   "status: %u active, %" PRIu64 " served, %s, %" PRIu64 " workers failed; top sources: %s",
                   n_active(m), m->served, refused, m->failed, top[0] ? top : "none");
}

/* ---- refusing ---- */

static void refuse(struct master *m, int fd, const struct sockaddr_any *peer, const struct listener *l,
                   enum refuse_reason why, const char *detail, uint64_t now) {
        uint64_t suppressed;

        safe_close(fd);
        m->refused[why]++;
        status_changed(m);

        if (!log_ratelimit_test(&m->refuse_rl[why], now, &suppressed))
                return;

        char host[ADDR_STR_MAX], peer_str[ADDR_STR_MAX], note[96] = "";
        char f_addr[ADDR_STR_MAX + 16], f_port[32], f_lport[32], f_reason[64], f_supp[48];
        sockaddr_format_host(peer, host, sizeof host);
        sockaddr_format(peer, peer_str, sizeof peer_str);
        snprintf(f_addr, sizeof f_addr, "REMOTE_ADDR=%s", host);
        snprintf(f_port, sizeof f_port, "REMOTE_PORT=%u", sockaddr_port(peer));
        snprintf(f_lport, sizeof f_lport, "LOCAL_PORT=%u", sockaddr_port(&l->addr));
        snprintf(f_reason, sizeof f_reason, "CLOSE_REASON=%s", refuse_names[why].reason);
        snprintf(f_supp, sizeof f_supp, "SUPPRESSED=%" PRIu64, suppressed);
        if (suppressed > 0)
                snprintf(note, sizeof note, " (%" PRIu64 " similar refusals not logged in the last second)", suppressed);
        const char *const fields[] = { f_addr, f_port, f_lport, f_reason, f_supp, NULL };
        log_record(LOG_WARNING, false, ECHOD_MID_CONN_REFUSED, fields,
                   "refused connection from %s: %s, closing it%s", peer_str, detail, note);
}

/* Logs the refusals held back by the rate limit once their window is over. */
static void flush_refusal_summaries(struct master *m, uint64_t now) {
        for (int i = 0; i < _REFUSED_MAX; i++) {
                struct log_ratelimit *rl = &m->refuse_rl[i];
                if (rl->suppressed == 0 || now - rl->window_start < rl->interval_usec)
                        continue;
                char f_reason[64], f_supp[48];
                snprintf(f_reason, sizeof f_reason, "CLOSE_REASON=%s", refuse_names[i].reason);
                snprintf(f_supp, sizeof f_supp, "SUPPRESSED=%" PRIu64, rl->suppressed);
                const char *const fields[] = { f_reason, f_supp, NULL };
                log_record(LOG_WARNING, false, ECHOD_MID_CONN_REFUSED, fields,
                           "%" PRIu64 " more connections refused (%s) and not logged individually",
                           rl->suppressed, refuse_names[i].reason);
                rl->suppressed = 0;
                rl->used = false;
        }
}

static void log_resource_problem(struct master *m, uint64_t now, int err, const char *what) {
        uint64_t suppressed;
        char f_errno[32], f_supp[48];

        if (!log_ratelimit_test(&m->resource_rl, now, &suppressed))
                return;
        snprintf(f_errno, sizeof f_errno, "ERRNO=%d", err);
        snprintf(f_supp, sizeof f_supp, "SUPPRESSED=%" PRIu64, suppressed);
        const char *const fields[] = { f_errno, f_supp, NULL };
        errno = err;
        log_record(LOG_ERR, false, ECHOD_MID_RESOURCE, fields,
                   "%s: %m; not accepting for 100 ms (%" PRIu64 " similar errors since the last message)",
                   what, suppressed);
}

/* ---- workers ---- */

/*
 * fork() with another exit signal: the kernel tells the master of the
 * worker's exit with the realtime signal exit_signal instead of SIGCHLD.
 * Realtime signals are queued one per exit, never coalesced, and each names
 * its worker, so the master reaps exactly that pid (waitid(P_PID) is O(1);
 * waitpid(-1) walks every child on each call, which made each connection
 * cost more the more connections were held). Such children are waited for
 * with __WALL. As with _Fork(), no atfork handlers run: the master is
 * single-threaded, so no lock can be held across it.
 */
static pid_t fork_worker(int exit_signal) {
        return (pid_t) syscall(SYS_clone, (unsigned long) exit_signal, NULL, NULL, NULL, 0UL);
}

static _noreturn_ void run_worker(struct master *m, int fd, const struct sockaddr_any *peer,
                                  const struct listener *l) {
        /* The worker keeps its connection, stdio and the journal socket
         * only: not the listeners, the epoll set or the signalfd. */
        const int keep[] = { fd, log_journal_fd() };
        int code;

        (void) close_all_fds_except(keep, ARRAY_SIZE(keep));
        if (m->have_caps)
                (void) privs_drop_caps();
        log_journal_fork_child();
        code = worker_main(fd, fd, m->cfg, &(struct worker_args) {
                .remote = peer,
                .local_port = sockaddr_port(&l->addr),
                .poll_mask = &m->worker_poll_mask,
        });
        _exit(code);
}

static void spawn(struct master *m, int fd, const struct sockaddr_any *peer, const struct listener *l, uint64_t now) {
        const struct config *c = m->cfg;
        struct netaddr remote, key;
        const struct acl_entry *rule;
        struct source *s;
        struct child *ch;
        char detail[160];
        bool allowed;
        pid_t pid;
        int r;

        netaddr_from_sockaddr(&remote, peer, 32, 128);
        rule = acl_check(c, &remote, &allowed);
        if (!allowed) {
                if (rule) {
                        char net[64];
                        netaddr_format(&rule->net, net, sizeof net);
                        snprintf(detail, sizeof detail, "denied by '%s %s' (%s:%u)",
                                 rule->allow ? "allow" : "deny", net, c->path, rule->line);
                } else
                        snprintf(detail, sizeof detail, "not in any allow network (%s)", c->path);
                return refuse(m, fd, peer, l, REFUSED_ACCESS, detail, now);
        }
        if (c->max_connections > 0 && n_active(m) >= c->max_connections) {
                snprintf(detail, sizeof detail, "max_connections (%u) reached", c->max_connections);
                return refuse(m, fd, peer, l, REFUSED_LIMIT, detail, now);
        }

        netaddr_from_sockaddr(&key, peer, c->source_prefix_v4, c->source_prefix_v6);
        r = sources_acquire(&m->sources, &key, now, &s);
        if (r < 0) {
                if (r == -ENOSPC) {
                        snprintf(detail, sizeof detail, "source table full (max_sources %u)", c->max_sources);
                        return refuse(m, fd, peer, l, REFUSED_SOURCES, detail, now);
                }
                return refuse(m, fd, peer, l, REFUSED_RESOURCES, "out of memory", now);
        }
        if (c->max_connections_per_source > 0 && s->active >= c->max_connections_per_source) {
                char net[64];
                netaddr_format(&key, net, sizeof net);
                snprintf(detail, sizeof detail, "max_connections_per_source (%u) reached for %s",
                         c->max_connections_per_source, net);
                sources_release(&m->sources, s, now);
                return refuse(m, fd, peer, l, REFUSED_PER_SOURCE, detail, now);
        }
        /* Check both buckets before charging either: a connection refused by
         * one limit costs nothing from the other. */
        if (!gcra_conforms(s->tat, now, c->rate_limit_per_source, c->rate_limit_per_source_burst)) {
                char net[64];
                netaddr_format(&key, net, sizeof net);
                snprintf(detail, sizeof detail, "rate_limit_per_source (%u/s, burst %u) exceeded by %s",
                         c->rate_limit_per_source, c->rate_limit_per_source_burst, net);
                sources_release(&m->sources, s, now);
                return refuse(m, fd, peer, l, REFUSED_PER_SOURCE_RATE, detail, now);
        }
        if (!gcra_allow(&m->rate_tat, now, c->rate_limit, c->rate_limit_burst)) {
                snprintf(detail, sizeof detail, "rate_limit (%u/s, burst %u) exceeded", c->rate_limit, c->rate_limit_burst);
                sources_release(&m->sources, s, now);
                return refuse(m, fd, peer, l, REFUSED_RATE, detail, now);
        }
        (void) gcra_allow(&s->tat, now, c->rate_limit_per_source, c->rate_limit_per_source_burst);

        pid = fork_worker(m->exit_signal);
        if (pid < 0) {
                int err = errno;
                sources_release(&m->sources, s, now);
                log_resource_problem(m, now, err, "cannot fork a worker, closing the connection");
                pause_accepting(m, now);
                return refuse(m, fd, peer, l, REFUSED_RESOURCES, "cannot fork a worker", now);
        }
        if (pid == 0)
                run_worker(m, fd, peer, l);

        safe_close(fd);
        s->active++;
        r = htab_put(&m->children, &pid, (void **) &ch);
        if (r < 0) {
                /* Cannot track it: do not let it run untracked. */
                (void) kill(pid, SIGKILL);
                s->active--;
                sources_release(&m->sources, s, now);
                m->refused[REFUSED_RESOURCES]++;
                log_resource_problem(m, now, -r, "cannot track a new worker, killed it");
                return;
        }
        ch->port = sockaddr_port(peer);
        ch->remote = remote;
        ch->start = now;
        m->served++;
        status_changed(m);
}

static void accept_batch(struct master *m, size_t idx) {
        const struct listener *l = &m->listeners[idx];

        for (int i = 0; i < ACCEPT_BATCH; i++) {
                struct sockaddr_any peer = { .len = sizeof peer.storage };
                uint64_t now;
                int fd;

                fd = accept4(l->fd, &peer.sa, &peer.len, SOCK_NONBLOCK | SOCK_CLOEXEC);
                now = now_usec(CLOCK_MONOTONIC);
                if (fd < 0) {
                        switch (errno) {
                        case EAGAIN:
                                return;
                        case EINTR:
                        case ECONNABORTED:
                        case EPROTO:
                        case EPERM:             /* firewall */
                                continue;
                        case EMFILE:
                        case ENFILE:
                        case ENOBUFS:
                        case ENOMEM:
                                log_resource_problem(m, now, errno, "cannot accept connections");
                                pause_accepting(m, now);
                                return;
                        default:
                                log_resource_problem(m, now, errno, "accept() failed");
                                pause_accepting(m, now);
                                return;
                        }
                }
                sockaddr_unmap(&peer);
                spawn(m, fd, &peer, l, now);
                if (!m->watching)
                        return;         /* paused by a fork failure */
        }
}

static void child_exited(struct master *m, pid_t pid, int status) {
        struct child *ch = htab_get(&m->children, &pid);
        uint64_t now = now_usec(CLOCK_MONOTONIC);
        struct netaddr key;
        struct source *s;
        int reason = -1;

        if (!ch)
                return;         /* not a worker of ours: nothing to account */

        if (WIFEXITED(status))
                reason = close_reason_from_exit_code(WEXITSTATUS(status));
        if (reason >= 0)
                m->closed[reason]++;
        else {
                char host[INET6_ADDRSTRLEN + 8], f_pid[32], f_addr[96], f_status[64];
                m->failed++;
                netaddr_format_host(&ch->remote, host, sizeof host);
                snprintf(f_pid, sizeof f_pid, "WORKER_PID=%d", (int) pid);
                snprintf(f_addr, sizeof f_addr, "REMOTE_ADDR=%s", host);
                if (WIFSIGNALED(status))
                        snprintf(f_status, sizeof f_status, "SIGNAL=%d", WTERMSIG(status));
                else
                        snprintf(f_status, sizeof f_status, "EXIT_STATUS=%d", WEXITSTATUS(status));
                const char *const fields[] = { f_pid, f_addr, f_status, NULL };
                if (WIFSIGNALED(status))
                        log_record(LOG_WARNING, false, ECHOD_MID_WORKER_FAILED, fields,
                                   "worker %d (client %s port %u) was killed by signal %d (%s)",
                                   (int) pid, host, ch->port, WTERMSIG(status), strsignal(WTERMSIG(status)));
                else
                        log_record(LOG_WARNING, false, ECHOD_MID_WORKER_FAILED, fields,
                                   "worker %d (client %s port %u) exited with unexpected status %d",
                                   (int) pid, host, ch->port, WEXITSTATUS(status));
        }

        key = ch->remote;
        netaddr_mask(&key, m->cfg->source_prefix_v4, m->cfg->source_prefix_v6);
        s = sources_get(&m->sources, &key);
        if (s) {
                if (s->active > 0)
                        s->active--;
                sources_release(&m->sources, s, now);
        }
        htab_remove(&m->children, ch);
        status_changed(m);
}

static int status_from_siginfo(const siginfo_t *si) {
        if (si->si_code == CLD_EXITED)
                return W_EXITCODE(si->si_status, 0);
        return si->si_status | (si->si_code == CLD_DUMPED ? WCOREFLAG : 0);
}

/* Reaps pid if it has exited: O(1), unlike waitpid(-1). */
static void reap_pid(struct master *m, pid_t pid) {
        siginfo_t si = {};

        if (waitid(P_PID, (id_t) pid, &si, WEXITED | WNOHANG | __WALL) < 0 || si.si_pid == 0)
                return;         /* ECHILD: reaped already, or not ours; or still running */
        child_exited(m, pid, status_from_siginfo(&si));
}

/* The full sweep, for exits whose signal was lost (the kernel drops a
 * realtime signal it cannot allocate memory for). Run once a second while
 * workers run, not per connection. */
static void reap_children(struct master *m) {
        for (;;) {
                int status;
                pid_t pid = waitpid(-1, &status, WNOHANG | __WALL);
                if (pid == 0)
                        return;
                if (pid < 0) {
                        if (errno == EINTR)
                                continue;
                        return;         /* ECHILD */
                }
                child_exited(m, pid, status);
        }
}

static void signal_children(struct master *m, int sig) {
        size_t i = 0;
        const struct child *ch;

        while ((ch = htab_next(&m->children, &i)))
                (void) kill(ch->pid, sig);
}

/* ---- reload ---- */

/* Rebuilds the per-source table for new prefixes or size, from the live workers. */
static int rebuild_sources(struct master *m, const struct config *c) {
        struct source_table t;
        const struct child *ch;
        size_t i = 0;
        int r;

        r = sources_init(&t, c->max_sources);
        if (r < 0)
                return r;
        while ((ch = htab_next(&m->children, &i))) {
                struct netaddr key = ch->remote;
                void *e;
                netaddr_mask(&key, c->source_prefix_v4, c->source_prefix_v6);
                /* Live workers are always counted, even beyond max_sources. */
                r = htab_put(&t.h, &key, &e);
                if (r < 0) {
                        sources_done(&t);
                        return r;
                }
                ((struct source *) e)->active++;
        }
        sources_done(&m->sources);
        m->sources = t;
        return 0;
}

/* Opens what is new, keeps what is unchanged (its backlog is never lost),
 * closes what is gone. All or nothing: on failure the old set stays. */
static int apply_listeners(struct master *m, const struct config *c, char *err, size_t errsize,
                           size_t *ret_added, size_t *ret_removed) {
        struct listener *ls = calloc(c->n_listen ? c->n_listen : 1, sizeof *ls);
        bool *kept = calloc(m->n_listeners + 1, sizeof *kept);
        bool was_watching = m->watching;
        size_t added = 0, removed = 0;
        int r = 0;

        if (!ls || !kept) {
                free(ls);
                free(kept);
                snprintf(err, errsize, "out of memory");
                return -ENOMEM;
        }
        for (size_t i = 0; i < c->n_listen; i++) {
                size_t j;
                for (j = 0; j < m->n_listeners; j++)
                        if (!kept[j] && sockaddr_equal(&m->listeners[j].addr, &c->listen[i].addr))
                                break;
                if (j < m->n_listeners) {
                        ls[i] = m->listeners[j];
                        kept[j] = true;
                        if (c->backlog != m->cfg->backlog)
                                (void) listen(ls[i].fd, (int) c->backlog);
                        continue;
                }
                r = listener_open(&ls[i], &c->listen[i].addr, c->backlog);
                if (r < 0) {
                        errno = -r;
                        snprintf(err, errsize, "cannot listen on %s: %m", c->listen[i].text);
                        for (size_t k = 0; k < i; k++) {
                                bool reused = false;
                                for (size_t o = 0; o < m->n_listeners; o++)
                                        if (kept[o] && m->listeners[o].fd == ls[k].fd)
                                                reused = true;
                                if (!reused)
                                        listener_close(&ls[k]);
                        }
                        free(ls);
                        free(kept);
                        return r;
                }
                added++;
        }

        (void) watch_listeners(m, false);
        for (size_t j = 0; j < m->n_listeners; j++)
                if (!kept[j]) {
                        listener_close(&m->listeners[j]);
                        removed++;
                }
        free(m->listeners);
        free(kept);
        m->listeners = ls;
        m->n_listeners = c->n_listen;
        if (was_watching)
                (void) watch_listeners(m, true);
        *ret_added = added;
        *ret_removed = removed;
        return 0;
}

static void reload(struct master *m) {
        _cleanup_config_ struct config *c = NULL;
        struct strv errors = {};
        size_t added = 0, removed = 0;
        char err[512];
        uint64_t now = now_usec(CLOCK_MONOTONIC);
        int r;

        (void) notify_send("RELOADING=1\nSTATUS=Reloading %s\nMONOTONIC_USEC=%" PRIu64,
                          m->args->config_path, now);

        r = config_load(m->args->config_path, &c, &errors);
        if (r < 0) {
                for (size_t i = 0; i < errors.n; i++)
                        log_record(LOG_ERR, false, ECHOD_MID_RELOAD_FAILED, NULL, "%s", errors.items[i]);
                log_record(LOG_ERR, false, ECHOD_MID_RELOAD_FAILED, NULL,
                           "reload failed: %s is invalid (%zu error%s); still serving with the previous configuration",
                           m->args->config_path, errors.n, errors.n == 1 ? "" : "s");
                strv_clear(&errors);
                goto fail;
        }

        if (!m->socket_activated) {
                r = apply_listeners(m, c, err, sizeof err, &added, &removed);
                if (r < 0) {
                        log_record(LOG_ERR, false, ECHOD_MID_RELOAD_FAILED, NULL,
                                   "reload failed: %s; still serving with the previous configuration", err);
                        goto fail;
                }
        }
        if (c->source_prefix_v4 != m->cfg->source_prefix_v4 || c->source_prefix_v6 != m->cfg->source_prefix_v6 ||
            c->max_sources != m->cfg->max_sources) {
                r = rebuild_sources(m, c);
                if (r < 0)
                        log_warning_errno(r, "cannot rebuild the per-source table (%m); keeping the old prefixes for counting");
        }
        if ((c->user == NULL) != (m->cfg->user == NULL) || (c->user && strcmp(c->user, m->cfg->user) != 0) ||
            (c->group == NULL) != (m->cfg->group == NULL) || (c->group && strcmp(c->group, m->cfg->group) != 0))
                log_warning("user and group changes take effect only when echod is restarted");

        config_free(m->cfg);
        m->cfg = TAKE_PTR(c);
        if (m->args->log_level_override < 0)
                log_set_level(m->cfg->log_level);
        m->reload_failed = false;
        log_record(LOG_NOTICE, false, ECHOD_MID_RELOADED, NULL,
                   "reloaded %s: %zu listener%s (%zu added, %zu closed)%s; running workers are unchanged",
                   m->args->config_path, m->n_listeners, m->n_listeners == 1 ? "" : "s", added, removed,
                   m->socket_activated ? ", sockets from systemd kept" : "");
        send_status(m, now);
        (void) notify_send("READY=1");
        return;

fail:
        m->reload_failed = true;
        send_status(m, now);
        (void) notify_send("READY=1");
}

/* ---- stop ---- */

static void begin_stop(struct master *m, int sig, uint64_t now) {
        char d[32];

        if (m->stopping) {
                /* Asked twice: do not wait any longer. */
                m->stop_deadline = now;
                return;
        }
        m->stopping = true;
        format_duration(d, sizeof d, m->cfg->shutdown_timeout_usec);
        (void) notify_send("STOPPING=1\nSTATUS=Stopping: draining %u connections", n_active(m));
        log_record(LOG_NOTICE, false, ECHOD_MID_STOPPING, NULL,
                   "received %s, stopping: closing listeners, draining %u connection%s (up to %s)",
                   sig == SIGINT ? "SIGINT" : "SIGTERM", n_active(m), n_active(m) == 1 ? "" : "s", d);
        (void) watch_listeners(m, false);
        for (size_t i = 0; i < m->n_listeners; i++)
                listener_close(&m->listeners[i]);
        m->n_listeners = 0;
        signal_children(m, SIGTERM);
        m->stop_deadline = now + m->cfg->shutdown_timeout_usec;
}

static void check_stop_deadline(struct master *m, uint64_t now) {
        if (!m->stopping || m->killed || now < m->stop_deadline || n_active(m) == 0)
                return;
        char f_count[32];
        snprintf(f_count, sizeof f_count, "KILLED=%u", n_active(m));
        const char *const fields[] = { f_count, NULL };
        log_record(LOG_WARNING, false, ECHOD_MID_SHUTDOWN_KILLED, fields,
                   "%u worker%s still running after shutdown_timeout, killing them",
                   n_active(m), n_active(m) == 1 ? "" : "s");
        signal_children(m, SIGKILL);
        m->killed = true;
}

/* ---- the loop ---- */

/*
 * Workers' exits. signalfd(2) reports the kernel's siginfo of a realtime
 * exit signal in the layout of SIGPOLL, without the pid; sigtimedwait()
 * hands over the whole siginfo. exit_fd only wakes the loop.
 */
static void reap_exited(struct master *m) {
        static const struct timespec zero;
        siginfo_t si;

        for (;;) {
                if (sigtimedwait(&m->exit_mask, &si, &zero) < 0) {
                        if (errno == EINTR)
                                continue;
                        return;         /* EAGAIN: none left */
                }
                reap_pid(m, si.si_pid);
        }
}

static int handle_signals(struct master *m) {
        struct signalfd_siginfo si[16];
        bool hup = false, usr1 = false;
        int term = 0;

        for (;;) {
                ssize_t n = read(m->signal_fd, si, sizeof si);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN)
                                break;
                        return -errno;
                }
                for (size_t i = 0; i < (size_t) n / sizeof si[0]; i++)
                        switch (si[i].ssi_signo) {
                        case SIGCHLD:
                                /* Not a worker's exit (theirs is exit_signal): a
                                 * worker stopped or continued, or another child. */
                                reap_pid(m, (pid_t) si[i].ssi_pid);
                                break;
                        case SIGHUP: hup = true; break;
                        case SIGUSR1: usr1 = true; break;
                        case SIGTERM:
                        case SIGINT: term = (int) si[i].ssi_signo; break;
                        }
        }
        if (usr1)
                log_status(m);
        if (hup && !m->stopping && !term)
                reload(m);
        if (term)
                begin_stop(m, term, now_usec(CLOCK_MONOTONIC));
        return (hup || term) ? 1 : 0;
}

static int next_timeout_ms(const struct master *m, uint64_t now) {
        uint64_t deadline = USEC_INFINITY;

        if (m->paused_until && m->paused_until < deadline)
                deadline = m->paused_until;
        if (m->status_dirty && m->status_sent + USEC_PER_SEC < deadline)
                deadline = m->status_sent + USEC_PER_SEC;
        if (m->stopping && !m->killed && m->stop_deadline < deadline)
                deadline = m->stop_deadline;
        if (n_active(m) > 0 && m->next_sweep < deadline)
                deadline = m->next_sweep;
        for (int i = 0; i < _REFUSED_MAX; i++) {
                const struct log_ratelimit *rl = &m->refuse_rl[i];
                if (rl->suppressed > 0 && rl->window_start + rl->interval_usec < deadline)
                        deadline = rl->window_start + rl->interval_usec;
        }
        if (deadline == USEC_INFINITY)
                return -1;
        if (deadline <= now)
                return 0;
        return (int) ((deadline - now + USEC_PER_MSEC - 1) / USEC_PER_MSEC);
}

static void run_timers(struct master *m, uint64_t now) {
        if (m->paused_until && now >= m->paused_until) {
                m->paused_until = 0;
                if (!m->stopping)
                        (void) watch_listeners(m, true);
        }
        if (m->status_dirty && now >= m->status_sent + USEC_PER_SEC)
                send_status(m, now);
        flush_refusal_summaries(m, now);
        check_stop_deadline(m, now);
        if (n_active(m) > 0 && now >= m->next_sweep) {
                reap_children(m);
                m->next_sweep = now + USEC_PER_SEC;
        }
}

static int event_loop(struct master *m) {
        struct epoll_event ev[64];

        for (;;) {
                uint64_t now = now_usec(CLOCK_MONOTONIC);
                int n, r;

                if (m->stopping && n_active(m) == 0)
                        return 0;

                n = epoll_wait(m->epoll_fd, ev, (int) ARRAY_SIZE(ev), next_timeout_ms(m, now));
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return log_error_errno(errno, "epoll_wait() failed: %m");
                }

                /* Signals first: reaping must keep up with accepting. */
                bool changed = false;
                for (int i = 0; i < n; i++)
                        if (ev[i].data.u64 == EXIT_TAG)
                                reap_exited(m);
                for (int i = 0; i < n; i++)
                        if (ev[i].data.u64 == SIGNAL_TAG) {
                                r = handle_signals(m);
                                if (r < 0)
                                        return log_error_errno(r, "cannot read signals: %m");
                                changed = r > 0;
                        }
                /* A reload or stop may have replaced the listeners these events name. */
                if (!changed && m->watching)
                        for (int i = 0; i < n; i++)
                                if (ev[i].data.u64 < m->n_listeners) {
                                        accept_batch(m, (size_t) ev[i].data.u64);
                                        if (!m->watching)
                                                break;
                                }
                run_timers(m, now_usec(CLOCK_MONOTONIC));
        }
}

/* ---- start-up ---- */

static void warn_limits(const struct config *c) {
        struct rlimit rl;
        unsigned need = c->max_connections + 2;         /* workers, the master, a margin */
        char f_limit[64];

        if (c->max_connections == 0)
                return;
        if (getrlimit(RLIMIT_NPROC, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && geteuid() != 0 &&
            rl.rlim_cur < need) {
                snprintf(f_limit, sizeof f_limit, "LIMIT=RLIMIT_NPROC");
                const char *const fields[] = { f_limit, NULL };
                log_record(LOG_WARNING, false, ECHOD_MID_LIMIT_WARNING, fields,
                           "RLIMIT_NPROC is %llu, too low for max_connections %u: raise it to at least %u (LimitNPROC=)",
                           (unsigned long long) rl.rlim_cur, c->max_connections, need);
        }
        /* The master holds listeners and a few descriptors, never the connections. */
        unsigned need_fds = (unsigned) c->n_listen + 16;
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need_fds) {
                snprintf(f_limit, sizeof f_limit, "LIMIT=RLIMIT_NOFILE");
                const char *const fields[] = { f_limit, NULL };
                log_record(LOG_WARNING, false, ECHOD_MID_LIMIT_WARNING, fields,
                           "RLIMIT_NOFILE is %llu, too low: raise it to at least %u (LimitNOFILE=)",
                           (unsigned long long) rl.rlim_cur, need_fds);
        }

        /* cgroup v2 pids.max of our own cgroup (systemd's TasksMax=). */
        FILE *f = fopen("/proc/self/cgroup", "re");
        char line[512], path[600], val[32];
        if (!f)
                return;
        while (fgets(line, sizeof line, f)) {
                if (strncmp(line, "0::", 3) != 0)
                        continue;
                line[strcspn(line, "\n")] = '\0';
                snprintf(path, sizeof path, "/sys/fs/cgroup%s/pids.max", line + 3);
                FILE *p = fopen(path, "re");
                if (p && fgets(val, sizeof val, p)) {
                        unsigned long long max = strtoull(val, NULL, 10);
                        if (strncmp(val, "max", 3) != 0 && max < need) {
                                snprintf(f_limit, sizeof f_limit, "LIMIT=pids.max");
                                const char *const fields[] = { f_limit, NULL };
                                log_record(LOG_WARNING, false, ECHOD_MID_LIMIT_WARNING, fields,
                                           "the cgroup's pids.max is %llu, too low for max_connections %u: raise it to at least %u (TasksMax=)",
                                           max, c->max_connections, need);
                        }
                }
                if (p)
                        fclose(p);
        }
        fclose(f);
}

static int setup_listeners(struct master *m) {
        int bad_fd = -1, r;

        r = listeners_from_systemd(&m->listeners, &m->n_listeners, &bad_fd);
        if (r == -EBADMSG)
                return log_error_errno(EINVAL, "descriptor %d passed by systemd is not a listening stream socket; refusing to start", bad_fd);
        if (r < 0)
                return log_error_errno(r, "cannot use the sockets passed by systemd: %m");
        if (r > 0) {
                m->socket_activated = true;
                for (size_t i = 0; i < m->n_listeners; i++)
                        log_info("using socket %s passed by systemd", m->listeners[i].name);
                log_info("socket activated: the 'listen' setting in %s is ignored", m->cfg->path);
                return 0;
        }

        m->listeners = calloc(m->cfg->n_listen, sizeof *m->listeners);
        if (!m->listeners)
                return log_error_errno(ENOMEM, "out of memory");
        for (size_t i = 0; i < m->cfg->n_listen; i++) {
                r = listener_open(&m->listeners[i], &m->cfg->listen[i].addr, m->cfg->backlog);
                if (r < 0) {
                        m->n_listeners = i;
                        return log_error_errno(r, "cannot listen on %s: %m", m->cfg->listen[i].text);
                }
                m->n_listeners = i + 1;
                log_info("listening on %s", m->listeners[i].name);
        }
        return 0;
}

static int setup(struct master *m) {
        struct epoll_event ev = { .events = EPOLLIN, .data.u64 = SIGNAL_TAG };
        struct sigaction ign = { .sa_handler = SIG_IGN };
        sigset_t mask;
        int r;

        /* Nothing is done in signal context: everything arrives through the signalfd. */
        sigemptyset(&mask);
        sigaddset(&mask, SIGCHLD);
        sigaddset(&mask, SIGHUP);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGUSR1);
        m->exit_signal = SIGRTMIN;
        sigemptyset(&m->exit_mask);
        sigaddset(&m->exit_mask, m->exit_signal);
        sigaddset(&mask, m->exit_signal);
        if (sigprocmask(SIG_BLOCK, &mask, &m->saved_mask) < 0)
                return log_error_errno(errno, "cannot block signals: %m");
        (void) sigaction(SIGPIPE, &ign, NULL);
        /* Workers inherit these rather than each making system calls of its
         * own for them: they keep the master's mask (the signals above stay
         * blocked) and wait with SIGTERM and SIGINT unblocked, which run the
         * stop handler installed here. The master never unblocks them, so
         * the handler never runs in the master: its signals come from the signalfd. */
        worker_signals_install();
        sigorset(&m->worker_poll_mask, &m->saved_mask, &mask);
        sigdelset(&m->worker_poll_mask, SIGTERM);
        sigdelset(&m->worker_poll_mask, SIGINT);

        m->exit_fd = signalfd(-1, &m->exit_mask, SFD_NONBLOCK | SFD_CLOEXEC);
        sigdelset(&mask, m->exit_signal);
        m->signal_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
        if (m->signal_fd < 0 || m->exit_fd < 0)
                return log_error_errno(errno, "cannot create a signalfd: %m");
        m->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
        if (m->epoll_fd < 0)
                return log_error_errno(errno, "cannot create an epoll instance: %m");
        if (epoll_ctl(m->epoll_fd, EPOLL_CTL_ADD, m->signal_fd, &ev) < 0 ||
            epoll_ctl(m->epoll_fd, EPOLL_CTL_ADD, m->exit_fd,
                      &(struct epoll_event) { .events = EPOLLIN, .data.u64 = EXIT_TAG }) < 0)
                return log_error_errno(errno, "cannot watch the signalfd: %m");

        /* Small at first: the table grows with the number of workers. */
        r = htab_init(&m->children, sizeof(pid_t), sizeof(struct child), 64);
        if (r >= 0)
                r = sources_init(&m->sources, m->cfg->max_sources);
        if (r < 0)
                return log_error_errno(r, "out of memory");
        for (int i = 0; i < _REFUSED_MAX; i++)
                m->refuse_rl[i].interval_usec = USEC_PER_SEC;
        m->resource_rl.interval_usec = USEC_PER_SEC;

        r = setup_listeners(m);
        if (r < 0)
                return r;
        r = watch_listeners(m, true);
        if (r < 0)
                return log_error_errno(r, "cannot watch the listeners: %m");
        return 0;
}

int master_run(struct config *cfg, const struct master_args *args) {
        struct master m = {
                .cfg = cfg,
                .args = args,
                .epoll_fd = -1,
                .signal_fd = -1,
                .exit_fd = -1,
                .ready_fd = args->ready_fd,
        };
        struct privs_result pr;
        int r;

        proctitle_set_text("echod: master");
        (void) prctl(PR_SET_NAME, (unsigned long) "echod: master", 0, 0, 0);

        r = setup(&m);
        if (r < 0)
                goto out;

        if (args->pid_file) {
                r = pidfile_write(args->pid_file);
                if (r < 0) {
                        log_error_errno(r, "cannot write pid file %s: %m", args->pid_file);
                        goto out;
                }
        }

        r = privs_drop(cfg->user, cfg->group, &pr);
        if (r == -EPERM && geteuid() != 0) {
                log_error("user '%s' is set, but echod was not started as root and cannot switch to it", cfg->user);
                goto out;
        }
        if (r < 0) {
                log_error_errno(r, "cannot drop privileges to user %s: %m",
                                pr.user[0] ? pr.user : cfg->user ? cfg->user : "nobody");
                goto out;
        }
        if (pr.shared_fallback)
                log_warning("there is no user " PRIVS_DEFAULT_USER " (the echod package creates it): falling back to nobody, "
                            "whose other processes can signal echod's; set 'user' in the configuration to choose another");
        if (pr.dropped) {
                char f_user[96], f_uid[32], f_gid[32];
                snprintf(f_user, sizeof f_user, "USER=%s", pr.user);
                snprintf(f_uid, sizeof f_uid, "UID=%u", (unsigned) pr.uid);
                snprintf(f_gid, sizeof f_gid, "GID=%u", (unsigned) pr.gid);
                const char *const fields[] = { f_user, f_uid, f_gid, NULL };
                log_record(LOG_NOTICE, false, ECHOD_MID_PRIVS_DROPPED, fields,
                           "started as root: dropped privileges to user %s (%u), group %s (%u)%s",
                           pr.user, (unsigned) pr.uid, pr.group, (unsigned) pr.gid,
                           cfg->user ? "" : "; set 'user' in the configuration to choose another");
        }

        m.have_caps = privs_have_caps();
        warn_limits(cfg);

        /* Last, once every library the master needs (NSS included) is loaded. */
        size_t trimmed;
        r = fork_trim_libraries(log_get_target() == LOG_TARGET_JOURNAL, &trimmed);
        if (r < 0)
                log_full_errno(LOG_DEBUG, r, "cannot leave unused libraries out of workers (%m); they are copied into each");
        else if (trimmed > 0)
                log_debug("workers are forked without %zu shared librar%s they never call", trimmed,
                          trimmed == 1 ? "y" : "ies");

        {
                char listeners[512] = "";
                for (size_t i = 0, off = 0; i < m.n_listeners && off < sizeof listeners; i++)
                        off += (size_t) snprintf(listeners + off, sizeof listeners - off, "%s%s", i ? " " : "", m.listeners[i].name);
                char f_listen[600];
                snprintf(f_listen, sizeof f_listen, "LISTEN=%s", listeners);
                const char *const fields[] = { f_listen, NULL };
                log_record(LOG_NOTICE, false, ECHOD_MID_STARTED, fields,
                           "echod " ECHOD_VERSION " started, serving RFC 862 echo on %s", listeners);
        }
        send_status(&m, now_usec(CLOCK_MONOTONIC));
        (void) notify_send("READY=1");
        daemon_report(m.ready_fd, 0);
        m.ready_fd = -1;
        log_set_error_copy_fd(-1);

        r = event_loop(&m);

out:
        if (r < 0)
                daemon_report(m.ready_fd, 1);
        if (m.n_listeners && !m.stopping)
                for (size_t i = 0; i < m.n_listeners; i++)
                        listener_close(&m.listeners[i]);
        if (n_active(&m) > 0) {
                /* Failing out of the loop: do not leave workers behind. */
                signal_children(&m, SIGKILL);
                while (waitpid(-1, NULL, __WALL) > 0 || errno == EINTR)
                        ;
        }
        if (r >= 0) {
                char f_served[48];
                snprintf(f_served, sizeof f_served, "SERVED=%" PRIu64, m.served);
                const char *const fields[] = { f_served, NULL };
                log_record(LOG_NOTICE, false, ECHOD_MID_STOPPED, fields,
                           "stopped after serving %" PRIu64 " connection%s", m.served, m.served == 1 ? "" : "s");
        }
        if (args->pid_file)
                pidfile_remove(args->pid_file);
        free(m.listeners);
        htab_done(&m.children);
        sources_done(&m.sources);
        safe_close(m.epoll_fd);
        safe_close(m.signal_fd);
        safe_close(m.exit_fd);
        config_free(m.cfg);
        return r < 0 ? 1 : 0;
}
