/* SPDX-License-Identifier: MIT */
/*
 * The metrics file: the master's counters in the Prometheus text exposition
 * format, for node-exporter's textfile collector, rewritten atomically every
 * metrics_interval, at start and at a clean stop. Off when metrics_file is
 * empty.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

struct master;

/* Writes the exposition of m into buf; returns its length, or -ENOBUFS. */
int metrics_format(const struct master *m, char *buf, size_t size);

/* Replaces metrics_file now, when set. A failure is logged (at most once a
 * minute) and the next write tries again: metrics never stop echod. */
void metrics_write(struct master *m, uint64_t now);

/* When metrics_write() is due next; USEC_INFINITY when metrics are off. */
uint64_t metrics_next(const struct master *m);
