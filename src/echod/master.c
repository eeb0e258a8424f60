/* SPDX-License-Identifier: MIT */
/*
 * The master's life: set-up, the epoll loop over the listeners and the
 * signals, the timers, the drain on SIGTERM, and the accept path that turns
 * a connection into a verdict (admit.c) and a worker (children.c). Its
 * per-event work is O(1) in the number of workers.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/rseq.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "accept.h"
#include "children.h"
#include "daemon.h"
#include "echod-config.h"
#include "fd-util.h"
#include "fork-trim.h"
#include "master.h"
#include "metrics.h"
#include "notify.h"
#include "parse.h"
#include "privs.h"
#include "proctitle.h"
#include "reload.h"
#include "status.h"
#include "upgrade.h"
#include "worker.h"

#define BACKOFF_USEC (100 * USEC_PER_MSEC)      /* pause after EMFILE or fork failure */
#define SIGNAL_TAG UINT64_MAX
#define EXIT_TAG MASTER_EXIT_TAG
#define JOURNAL_TAG (UINT64_MAX - 2)
#define JOURNAL_RETRY_MSEC 100          /* in case journald's wake-up is missed */
#define JOURNAL_DRAIN_USEC (2 * USEC_PER_SEC)   /* at exit, for the records still queued */

int master_watch_listeners(struct master *m, bool on) {
        if (m->watching == on)
                return 0;
        for (size_t i = 0; i < m->n_listeners; i++) {
                struct epoll_event ev = { .events = EPOLLIN, .data.u64 = i };
                if (m->listeners[i].kind == LISTENER_UDP)
                        continue;       /* the UDP worker's */
                if (epoll_ctl(m->epoll_fd, on ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, m->listeners[i].fd, &ev) < 0)
                        return -errno;
        }
        m->watching = on;
        return 0;
}

void master_pause_accepting(struct master *m, uint64_t now) {
        (void) master_watch_listeners(m, false);
        m->paused_until = now + BACKOFF_USEC;
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
        (void) notify_send("STOPPING=1\nSTATUS=Stopping: draining %u connections", master_active(m));
        log_struct(LOG_NOTICE, LOG_MESSAGE_ID(ECHOD_MID_STOPPING),
                   LOG_MESSAGE("received %s, stopping: closing listeners, draining %u connection%s (up to %s)",
                               sig == SIGINT ? "SIGINT" : "SIGTERM", master_active(m),
                               master_active(m) == 1 ? "" : "s", d));
        (void) master_watch_listeners(m, false);
        udp_stop(m);
        for (size_t i = 0; i < m->n_listeners; i++)
                listener_close(&m->listeners[i]);
        m->n_listeners = 0;
        proxy_close_all(m);
        children_signal(m, SIGTERM);
        m->stop_deadline = now + m->cfg->shutdown_timeout_usec;
}

static void check_stop_deadline(struct master *m, uint64_t now) {
        unsigned n = master_active(m);

        if (!m->stopping || m->killed || now < m->stop_deadline || n == 0)
                return;
        log_struct(LOG_WARNING, LOG_MESSAGE_ID(ECHOD_MID_SHUTDOWN_KILLED),
                   "KILLED=%u", n,
                   LOG_MESSAGE("%u worker%s still running after shutdown_timeout, killing them", n, n == 1 ? "" : "s"));
        children_signal(m, SIGKILL);
        m->killed = true;
}

/* ---- signals and timers ---- */

/* Returns 1 when the listeners may have changed (reload or stop), 0, or -errno. */
static int handle_signals(struct master *m) {
        struct signalfd_siginfo si[16];
        bool hup = false, usr1 = false, usr2 = false;
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
                                /* A worker stopped or continued (not an exit), or
                                 * a child that is not a worker. */
                                (void) children_reap(m, (pid_t) si[i].ssi_pid, false);
                                break;
                        case SIGHUP: hup = true; break;
                        case SIGUSR1: usr1 = true; break;
                        case SIGUSR2: usr2 = true; break;
                        case SIGTERM:
                        case SIGINT: term = (int) si[i].ssi_signo; break;
                        }
        }
        if (usr1)
                status_log(m);
        if (hup && !m->stopping && !term)
                master_reload(m);
        /* Returns only when this image runs on. */
        if (usr2 && !m->stopping && !term)
                upgrade_request(m);
        if (term)
                begin_stop(m, term, now_usec(CLOCK_MONOTONIC));
        return (hup || term) ? 1 : 0;
}

static uint64_t next_deadline(const struct master *m) {
        uint64_t deadline = status_next_flush(m);

        if (m->paused_until && m->paused_until < deadline)
                deadline = m->paused_until;
        if (m->status_dirty && m->status_sent + USEC_PER_SEC < deadline)
                deadline = m->status_sent + USEC_PER_SEC;
        if (m->stopping && !m->killed && m->stop_deadline < deadline)
                deadline = m->stop_deadline;
        if (master_active(m) > 0 && m->next_sweep < deadline)
                deadline = m->next_sweep;
        if (metrics_next(m) < deadline)
                deadline = metrics_next(m);
        if (udp_next_deadline(m) < deadline)
                deadline = udp_next_deadline(m);
        if (proxy_next_deadline(m) < deadline)
                deadline = proxy_next_deadline(m);
        return deadline;
}

static int next_timeout_ms(const struct master *m, uint64_t now) {
        uint64_t deadline = next_deadline(m);

        if (log_journal_queued() > 0 && deadline > now + JOURNAL_RETRY_MSEC * USEC_PER_MSEC)
                return JOURNAL_RETRY_MSEC;
        if (deadline == USEC_INFINITY)
                return -1;
        if (deadline <= now)
                return 0;
        return (int) ((deadline - now + USEC_PER_MSEC - 1) / USEC_PER_MSEC);
}

/* Records journald could not take wait in log.c's queue: the loop sends
 * them when its socket becomes writable (edge-triggered: a wake-up per
 * "journald read some"), never blocking an accept. */
static void watch_journal(struct master *m) {
        int fd = log_journal_fd();

        if (fd == m->journal_watched)
                return;
        /* A closed descriptor has left the epoll set by itself. */
        if (m->journal_watched >= 0)
                (void) epoll_ctl(m->epoll_fd, EPOLL_CTL_DEL, m->journal_watched, NULL);
        m->journal_watched = -1;
        if (fd >= 0 && epoll_ctl(m->epoll_fd, EPOLL_CTL_ADD, fd,
                                 &(struct epoll_event) { .events = EPOLLOUT | EPOLLET, .data.u64 = JOURNAL_TAG }) == 0)
                m->journal_watched = fd;
}

static void run_timers(struct master *m, uint64_t now) {
        if (m->upgrade_waiting)
                upgrade_retry(m);
        if (log_journal_queued() > 0)
                (void) log_journal_flush();
        if (m->paused_until && now >= m->paused_until) {
                m->paused_until = 0;
                if (!m->stopping && !m->upgrade_waiting)
                        (void) master_watch_listeners(m, true);
        }
        if (m->status_dirty && now >= m->status_sent + USEC_PER_SEC)
                status_send(m, now);
        status_flush_refusals(m, now);
        proxy_timers(m, now);
        check_stop_deadline(m, now);
        if (master_active(m) > 0 && now >= m->next_sweep) {
                children_sweep(m);
                m->next_sweep = now + USEC_PER_SEC;
        }
        if (now >= metrics_next(m))
                metrics_write(m, now);
        udp_run_timers(m, now);
}

static int event_loop(struct master *m) {
        struct epoll_event ev[64];

        for (;;) {
                bool changed = false;
                int n, r;

                if (m->stopping && master_active(m) == 0)
                        return 0;

                watch_journal(m);
                n = epoll_wait(m->epoll_fd, ev, (int) ARRAY_SIZE(ev), next_timeout_ms(m, now_usec(CLOCK_MONOTONIC)));
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return log_error_errno(errno, "epoll_wait() failed: %m");
                }

                /* Signals first: reaping must keep up with accepting. */
                for (int i = 0; i < n; i++)
                        if (ev[i].data.u64 == EXIT_TAG)
                                children_reap_signalled(m);
                for (int i = 0; i < n; i++)
                        if (ev[i].data.u64 == SIGNAL_TAG) {
                                r = handle_signals(m);
                                if (r < 0)
                                        return log_error_errno(r, "cannot read signals: %m");
                                changed = r > 0;
                        }
                for (int i = 0; i < n; i++)
                        if (PROXY_TAG_IS(ev[i].data.u64))
                                proxy_event(m, ev[i].data.u64, ev[i].events);
                /* A reload or stop may have replaced the listeners these events name. */
                for (int i = 0; i < n && !changed && m->watching; i++)
                        if (ev[i].data.u64 < m->n_listeners)
                                accept_batch(m, (size_t) ev[i].data.u64);
                run_timers(m, now_usec(CLOCK_MONOTONIC));
        }
}

/* ---- start-up ---- */

/* Nothing is done in signal context: everything arrives through the signalfds. */
static int setup_signals(struct master *m) {
        struct sigaction ign = { .sa_handler = SIG_IGN };
        sigset_t mask;

        sigemptyset(&mask);
        sigaddset(&mask, SIGCHLD);
        sigaddset(&mask, SIGHUP);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGUSR1);
        sigaddset(&mask, SIGUSR2);
        m->exit_signal = SIGRTMIN;
        sigemptyset(&m->exit_mask);
        sigaddset(&m->exit_mask, m->exit_signal);
        sigaddset(&mask, m->exit_signal);
        if (sigprocmask(SIG_BLOCK, &mask, &m->saved_mask) < 0)
                return -errno;
        (void) sigaction(SIGPIPE, &ign, NULL);
        /* Workers inherit these rather than each making system calls of its
         * own for them: they keep the master's mask (the signals above stay
         * blocked) and wait with SIGTERM and SIGINT unblocked, which run the
         * stop handler installed here. The master never unblocks them, so
         * the handler never runs in the master. */
        worker_signals_install();
        sigorset(&m->worker_poll_mask, &m->saved_mask, &mask);
        sigdelset(&m->worker_poll_mask, SIGTERM);
        sigdelset(&m->worker_poll_mask, SIGINT);

        m->exit_fd = signalfd(-1, &m->exit_mask, SFD_NONBLOCK | SFD_CLOEXEC);
        sigdelset(&mask, m->exit_signal);
        m->signal_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
        if (m->signal_fd < 0 || m->exit_fd < 0)
                return -errno;
        return 0;
}

static int setup(struct master *m) {
        int r;

        r = setup_signals(m);
        if (r < 0)
                return log_error_errno(r, "cannot set up signal handling: %m");
        m->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
        if (m->epoll_fd < 0)
                return log_error_errno(errno, "cannot create an epoll instance: %m");
        if (epoll_ctl(m->epoll_fd, EPOLL_CTL_ADD, m->signal_fd,
                      &(struct epoll_event) { .events = EPOLLIN, .data.u64 = SIGNAL_TAG }) < 0 ||
            epoll_ctl(m->epoll_fd, EPOLL_CTL_ADD, m->exit_fd,
                      &(struct epoll_event) { .events = EPOLLIN, .data.u64 = EXIT_TAG }) < 0)
                return log_error_errno(errno, "cannot watch the signalfd: %m");

        r = children_init(m);
        if (r >= 0)
                r = udp_init(m);
        if (r >= 0)
                r = sources_init(&m->sources, m->cfg->max_sources, m->cfg->source_prefix_v4, m->cfg->source_prefix_v6);
        if (r < 0)
                return log_error_errno(r, "out of memory");
        for (int i = 0; i < _REFUSED_MAX; i++)
                m->refuse_rl[i].interval_usec = USEC_PER_SEC;
        m->resource_rl.interval_usec = USEC_PER_SEC;

        r = listeners_setup(m->cfg, &m->listeners, &m->n_listeners, &m->socket_activated);
        if (r < 0)
                return r;
        if (m->args->upgrade)
                upgrade_adopt(m, m->args->upgrade);
        r = master_watch_listeners(m, true);
        if (r < 0)
                return log_error_errno(r, "cannot watch the listeners: %m");
        return 0;
}

static int drop_privileges(struct master *m) {
        const struct config *c = m->cfg;
        struct privs_result pr;
        int r;

        r = privs_drop(c->user, c->group, &pr);
        if (r == -EPERM && geteuid() != 0)
                return log_error_errno(r, "user '%s' is set, but echod was not started as root and cannot switch to it", c->user);
        if (r < 0)
                return log_error_errno(r, "cannot drop privileges to user %s: %m",
                                       pr.user[0] ? pr.user : c->user ? c->user : "nobody");
        if (pr.shared_fallback)
                log_warning("there is no user " PRIVS_DEFAULT_USER " (the echod package creates it): falling back to nobody, "
                            "whose other processes can signal echod's; set 'user' in the configuration to choose another");
        if (pr.dropped)
                log_struct(LOG_NOTICE, LOG_MESSAGE_ID(ECHOD_MID_PRIVS_DROPPED),
                           "USER=%s", pr.user,
                           "UID=%u", (unsigned) pr.uid,
                           "GID=%u", (unsigned) pr.gid,
                           LOG_MESSAGE("started as root: dropped privileges to user %s (%u), group %s (%u)%s",
                                       pr.user, (unsigned) pr.uid, pr.group, (unsigned) pr.gid,
                                       c->user ? "" : "; set 'user' in the configuration to choose another"));
        m->have_caps = privs_have_caps();
        return 0;
}

static void trim_libraries(void) {
        size_t trimmed;
        int r;

        /* Last, once every library the master needs (NSS included) is loaded. */
        r = fork_trim_libraries(&trimmed);
        if (r == -ENOTSUP)
                log_debug("symbols may still be bound lazily (LD_AUDIT, LD_PROFILE, or no re-exec): workers keep every library");
        else if (r < 0)
                log_full_errno(LOG_DEBUG, r, "cannot leave unused libraries out of workers (%m); they are copied into each");
        else if (trimmed > 0)
                log_debug("workers are forked without %zu shared librar%s they never call", trimmed,
                          trimmed == 1 ? "y" : "ies");
        /* glibc.pthread.rseq=0, from the re-exec (fork-trim.c) unless the
         * operator's GLIBC_TUNABLES said otherwise. */
        log_debug("restartable sequences are %s", __rseq_size > 0 ? "on" : "off");
}

static void log_started(const struct master *m) {
        char listeners[512] = "";

        for (size_t i = 0, off = 0; i < m->n_listeners && off < sizeof listeners; i++)
                off += (size_t) snprintf(listeners + off, sizeof listeners - off, "%s%s%s", i ? " " : "",
                                         m->listeners[i].kind == LISTENER_UDP ? "udp:" : "", m->listeners[i].name);
        log_struct(LOG_NOTICE, LOG_MESSAGE_ID(ECHOD_MID_STARTED),
                   "LISTEN=%s", listeners,
                   LOG_MESSAGE("echod " ECHOD_VERSION " started, serving RFC 862 echo on %s", listeners));
}

static void master_done(struct master *m) {
        if (!m->stopping)
                for (size_t i = 0; i < m->n_listeners; i++)
                        listener_close(&m->listeners[i]);
        if (master_active(m) > 0) {
                /* Failing out of the loop: do not leave workers behind. */
                children_signal(m, SIGKILL);
                while (children_reap(m, -1, true) > 0)
                        ;
        }
        udp_done(m);
        proxy_close_all(m);
        proxy_table_done(&m->proxy);
        free(m->listeners);
        children_done(m);
        sources_done(&m->sources);
        safe_close(m->epoll_fd);
        safe_close(m->signal_fd);
        safe_close(m->exit_fd);
        config_free(m->cfg);
}

int master_run(struct config *cfg, const struct master_args *args) {
        struct master m = {
                .cfg = cfg,
                .args = args,
                .epoll_fd = -1,
                .signal_fd = -1,
                .exit_fd = -1,
                .report_fd = -1,
                .report_worker_fd = -1,
                .journal_watched = -1,
                .ready_fd = args->ready_fd,
                .start_realtime = now_usec(CLOCK_REALTIME),
        };
        int r;

        proctitle_set_text("echod: master");
        (void) prctl(PR_SET_NAME, (unsigned long) "echod: master", 0, 0, 0);

        r = setup(&m);
        if (r < 0)
                goto out;
        /* After an in-place upgrade it names this pid already, and this
         * image may lack the rights to write it again. */
        if (args->pid_file && !args->upgrade) {
                r = pidfile_write(args->pid_file);
                if (r < 0) {
                        log_error_errno(r, "cannot write pid file %s: %m", args->pid_file);
                        goto out;
                }
        }
        r = drop_privileges(&m);
        if (r < 0)
                goto out;
        status_warn_limits(cfg);
        trim_libraries();

        log_started(&m);
        /* As the user that serves, so that every later write can replace it. */
        metrics_write(&m, now_usec(CLOCK_MONOTONIC));
        udp_warn_config(&m, cfg);
        udp_start(&m, now_usec(CLOCK_MONOTONIC));
        status_send(&m, now_usec(CLOCK_MONOTONIC));
        if (args->upgrade)
                (void) notify_send("MAINPID=%d", (int) getpid());
        (void) notify_send("READY=1");
        daemon_report(m.ready_fd, 0);
        m.ready_fd = -1;
        log_set_error_copy_fd(-1);

        r = event_loop(&m);
        status_flush_summary(&m, now_usec(CLOCK_MONOTONIC), true);
        udp_summary(&m, now_usec(CLOCK_MONOTONIC), true);
        if (r >= 0) {
                metrics_write(&m, now_usec(CLOCK_MONOTONIC));
                log_struct(LOG_NOTICE, LOG_MESSAGE_ID(ECHOD_MID_STOPPED),
                           "SERVED=%" PRIu64, m.served,
                           LOG_MESSAGE("stopped after serving %" PRIu64 " connection%s", m.served, m.served == 1 ? "" : "s"));
        }
        log_journal_drain(JOURNAL_DRAIN_USEC);
out:
        if (r < 0)
                daemon_report(m.ready_fd, 1);
        if (args->pid_file)
                pidfile_remove(args->pid_file);
        master_done(&m);
        return r;
}
