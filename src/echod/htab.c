/* SPDX-License-Identifier: MIT */
/* Open-addressing hash table; see htab.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/random.h>

#include "htab.h"

static uint64_t hash_bytes(const void *key, size_t len, uint64_t seed) {
        const unsigned char *p = key;
        uint64_t h = seed ^ (len * UINT64_C(0x9e3779b97f4a7c15));

        for (size_t i = 0; i < len; i++) {
                h ^= p[i];
                h *= UINT64_C(0x100000001b3);
                h ^= h >> 29;
        }
        /* murmur3 finalizer: spread the bits into the low ones we index by */
        h ^= h >> 33;
        h *= UINT64_C(0xff51afd7ed558ccd);
        h ^= h >> 33;
        h *= UINT64_C(0xc4ceb9fe1a85ec53);
        h ^= h >> 33;
        return h;
}

static void *slot(const struct htab *h, size_t i) {
        return h->entries + i * h->entry_size;
}

static size_t home(const struct htab *h, const void *key) {
        return (size_t) hash_bytes(key, h->key_size, h->seed) & (h->cap - 1);
}

/*
 * The slots live in their own mapping, marked MADV_DONTFORK: the tables
 * belong to the master alone, and a worker forked from it then neither
 * inherits them (fork copies no page tables for them) nor makes the master
 * copy their pages on its next write.
 */
static size_t mapping_size(size_t cap, size_t entry_size) {
        size_t page = (size_t) sysconf(_SC_PAGESIZE);
        return (cap + cap * entry_size + page - 1) / page * page;
}

static int alloc_slots(struct htab *h, size_t cap) {
        size_t size = mapping_size(cap, h->entry_size);
        void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

        if (p == MAP_FAILED)
                return -ENOMEM;
        (void) madvise(p, size, MADV_DONTFORK);
        h->entries = p;
        h->used = h->entries + cap * h->entry_size;
        h->cap = cap;
        return 0;
}

static void free_slots(unsigned char *entries, size_t cap, size_t entry_size) {
        if (entries)
                (void) munmap(entries, mapping_size(cap, entry_size));
}

int htab_init(struct htab *h, size_t key_size, size_t entry_size, size_t expected) {
        size_t cap = 16;

        memset(h, 0, sizeof *h);
        h->key_size = key_size;
        h->entry_size = entry_size;
        while (cap < expected * 2)
                cap <<= 1;
        /* A secret seed, so that peers cannot aim for one chain. */
        if (getrandom(&h->seed, sizeof h->seed, GRND_NONBLOCK) != sizeof h->seed)
                h->seed = (uint64_t) (uintptr_t) h ^ UINT64_C(0x243f6a8885a308d3);
        return alloc_slots(h, cap);
}

void htab_done(struct htab *h) {
        free_slots(h->entries, h->cap, h->entry_size);
        h->used = h->entries = NULL;
        h->cap = h->len = 0;
}

void htab_clear(struct htab *h) {
        memset(h->used, 0, h->cap);
        h->len = 0;
}

void *htab_get(const struct htab *h, const void *key) {
        for (size_t i = home(h, key);; i = (i + 1) & (h->cap - 1)) {
                if (!h->used[i])
                        return NULL;
                if (memcmp(slot(h, i), key, h->key_size) == 0)
                        return slot(h, i);
        }
}

static int grow(struct htab *h) {
        struct htab old = *h;

        if (alloc_slots(h, old.cap * 2) < 0) {
                *h = old;
                return -ENOMEM;
        }
        h->len = 0;
        for (size_t i = 0; i < old.cap; i++) {
                if (!old.used[i])
                        continue;
                size_t j = home(h, slot(&old, i));
                while (h->used[j])
                        j = (j + 1) & (h->cap - 1);
                h->used[j] = 1;
                memcpy(slot(h, j), slot(&old, i), h->entry_size);
                h->len++;
        }
        free_slots(old.entries, old.cap, old.entry_size);
        return 0;
}

int htab_put(struct htab *h, const void *key, void **ret_entry) {
        void *e = htab_get(h, key);
        size_t i;

        if (e) {
                *ret_entry = e;
                return 0;
        }
        /* Keep the load at most one half: probes stay short. */
        if ((h->len + 1) * 2 > h->cap && grow(h) < 0)
                return -ENOMEM;
        for (i = home(h, key); h->used[i]; i = (i + 1) & (h->cap - 1))
                ;
        h->used[i] = 1;
        e = slot(h, i);
        memset(e, 0, h->entry_size);
        memcpy(e, key, h->key_size);
        h->len++;
        *ret_entry = e;
        return 1;
}

void htab_remove(struct htab *h, void *entry) {
        size_t i = (size_t) ((unsigned char *) entry - h->entries) / h->entry_size;
        size_t mask = h->cap - 1;

        h->used[i] = 0;
        h->len--;
        /* Backward-shift: move later members of the run into the hole, so that
         * lookups never need tombstones. */
        for (size_t j = (i + 1) & mask; h->used[j]; j = (j + 1) & mask) {
                size_t k = home(h, slot(h, j));
                /* Move j to i unless k lies cyclically in (i, j]. */
                if (i <= j ? (i < k && k <= j) : (i < k || k <= j))
                        continue;
                memcpy(slot(h, i), slot(h, j), h->entry_size);
                h->used[i] = 1;
                h->used[j] = 0;
                i = j;
        }
}

void *htab_next(const struct htab *h, size_t *i) {
        for (; *i < h->cap; (*i)++)
                if (h->used[*i])
                        return slot(h, (*i)++);
        return NULL;
}
