/* SPDX-License-Identifier: MIT */
/* Token buckets and the bounded per-source table. */
#include <errno.h>
#include <string.h>

#include "sources.h"
#include "macro.h"

static uint64_t gcra_next(uint64_t tat, uint64_t now, unsigned rate) {
        return (tat > now ? tat : now) + USEC_PER_SEC / rate;
}

bool gcra_conforms(uint64_t tat, uint64_t now, unsigned rate, unsigned burst) {
        if (rate == 0)
                return true;
        return gcra_next(tat, now, rate) - now <= (uint64_t) burst * (USEC_PER_SEC / rate);
}

bool gcra_allow(uint64_t *tat, uint64_t now, unsigned rate, unsigned burst) {
        if (!gcra_conforms(*tat, now, rate, burst))
                return false;
        if (rate > 0)
                *tat = gcra_next(*tat, now, rate);
        return true;
}

int sources_init(struct source_table *t, unsigned max, unsigned prefix4, unsigned prefix6) {
        memset(t, 0, sizeof *t);
        sources_configure(t, max, prefix4, prefix6);
        /* Start small; the table grows up to max entries as sources appear. */
        return htab_init(&t->h, sizeof(struct netaddr), sizeof(struct source), max < 64 ? max : 64);
}

void sources_done(struct source_table *t) {
        htab_done(&t->h);
}

void sources_configure(struct source_table *t, unsigned max, unsigned prefix4, unsigned prefix6) {
        t->max = max;
        t->prefix4 = prefix4;
        t->prefix6 = prefix6;
}

struct netaddr sources_key(const struct source_table *t, const struct netaddr *remote) {
        struct netaddr key = *remote;

        netaddr_mask(&key, t->prefix4, t->prefix6);
        return key;
}

static bool source_is_idle(const struct source *s, uint64_t now) {
        return s->active == 0 && s->tat <= now;
}

/* Drops stateless entries; O(table), so at most once per second of full table. */
static void sources_sweep(struct source_table *t, uint64_t now) {
        size_t i = 0;
        struct source *s;

        if (t->last_sweep != 0 && now - t->last_sweep < USEC_PER_SEC)
                return;
        t->last_sweep = now;
        /* Removal shifts later entries back: revisit the same slot. */
        while ((s = htab_next(&t->h, &i))) {
                if (source_is_idle(s, now)) {
                        htab_remove(&t->h, s);
                        i--;
                }
        }
}

struct source *sources_get(struct source_table *t, const struct netaddr *key) {
        return htab_get(&t->h, key);
}

int sources_acquire(struct source_table *t, const struct netaddr *key, uint64_t now, struct source **ret) {
        struct source *s = htab_get(&t->h, key);
        void *e;
        int r;

        if (s) {
                *ret = s;
                return 0;
        }
        if (t->h.len >= t->max) {
                sources_sweep(t, now);
                if (t->h.len >= t->max)
                        return -ENOSPC;
        }
        r = htab_put(&t->h, key, &e);
        if (r < 0)
                return r;
        *ret = e;
        return 0;
}

void sources_release(struct source_table *t, struct source *s, uint64_t now) {
        if (source_is_idle(s, now))
                htab_remove(&t->h, s);
}

void sources_put(struct source_table *t, const struct netaddr *key, uint64_t now) {
        struct source *s = htab_get(&t->h, key);

        if (!s)
                return;
        if (s->active > 0)
                s->active--;
        sources_release(t, s, now);
}

int sources_rekey(struct source_table *t, struct netaddr *key, const struct netaddr *remote, uint64_t now) {
        struct netaddr new_key = sources_key(t, remote);
        struct source *s;
        int r;

        if (memcmp(&new_key, key, sizeof new_key) == 0)
                return 0;
        /* Beyond max, as every running connection is counted; the insertion
         * may move entries, so the old one is looked up only after it. */
        r = htab_put(&t->h, &new_key, (void **) &s);
        if (r < 0)
                return r;
        s->active++;
        sources_put(t, key, now);
        *key = new_key;
        return 0;
}
