/* SPDX-License-Identifier: MIT */
/*
 * The in-place upgrade on SIGUSR2: the master checks the binary it runs
 * from (its /proc/self/exe name, which a package upgrade has replaced) and
 * the configuration with that binary's --test-config, then execve()s it,
 * keeping its pid, its listeners and its workers (which stay its children
 * across execve). The listeners go as LISTEN_FDS from 3, named as in the
 * fd store (fdstore.h); right after them come a sealed memfd with the
 * table of running workers and the counters (ECHOD_UPGRADE_FD names it),
 * and the two ends of the report socket, which the workers keep sending to.
 *
 * The new image takes that over before it serves: every worker counts under
 * its source and against max_connections, its close record is written at
 * its reap, and the final "served" count includes it. If the execve()
 * fails, the old image runs on; if the new image cannot take over (a memfd
 * it cannot read), it says why and exits non-zero, and systemd's fd store
 * keeps the listeners for the restart that Restart= makes.
 *
 * A worker whose parent exec()ed announces its exit with SIGCHLD, whatever
 * exit signal it was created with (the kernel resets it when the parent
 * changes its image): the new master reaps adopted workers on SIGCHLD and
 * in the once-a-second sweep.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "addr.h"

struct master;

/* One running worker, as the memfd carries it (format version 1). */
struct upgrade_record {
        int32_t pid;
        uint16_t remote_port;
        uint16_t local_port;            /* the listener's */
        struct netaddr remote;          /* the client's full address */
        uint8_t listener_kind;          /* enum listener_kind */
        uint8_t reported;               /* its report came (and its source count went back) */
        uint8_t reason;                 /* from the report: enum close_reason */
        uint8_t has_proxy;              /* room for the address a PROXY header gave */
        uint16_t proxy_port;
        struct netaddr proxy;
        int32_t error;
        uint64_t bytes;
        uint64_t start;                 /* CLOCK_MONOTONIC, the same clock across execve() */
        uint8_t reserved[16];
};

#define UPGRADE_COUNTERS_MAX 32

/* What the previous image handed over. */
struct upgrade_state {
        int report_fd, report_worker_fd;
        uint64_t served, failed, bytes_echoed, start_realtime, reloads_ok, reloads_failed;
        uint64_t closed[UPGRADE_COUNTERS_MAX];
        uint64_t refused[UPGRADE_COUNTERS_MAX];
        size_t n_workers;
        struct upgrade_record *workers;
};

/* The arguments this process was started with, for the execve(). */
void upgrade_set_argv(char **argv);

/* The first descriptor past what a previous image passed after the
 * listeners (first = 3 + their number), so that close_stray_fds() keeps it. */
int upgrade_fds_end(int first);

/* Reads the memfd that ECHOD_UPGRADE_FD names. Returns 0 when there is
 * none (not an upgrade), 1 with *ret filled, or -EBADMSG with the reason
 * in err. */
int upgrade_load(struct upgrade_state *ret, char *err, size_t errsize);
void upgrade_state_done(struct upgrade_state *s);

/* The new image: counts the previous image's workers as its own. */
void upgrade_adopt(struct master *m, const struct upgrade_state *s);

/* The old image, on SIGUSR2. Returns only when no upgrade happened (the
 * reason was logged); the master then serves on unchanged. */
void master_upgrade(struct master *m);

/* SIGUSR2: the upgrade, once no connection waits for its PROXY header
 * (their descriptors would not survive execve()); until then the
 * listeners are not watched. */
void upgrade_request(struct master *m);
/* From the loop's timers while the upgrade waits. */
void upgrade_retry(struct master *m);
