/* SPDX-License-Identifier: MIT */
/*
 * The bounded per-source table: how many connections each source (a client
 * address masked to source_prefix_v4 / source_prefix_v6) has running, and its
 * rate bucket. The table owns the prefixes and computes every key; whoever
 * counts a connection keeps the key it was counted under and releases with
 * it, so that a reload that changes the prefixes never leaks a count.
 * Also the token buckets (GCRA) the admission uses.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "addr.h"
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

struct source {
        struct netaddr key;     /* must stay first: it is the hash key */
        unsigned active;
        uint64_t tat;           /* per-source rate bucket */
};

struct source_table {
        struct htab h;
        unsigned max;
        unsigned prefix4, prefix6;
        uint64_t last_sweep;
};

int sources_init(struct source_table *t, unsigned max, unsigned prefix4, unsigned prefix6);
void sources_done(struct source_table *t);

/* New connections are keyed and bounded by these from now on. Entries
 * counted under other prefixes stay until their connections end or are
 * moved (sources_rekey()): the prefix length is part of the key, so they
 * never mix with the new ones. */
void sources_configure(struct source_table *t, unsigned max, unsigned prefix4, unsigned prefix6);

/* The key of a client address (prefixlen = its full length) under the table's prefixes. */
struct netaddr sources_key(const struct source_table *t, const struct netaddr *remote);

struct source *sources_get(struct source_table *t, const struct netaddr *key);

/*
 * Finds or creates the entry for key. When the table holds max entries it
 * first drops the entries that carry no state (no active connection, rate
 * bucket refilled); if none can go, returns -ENOSPC and the caller refuses the
 * connection. -ENOMEM on allocation failure.
 */
int sources_acquire(struct source_table *t, const struct netaddr *key, uint64_t now, struct source **ret);

/* Forgets an entry once it carries no state. */
void sources_release(struct source_table *t, struct source *s, uint64_t now);

/* Moves a running connection from remote, counted under *key, to its key
 * under the table's current prefixes, and updates *key. On failure (-ENOMEM)
 * it stays counted under the old key. */
int sources_rekey(struct source_table *t, struct netaddr *key, const struct netaddr *remote, uint64_t now);

/* A connection counted under key has ended. Unknown keys are ignored. */
void sources_put(struct source_table *t, const struct netaddr *key, uint64_t now);
