/* SPDX-License-Identifier: MIT */
/*
 * A small open-addressing hash table (linear probing, backward-shift
 * deletion) of fixed-size entries whose key is their first key_size bytes.
 * The master keeps its per-pid and per-source tables in it, so that its
 * per-event work does not grow with the number of workers.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

struct htab {
        size_t key_size;
        size_t entry_size;
        size_t cap;             /* slots, a power of two */
        size_t len;
        uint64_t seed;
        unsigned char *used;
        unsigned char *entries;
};

int htab_init(struct htab *h, size_t key_size, size_t entry_size, size_t expected);
void htab_done(struct htab *h);

void *htab_get(const struct htab *h, const void *key);
/* Finds or inserts key; a new entry is zeroed but for its key. Returns 1 when
 * inserted, 0 when found, -ENOMEM. */
int htab_put(struct htab *h, const void *key, void **ret_entry);
/* entry must come from htab_get/htab_put/htab_next; pointers to other
 * entries may move. */
void htab_remove(struct htab *h, void *entry);
void htab_clear(struct htab *h);

/* Iteration: for (size_t i = 0; (e = htab_next(h, &i)); ) ...; do not insert
 * or remove meanwhile. */
void *htab_next(const struct htab *h, size_t *i);
