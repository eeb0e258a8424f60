/* SPDX-License-Identifier: MIT */
/* Unit tests for sources.c and htab.c: GCRA token buckets, the bounded
 * per-source table and the hash table under it. */
#include <errno.h>
#include <string.h>

#include "htab.h"
#include "sources.h"
#include "unit.h"
#include "macro.h"

#define SEC(n) ((uint64_t) (n) * USEC_PER_SEC)
#define T0 SEC(1000)            /* a monotonic "now" well past zero */

/* Deterministic pseudo-random numbers (xorshift64*), so failures reproduce. */
static uint64_t rng_state;

static void rng_seed(uint64_t seed) {
        rng_state = seed ? seed : 1;
}

static uint64_t rng(void) {
        rng_state ^= rng_state >> 12;
        rng_state ^= rng_state << 25;
        rng_state ^= rng_state >> 27;
        return rng_state * UINT64_C(0x2545f4914f6cdd1d);
}

/* ---- GCRA ---- */

START_TEST(test_gcra_burst_then_rate)
{
        uint64_t tat = 0;

        /* 10/s with a burst of 5: five at once, then one every 100 ms. */
        for (int i = 0; i < 5; i++)
                ck_assert_msg(gcra_allow(&tat, T0, 10, 5), "burst connection %d refused", i);
        ck_assert(!gcra_allow(&tat, T0, 10, 5));
        ck_assert(!gcra_allow(&tat, T0 + 99999, 10, 5));
        ck_assert(gcra_allow(&tat, T0 + 100000, 10, 5));
        ck_assert(!gcra_allow(&tat, T0 + 100000, 10, 5));
        ck_assert(!gcra_allow(&tat, T0 + 150000, 10, 5));
        ck_assert(gcra_allow(&tat, T0 + 200000, 10, 5));

        /* A steady 10/s goes through indefinitely once the burst is spent. */
        for (uint64_t t = T0 + 300000; t < T0 + SEC(10); t += 100000)
                unit_assert(gcra_allow(&tat, t, 10, 5), "steady rate refused at %llu", (unsigned long long) t);
}
END_TEST

START_TEST(test_gcra_refill)
{
        uint64_t tat = 0, t = T0;
        int n;

        for (n = 0; gcra_allow(&tat, t, 4, 3); n++)
                ;
        ck_assert_int_eq(n, 3);

        /* Half a second at 4/s gives two tokens back. */
        t += 500000;
        for (n = 0; gcra_allow(&tat, t, 4, 3); n++)
                ;
        ck_assert_int_eq(n, 2);

        /* A long pause refills to the burst, never past it. */
        t += SEC(3600);
        for (n = 0; gcra_allow(&tat, t, 4, 3); n++)
                ;
        ck_assert_int_eq(n, 3);
}
END_TEST

START_TEST(test_gcra_refused_costs_nothing)
{
        uint64_t tat = 0, saved;

        ck_assert(gcra_allow(&tat, T0, 1, 1));
        saved = tat;
        for (int i = 0; i < 1000; i++)
                unit_assert(!gcra_allow(&tat, T0 + (uint64_t) i, 1, 1), "allowed at +%d usec", i);
        ck_assert_uint_eq(tat, saved);
        ck_assert(gcra_allow(&tat, T0 + SEC(1), 1, 1));
}
END_TEST

START_TEST(test_gcra_unlimited)
{
        uint64_t tat = 12345;

        for (int i = 0; i < 100000; i++)
                unit_assert(gcra_allow(&tat, T0, 0, 1), "rate 0 refused connection %d", i);
        ck_assert_uint_eq(tat, 12345);
}
END_TEST

START_TEST(test_gcra_extremes)
{
        uint64_t tat = 0;
        int n;

        /* The largest configurable rate and burst. */
        for (n = 0; n < 2000000 && gcra_allow(&tat, T0, 1000000, 1000000); n++)
                ;
        ck_assert_int_eq(n, 1000000);
        ck_assert(gcra_allow(&tat, T0 + 1, 1000000, 1000000));
        ck_assert(!gcra_allow(&tat, T0 + 1, 1000000, 1000000));

        /* One per second, burst one. */
        tat = 0;
        ck_assert(gcra_allow(&tat, T0, 1, 1));
        ck_assert(!gcra_allow(&tat, T0 + SEC(1) - 1, 1, 1));
        ck_assert(gcra_allow(&tat, T0 + SEC(1), 1, 1));
}
END_TEST

/* ---- source table ---- */

static struct netaddr key_v4(unsigned i) {
        struct netaddr k = { .family = AF_INET, .prefixlen = 32,
                             .bytes = { 10, (uint8_t) (i >> 16), (uint8_t) (i >> 8), (uint8_t) i } };
        return k;
}

START_TEST(test_sources_acquire_release)
{
        struct source_table t;
        struct source *s, *s2;
        struct netaddr a = key_v4(1), b = key_v4(2);

        ck_assert_int_eq(sources_init(&t, 8, 32, 128), 0);
        ck_assert_ptr_null(sources_get(&t, &a));
        ck_assert_int_eq(sources_acquire(&t, &a, T0, &s), 0);
        ck_assert_mem_eq(&s->key, &a, sizeof a);
        ck_assert_uint_eq(s->active, 0);
        ck_assert_uint_eq(s->tat, 0);
        s->active++;
        ck_assert_ptr_eq(sources_get(&t, &a), s);

        /* The same key finds the same entry and its count. */
        ck_assert_int_eq(sources_acquire(&t, &a, T0, &s2), 0);
        ck_assert_ptr_eq(s2, s);
        s->active++;
        ck_assert_uint_eq(t.h.len, 1);

        ck_assert_int_eq(sources_acquire(&t, &b, T0, &s2), 0);
        ck_assert_ptr_ne(s2, sources_get(&t, &a));
        ck_assert_uint_eq(t.h.len, 2);
        /* b carries nothing: released at once. */
        sources_release(&t, s2, T0);
        ck_assert_ptr_null(sources_get(&t, &b));
        ck_assert_uint_eq(t.h.len, 1);

        /* a stays while a connection is active, and goes with the last one. */
        s = sources_get(&t, &a);
        s->active--;
        sources_release(&t, s, T0);
        s = sources_get(&t, &a);
        ck_assert_ptr_nonnull(s);
        ck_assert_uint_eq(s->active, 1);
        s->active--;
        sources_release(&t, s, T0);
        ck_assert_ptr_null(sources_get(&t, &a));
        ck_assert_uint_eq(t.h.len, 0);
        sources_done(&t);
}
END_TEST

START_TEST(test_sources_rate_state_kept)
{
        struct source_table t;
        struct source *s;
        struct netaddr a = key_v4(1);

        ck_assert_int_eq(sources_init(&t, 8, 32, 128), 0);
        ck_assert_int_eq(sources_acquire(&t, &a, T0, &s), 0);
        ck_assert(gcra_allow(&s->tat, T0, 1, 2));
        /* No connection, but a bucket not yet refilled: keep it, or a
         * client could reset its rate limit by being forgotten. */
        sources_release(&t, s, T0);
        s = sources_get(&t, &a);
        ck_assert_ptr_nonnull(s);
        ck_assert_uint_eq(s->tat, T0 + SEC(1));
        /* Once refilled, it carries nothing. */
        sources_release(&t, s, T0 + SEC(1));
        ck_assert_ptr_null(sources_get(&t, &a));
        sources_done(&t);
}
END_TEST

START_TEST(test_sources_full)
{
        struct source_table t;
        struct source *s;
        const unsigned max = 5;

        ck_assert_int_eq(sources_init(&t, max, 32, 128), 0);
        for (unsigned i = 0; i < max; i++) {
                struct netaddr k = key_v4(i);
                ck_assert_int_eq(sources_acquire(&t, &k, T0, &s), 0);
                s->active = 1;
        }
        ck_assert_uint_eq(t.h.len, max);

        /* Every entry carries state: a new source is refused... */
        struct netaddr extra = key_v4(100);
        ck_assert_int_eq(sources_acquire(&t, &extra, T0, &s), -ENOSPC);
        ck_assert_ptr_null(sources_get(&t, &extra));
        /* ...but known sources are still found. */
        for (unsigned i = 0; i < max; i++) {
                struct netaddr k = key_v4(i);
                ck_assert_int_eq(sources_acquire(&t, &k, T0, &s), 0);
                ck_assert_uint_eq(s->active, 1);
        }

        /* A released source makes room at once. */
        struct netaddr k2 = key_v4(2);
        s = sources_get(&t, &k2);
        s->active = 0;
        sources_release(&t, s, T0);
        ck_assert_int_eq(sources_acquire(&t, &extra, T0, &s), 0);
        s->active = 1;
        ck_assert_uint_eq(t.h.len, max);
        sources_done(&t);
}
END_TEST

START_TEST(test_sources_full_sweeps_idle)
{
        struct source_table t;
        struct source *s;
        const unsigned max = 6;

        ck_assert_int_eq(sources_init(&t, max, 32, 128), 0);
        /* Sources 0, 2, 4 have a connection; 1, 3, 5 only a rate bucket that
         * refills at T0 + 1 s. */
        for (unsigned i = 0; i < max; i++) {
                struct netaddr k = key_v4(i);
                ck_assert_int_eq(sources_acquire(&t, &k, T0, &s), 0);
                if (i % 2 == 0)
                        s->active = 1;
                else {
                        ck_assert(gcra_allow(&s->tat, T0, 1, 5));
                        sources_release(&t, s, T0);
                }
        }
        ck_assert_uint_eq(t.h.len, max);

        /* Before the buckets refill, nothing can go. */
        struct netaddr n1 = key_v4(100), n2 = key_v4(101), n3 = key_v4(102), n4 = key_v4(103);
        ck_assert_int_eq(sources_acquire(&t, &n1, T0 + 1, &s), -ENOSPC);

        /* After, the sweep forgets exactly the stateless ones. */
        uint64_t later = T0 + SEC(2);
        ck_assert_int_eq(sources_acquire(&t, &n1, later, &s), 0);
        s->active = 1;
        ck_assert_uint_eq(t.h.len, max / 2 + 1);
        for (unsigned i = 0; i < max; i++) {
                struct netaddr k = key_v4(i);
                if (i % 2 == 0)
                        ck_assert_ptr_nonnull(sources_get(&t, &k));
                else
                        ck_assert_ptr_null(sources_get(&t, &k));
        }
        ck_assert_int_eq(sources_acquire(&t, &n2, later, &s), 0);
        s->active = 1;
        ck_assert_int_eq(sources_acquire(&t, &n3, later, &s), 0);
        s->active = 1;
        ck_assert_uint_eq(t.h.len, max);
        ck_assert_int_eq(sources_acquire(&t, &n4, later + SEC(5), &s), -ENOSPC);
        sources_done(&t);
}
END_TEST

/* The sweep walks the table while removing from it; with many entries and
 * wrapped probe runs it must still drop every idle entry and keep the rest. */
START_TEST(test_sources_sweep_random)
{
        for (uint64_t seed = 1; seed <= 40; seed++) {
                const unsigned max = 200;
                struct source_table t;
                bool busy[200];
                struct source *s;
                uint64_t now = T0 + seed * SEC(10);

                rng_seed(seed);
                ck_assert_int_eq(sources_init(&t, max, 32, 128), 0);
                t.h.seed = rng();
                for (unsigned i = 0; i < max; i++) {
                        struct netaddr k = key_v4(i * 7919);
                        unit_assert(sources_acquire(&t, &k, now, &s) == 0, "cannot add source %u", i);
                        busy[i] = rng() % 3 == 0;
                        if (busy[i])
                                s->active = 1 + (unsigned) (rng() % 3);
                        else
                                s->tat = now;   /* bucket state that runs out later */
                }
                struct netaddr extra = key_v4(999999);
                ck_assert_int_eq(sources_acquire(&t, &extra, now + SEC(2), &s), 0);
                s->active = 1;
                for (unsigned i = 0; i < max; i++) {
                        struct netaddr k = key_v4(i * 7919);
                        s = sources_get(&t, &k);
                        unit_assert(busy[i] ? s != NULL : s == NULL,
                                    "seed %llu: source %u (%s) %s after a sweep", (unsigned long long) seed,
                                    i, busy[i] ? "busy" : "idle", s ? "kept" : "dropped");
                        unit_assert(!s || s->active >= 1, "source %u lost its count", i);
                }
                sources_done(&t);
        }
}
END_TEST

/* ---- htab ---- */

struct item {
        uint32_t key;
        uint32_t value;
};

/* The slot key lands in when it is alone in the table: its home. */
static size_t home_of(struct htab *h, uint32_t key) {
        struct item *e;
        size_t slot;

        unit_assert(h->len == 0 && htab_put(h, &key, (void **) &e) == 1, "cannot insert %u", key);
        slot = (size_t) ((unsigned char *) e - h->entries) / h->entry_size;
        htab_remove(h, e);
        return slot;
}

static void check_table(struct htab *h, const bool *present, const uint32_t *values, uint32_t nkeys) {
        size_t count = 0, i = 0;
        struct item *e;

        for (uint32_t k = 0; k < nkeys; k++) {
                e = htab_get(h, &k);
                if (present[k]) {
                        unit_assert(e != NULL, "key %u lost", k);
                        unit_assert(e->key == k && e->value == values[k], "key %u: entry %u = %u, expected %u",
                                    k, e->key, e->value, values[k]);
                        count++;
                } else
                        unit_assert(e == NULL, "key %u found after removal", k);
        }
        ck_assert_uint_eq(h->len, count);
        /* Iteration sees every entry exactly once. */
        size_t seen = 0;
        while ((e = htab_next(h, &i))) {
                unit_assert(e->key < nkeys && present[e->key], "iteration found key %u", e->key);
                seen++;
        }
        ck_assert_uint_eq(seen, count);
}

START_TEST(test_htab_basic)
{
        struct htab h;
        struct item *e, *f;
        uint32_t k = 42;

        ck_assert_int_eq(htab_init(&h, sizeof(uint32_t), sizeof(struct item), 0), 0);
        ck_assert_uint_eq(h.cap, 16);
        ck_assert_ptr_null(htab_get(&h, &k));
        ck_assert_int_eq(htab_put(&h, &k, (void **) &e), 1);
        ck_assert_uint_eq(e->key, 42);
        ck_assert_uint_eq(e->value, 0);       /* zeroed but for the key */
        e->value = 7;
        ck_assert_int_eq(htab_put(&h, &k, (void **) &f), 0);
        ck_assert_ptr_eq(e, f);
        ck_assert_uint_eq(f->value, 7);
        ck_assert_uint_eq(h.len, 1);
        htab_remove(&h, e);
        ck_assert_ptr_null(htab_get(&h, &k));
        ck_assert_uint_eq(h.len, 0);

        /* A reused slot comes back zeroed. */
        ck_assert_int_eq(htab_put(&h, &k, (void **) &e), 1);
        ck_assert_uint_eq(e->value, 0);

        /* Sized for the expected count at half load. */
        htab_done(&h);
        ck_assert_int_eq(htab_init(&h, sizeof(uint32_t), sizeof(struct item), 1000), 0);
        ck_assert_uint_eq(h.cap, 2048);
        htab_done(&h);
        htab_done(&h);          /* twice is harmless */
}
END_TEST

START_TEST(test_htab_grow_and_clear)
{
        enum { N = 5000 };
        static bool present[N];
        static uint32_t values[N];
        struct htab h;
        struct item *e;

        ck_assert_int_eq(htab_init(&h, sizeof(uint32_t), sizeof(struct item), 1), 0);
        for (uint32_t k = 0; k < N; k++) {
                ck_assert_int_eq(htab_put(&h, &k, (void **) &e), 1);
                e->value = values[k] = k * 3 + 1;
                present[k] = true;
                unit_assert(h.len * 2 <= h.cap, "load above one half: %zu of %zu", h.len, h.cap);
        }
        check_table(&h, present, values, N);

        htab_clear(&h);
        memset(present, 0, sizeof present);
        check_table(&h, present, values, N);
        uint32_t k = 17;
        ck_assert_int_eq(htab_put(&h, &k, (void **) &e), 1);
        htab_done(&h);
}
END_TEST

START_TEST(test_htab_wrap_around)
{
        struct htab h;
        uint32_t keys[7];
        unsigned n_last = 0, n_end = 0, n_zero = 0;

        ck_assert_int_eq(htab_init(&h, sizeof(uint32_t), sizeof(struct item), 4), 0);
        ck_assert_uint_eq(h.cap, 16);
        h.seed = 0x1234;

        /* Two keys whose home is the last slot, three whose home is the one
         * before, two whose home is slot 0: inserted in any order they make
         * one run that wraps around the end of the table. */
        for (uint32_t k = 0; k < 100000 && n_last + n_end + n_zero < 7; k++) {
                size_t slot = home_of(&h, k);
                if (slot == h.cap - 1 && n_last < 2)
                        keys[n_last++] = k;
                else if (slot == h.cap - 2 && n_end < 3)
                        keys[2 + n_end++] = k;
                else if (slot == 0 && n_zero < 2)
                        keys[5 + n_zero++] = k;
        }
        ck_assert_uint_eq(n_last + n_end + n_zero, 7);

        for (uint64_t order = 0; order < 300; order++) {
                uint32_t perm[7];
                struct item *e;

                memcpy(perm, keys, sizeof perm);
                rng_seed(order + 1);
                for (size_t i = 6; i > 0; i--) {
                        size_t j = (size_t) (rng() % (i + 1));
                        uint32_t tmp = perm[i];
                        perm[i] = perm[j];
                        perm[j] = tmp;
                }
                /* Insert in one random order, remove in another. */
                for (size_t i = 0; i < 7; i++) {
                        unit_assert(htab_put(&h, &perm[i], (void **) &e) == 1, "put %u did not insert", perm[i]);
                        e->value = perm[i] ^ 0xabcd;
                }
                unit_assert(h.cap == 16, "grew to %zu", h.cap);
                for (size_t i = 6; i > 0; i--) {
                        size_t j = (size_t) (rng() % (i + 1));
                        uint32_t tmp = perm[i];
                        perm[i] = perm[j];
                        perm[j] = tmp;
                }
                for (size_t i = 0; i < 7; i++) {
                        e = htab_get(&h, &perm[i]);
                        unit_assert(e != NULL, "order %llu: key %u lost", (unsigned long long) order, perm[i]);
                        htab_remove(&h, e);
                        unit_assert(!htab_get(&h, &perm[i]), "key %u found after removal", perm[i]);
                        for (size_t j = i + 1; j < 7; j++) {
                                e = htab_get(&h, &perm[j]);
                                unit_assert(e != NULL, "order %llu: key %u lost after removing %zu keys",
                                            (unsigned long long) order, perm[j], i + 1);
                                unit_assert(e->value == (perm[j] ^ 0xabcd), "key %u: wrong value", perm[j]);
                        }
                }
                ck_assert_uint_eq(h.len, 0);
        }
        htab_done(&h);
}
END_TEST

/* Random puts and removes against a plain array, across growth, with a
 * small key space so that runs collide and wrap around the table's end. */
START_TEST(test_htab_random)
{
        enum { NKEYS = 300, OPS = 20000 };
        bool present[NKEYS];
        uint32_t values[NKEYS];

        for (uint64_t seed = 1; seed <= 8; seed++) {
                struct htab h;

                memset(present, 0, sizeof present);
                rng_seed(seed);
                ck_assert_int_eq(htab_init(&h, sizeof(uint32_t), sizeof(struct item), 0), 0);
                h.seed = rng();
                for (int op = 0; op < OPS; op++) {
                        uint32_t k = (uint32_t) (rng() % NKEYS);
                        struct item *e;
                        int r;

                        if (rng() % 100 < 55) {
                                r = htab_put(&h, &k, (void **) &e);
                                unit_assert(r == (present[k] ? 0 : 1), "put %u returned %d", k, r);
                                unit_assert(!present[k] || e->value == values[k], "put %u: value changed", k);
                                e->value = values[k] = (uint32_t) rng();
                                present[k] = true;
                        } else {
                                e = htab_get(&h, &k);
                                unit_assert((e != NULL) == present[k], "get %u: %s", k, e ? "found" : "lost");
                                if (e)
                                        htab_remove(&h, e);
                                present[k] = false;
                        }
                        if (op % 997 == 0)
                                check_table(&h, present, values, NKEYS);
                }
                check_table(&h, present, values, NKEYS);
                /* Drain in key order. */
                for (uint32_t k = 0; k < NKEYS; k++) {
                        struct item *e = htab_get(&h, &k);
                        if (e)
                                htab_remove(&h, e);
                        present[k] = false;
                }
                check_table(&h, present, values, NKEYS);
                htab_done(&h);
        }
}
END_TEST

/* A full-ish table that never grows (fixed capacity, high churn at the
 * limit): every probe run is long, many wrap. */
START_TEST(test_htab_dense_churn)
{
        enum { NKEYS = 64, OPS = 20000 };
        bool present[NKEYS] = {};
        uint32_t values[NKEYS] = {};
        struct htab h;

        ck_assert_int_eq(htab_init(&h, sizeof(uint32_t), sizeof(struct item), 32), 0);
        ck_assert_uint_eq(h.cap, 64);
        rng_seed(99);
        h.seed = rng();
        for (int op = 0; op < OPS; op++) {
                uint32_t k = (uint32_t) (rng() % NKEYS);
                struct item *e;

                if (!present[k] && h.len < 32) {
                        unit_assert(htab_put(&h, &k, (void **) &e) == 1, "put %u did not insert", k);
                        e->value = values[k] = (uint32_t) op;
                        present[k] = true;
                } else if (present[k]) {
                        e = htab_get(&h, &k);
                        unit_assert(e != NULL, "key %u lost", k);
                        htab_remove(&h, e);
                        present[k] = false;
                }
                unit_assert(h.cap == 64, "grew to %zu", h.cap);
                if (op % 101 == 0)
                        check_table(&h, present, values, NKEYS);
        }
        check_table(&h, present, values, NKEYS);
        htab_done(&h);
}
END_TEST

static Suite *sources_suite(void) {
        Suite *s = suite_create("sources");
        TCase *tc;

        tc = tcase_create("gcra");
        tcase_add_test(tc, test_gcra_burst_then_rate);
        tcase_add_test(tc, test_gcra_refill);
        tcase_add_test(tc, test_gcra_refused_costs_nothing);
        tcase_add_test(tc, test_gcra_unlimited);
        tcase_add_test(tc, test_gcra_extremes);
        suite_add_tcase(s, tc);

        tc = tcase_create("sources");
        tcase_add_test(tc, test_sources_acquire_release);
        tcase_add_test(tc, test_sources_rate_state_kept);
        tcase_add_test(tc, test_sources_full);
        tcase_add_test(tc, test_sources_full_sweeps_idle);
        tcase_add_test(tc, test_sources_sweep_random);
        suite_add_tcase(s, tc);

        tc = tcase_create("htab");
        tcase_add_test(tc, test_htab_basic);
        tcase_add_test(tc, test_htab_grow_and_clear);
        tcase_add_test(tc, test_htab_wrap_around);
        tcase_add_test(tc, test_htab_random);
        tcase_add_test(tc, test_htab_dense_churn);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return unit_run(sources_suite());
}
