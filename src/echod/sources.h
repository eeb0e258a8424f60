/* SPDX-License-Identifier: MIT */
/*
 * The limits the master applies to a new connection before forking for it:
 * access lists, rate limits (GCRA token buckets) and per-source accounting
 * in a bounded hash table keyed by the source's subnet.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "addr.h"
#include "config.h"
#include "htab.h"

/*
 * Generic cell rate algorithm: one timestamp per bucket. A bucket of rate
 * per second and burst lets burst connections through at once and then one
 * every 1/rate s. rate 0 = unlimited. Returns true and charges the bucket when
 * allowed.
 */
bool gcra_allow(uint64_t *tat, uint64_t now, unsigned rate, unsigned burst);
/* Whether gcra_allow() would allow, without charging the bucket. */
bool gcra_conforms(uint64_t tat, uint64_t now, unsigned rate, unsigned burst);

/* The entry that decides for addr (longest prefix; deny wins a tie), or NULL
 * when none matches. *ret_allowed says whether addr may connect. */
const struct acl_entry *acl_check(const struct config *c, const struct netaddr *addr, bool *ret_allowed);

struct source {
        struct netaddr key;     /* must stay first: it is the hash key */
        unsigned active;
        uint64_t tat;           /* per-source rate bucket */
};

struct source_table {
        struct htab h;
        unsigned max;
        uint64_t last_sweep;
};

int sources_init(struct source_table *t, unsigned max);
void sources_done(struct source_table *t);

/*
 * Finds or creates the entry for key. When the table holds max entries it
 * first drops the entries that carry no state (no active connection, rate
 * bucket refilled); if none can go, returns -ENOSPC and the caller refuses the
 * connection. -ENOMEM on allocation failure.
 */
int sources_acquire(struct source_table *t, const struct netaddr *key, uint64_t now, struct source **ret);

/* Forgets an entry once it carries no state. */
void sources_release(struct source_table *t, struct source *s, uint64_t now);

struct source *sources_get(struct source_table *t, const struct netaddr *key);
