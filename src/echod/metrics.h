/* SPDX-License-Identifier: MIT */
/*
 * The metrics file: the master's counters in the Prometheus text exposition
 * format, for node-exporter's textfile collector, rewritten atomically every
 * metrics_interval, at start and at a clean stop. Off when metrics_file is
 * empty.
 */
#pragma once

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

struct master;

/* A failing write is logged at most this often (metrics_rl). */
#define METRICS_ERROR_INTERVAL_USEC (60 * USEC_PER_SEC)

/* Counts a reaped worker's end under its close reason, or as failed when its
 * exit is not one of ours (the caller logs that). */
void metrics_count_exit(struct master *m, const siginfo_t *si);

/* Writes the exposition of m into buf; returns its length, or -ENOBUFS. */
int metrics_format(const struct master *m, char *buf, size_t size);

/* Replaces metrics_file now, when set. A failure is logged (at most once
 * per METRICS_ERROR_INTERVAL_USEC) and the next write tries again: metrics never stop echod. */
void metrics_write(struct master *m, uint64_t now);

/* When metrics_write() is due next; USEC_INFINITY when metrics are off. */
uint64_t metrics_next(const struct master *m);
