/* SPDX-License-Identifier: MIT */
/*
 * UDP echo: one long-lived worker process serves every UDP listener
 * (recvmmsg/sendmmsg, replies sent from the address each datagram was sent
 * to, udp-filter.c deciding for each), and the master's side of it:
 * starting it, restarting it with a backoff when it dies, replacing it on a
 * reload that changes its settings, its counters and their records.
 *
 * The counters live in one shared anonymous page that the master maps
 * before the first fork: the worker is its only writer, the master only
 * reads it, and it outlives every worker, so nothing is lost when one dies.
 */
#pragma once

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "config.h"
#include "udp-filter.h"

struct master;

struct udp_stats {
        uint64_t received;
        uint64_t bytes_received;
        uint64_t echoed;                        /* replies the kernel took */
        uint64_t bytes_echoed;
        uint64_t send_failed;                   /* an echo the kernel refused (buffer full, no route) */
        uint64_t dropped[_UDP_VERDICT_MAX];     /* by reason; [UDP_ECHO] unused */
};

struct udp_worker {
        pid_t pid;                      /* 0 = not running */
        struct udp_stats *stats;        /* the shared page */
        uint64_t started;               /* when the running one was forked */
        uint64_t restart_at;            /* 0 = no restart pending */
        uint64_t backoff_usec;          /* the next restart's delay */
        uint64_t restarts;              /* deaths it was restarted after */
        bool replacing;                 /* the master ends it on purpose */
        uint64_t next_check;            /* once a second: lost exit signals, STATUS= */
        uint64_t status_received;       /* stats->received at the last STATUS= */
        uint64_t summary_due;           /* next summary record */
        struct udp_stats summary_last;  /* the counters at the last summary */
};

int udp_init(struct master *m);
void udp_done(struct master *m);

/* Starts the worker when there are UDP listeners and none runs. */
void udp_start(struct master *m, uint64_t now);

/* Called by children_reap() for the worker's exit: accounts for it and
 * schedules the restart. */
void udp_exited(struct master *m, const siginfo_t *si, uint64_t now);

/* Ends the worker at once (it exits between two batches) and reaps it;
 * its sockets stay with the master, queued datagrams included. */
void udp_stop(struct master *m);

/* Whether a worker forked with old would serve differently under new. */
bool udp_config_changed(const struct config *old, const struct config *new);

/* After a reload: a worker with the old settings or listeners is replaced. */
void udp_reloaded(struct master *m, bool changed, uint64_t now);

/* Warnings for settings that leave echod a reflector. */
void udp_warn_config(const struct master *m, const struct config *c);

uint64_t udp_next_deadline(const struct master *m);
void udp_run_timers(struct master *m, uint64_t now);

/* "; udp 5 received, 4 echoed, 1 dropped" for STATUS= and the status record; "" without UDP. */
void udp_format_status(const struct master *m, char *buf, size_t size);
/* A consistent enough copy of the counters (the worker may be writing). */
void udp_stats_read(const struct master *m, struct udp_stats *ret);
/* The summary record now, if anything happened since the last one (force: at exit). */
void udp_summary(struct master *m, uint64_t now, bool force);
