/* SPDX-License-Identifier: MIT */
/*
 * What the master tells: STATUS= to the service manager (at most once a
 * second), the SIGUSR1 status record, the rate-limited records of refused
 * connections and resource problems, with their counters, and the budget
 * of connection records with its summary.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "addr.h"
#include "admit.h"
#include "listen.h"
#include "master.h"

/* STATUS= at most once a second; the loop's timer sends what is pending. */
static inline void status_changed(struct master *m) {
        m->status_dirty = true;
}
void status_send(struct master *m, uint64_t now);
/* The SIGUSR1 record. */
void status_log(struct master *m);

/* Counts a refusal and logs it (at most once a second per reason; the rest
 * are counted and summed up when the second is over). */
void status_refused(struct master *m, const struct sockaddr_any *peer, const struct listener *l,
                    const struct verdict *v, uint64_t now);
/* The same for a client a balancer's PROXY header named (balancer NULL = none). */
void status_refused_via(struct master *m, const struct sockaddr_any *peer, const struct sockaddr_any *balancer,
                        const struct listener *l, const struct verdict *v, uint64_t now);
/*
 * Writes a connection's record within the record budget (log_rate,
 * log_rate_burst). One over budget, or that the journal did not take, is
 * counted by reason instead (an open record only costs a token), and
 * status_flush_summary() says how many at least every 10 s.
 */
void status_conn_record(struct master *m, const struct conn_record *r, enum close_reason reason, uint64_t now);
/* The summary of connections without a record, when due or with force. */
void status_flush_summary(struct master *m, uint64_t now, bool force);

/* Logs the refusal summaries whose second is over, and the connections' summary. */
void status_flush_refusals(struct master *m, uint64_t now);
/* When the next summary is due, or USEC_INFINITY. */
uint64_t status_next_flush(const struct master *m);

/* err while doing what: at most once a second, with how many were not logged. */
void status_resource_problem(struct master *m, uint64_t now, int err, const char *what);

/* Warns at start-up of process and descriptor limits too low for c. */
void status_warn_limits(const struct config *c);
