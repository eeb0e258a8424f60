/* SPDX-License-Identifier: MIT */
/*
 * The master process: one epoll loop over the listeners, a signalfd and the
 * workers' exit signals; it accepts, admits (admit.c), forks one worker per
 * connection and reaps it (children.c), reloads on SIGHUP (reload.c), drains
 * on SIGTERM, and reports status (status.c). struct master is the state
 * those files share; master.c owns its life, the loop, signals and timers.
 */
#pragma once

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "admit.h"
#include "config.h"
#include "htab.h"
#include "listen.h"
#include "log.h"
#include "proxy-accept.h"
#include "sources.h"
#include "upgrade.h"
#include "udp.h"
#include "worker.h"

struct master_args {
        const char *config_path;
        int log_level_override;         /* -1 = use the config's */
        const char *pid_file;           /* NULL = none */
        int ready_fd;                   /* daemon readiness pipe, or -1 */
        const struct upgrade_state *upgrade;    /* what the previous image handed over (upgrade.h), or NULL */
};

/* The loop's epoll tag for what children.c takes: exit signals and the
 * workers' reports, which end the same way, in children_reap_signalled(). */
#define MASTER_EXIT_TAG (UINT64_MAX - 1)

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
        bool have_caps;                 /* workers must drop them */
        int report_fd;                  /* the master's end of the report socket (SO_PASSCRED) */
        int report_worker_fd;           /* the workers' end, inherited by each */
        int journal_watched;            /* log.c's journal socket, in the epoll set */
        uint64_t reports_ignored;       /* not from a worker of ours, or claiming another pid */
        uint64_t next_sweep;
        struct source_table sources;
        uint64_t rate_tat;

        uint64_t served;
        uint64_t failed;                /* abnormal worker exits */
        uint64_t closed[_CLOSE_REASON_MAX];     /* ended connections, by close reason */
        uint64_t bytes_echoed;          /* by ended connections (their reports) */
        uint64_t refused[_REFUSED_MAX];
        struct log_ratelimit refuse_rl[_REFUSED_MAX];
        struct log_ratelimit resource_rl;

        /* The connection record budget (log_rate) and what it held back. */
        uint64_t log_tat;
        uint64_t unlogged[_CLOSE_REASON_MAX];           /* connections without a record, by reason */
        uint64_t unlogged_bytes[_CLOSE_REASON_MAX];
        uint64_t summary_due;                           /* 0 = nothing to say */

        bool status_dirty;
        uint64_t status_sent;
        bool reload_failed;
        uint64_t reloads_ok;
        uint64_t reloads_failed;

        uint64_t start_realtime;        /* CLOCK_REALTIME at start, for echod_start_time_seconds */
        uint64_t metrics_due;
        struct log_ratelimit metrics_rl;

        struct udp_worker udp;          /* the UDP worker, not a connection (udp.c) */
        struct proxy_table proxy;       /* connections waiting for their PROXY header */

        bool stopping;
        uint64_t stop_deadline;
        bool killed;
        int ready_fd;                   /* daemon readiness pipe until reported */
        uint64_t upgrades_failed;       /* SIGUSR2 that left this image running */
        bool upgrade_waiting;           /* SIGUSR2 waits for the PROXY headers in flight */
};

/* Workers, and connections waiting for their PROXY header. */
static inline unsigned master_active(const struct master *m) {
        return (unsigned) m->children.len + m->proxy.n;
}

/* Adds the listeners to the epoll set or takes them out. Returns 0 or -errno. */
int master_watch_listeners(struct master *m, bool on);
/* Stops accepting for a moment: out of descriptors or processes. */
void master_pause_accepting(struct master *m, uint64_t now);

/* Takes ownership of cfg. Returns 0 after a clean stop, or -errno (logged). */
int master_run(struct config *cfg, const struct master_args *args);
