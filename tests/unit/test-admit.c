/* SPDX-License-Identifier: MIT */
/* Unit tests for admit.c: the access lists, the order of the admission
 * checks, and what an admission charges and counts. */
#include <errno.h>
#include <string.h>

#include "admit.h"
#include "macro.h"
#include "unit.h"

#define SEC(n) ((uint64_t) (n) * USEC_PER_SEC)
#define T0 SEC(1000)            /* a monotonic "now" well past zero */

static struct netaddr net(const char *cidr) {
        struct netaddr n;

        ck_assert_msg(netaddr_parse_cidr(cidr, &n) == 0, "bad test network '%s'", cidr);
        return n;
}

/* ---- access lists ---- */

struct acl_fixture {
        struct config cfg;
        struct acl_entry acl[16];
};

static void acl_setup(struct acl_fixture *f, const char *const *allow, const char *const *deny) {
        memset(f, 0, sizeof *f);
        f->cfg.acl = f->acl;
        for (; allow && *allow; allow++) {
                f->acl[f->cfg.n_acl] = (struct acl_entry) { .net = net(*allow), .allow = true,
                                                            .line = (unsigned) f->cfg.n_acl + 1 };
                f->cfg.n_acl++;
                f->cfg.n_allow++;
        }
        for (; deny && *deny; deny++) {
                f->acl[f->cfg.n_acl] = (struct acl_entry) { .net = net(*deny), .allow = false,
                                                            .line = (unsigned) f->cfg.n_acl + 1 };
                f->cfg.n_acl++;
        }
        ck_assert_uint_le(f->cfg.n_acl, ARRAY_SIZE(f->acl));
}

/* Checks addr's verdict and the rule that decided (NULL: none). */
static void expect_acl(const struct acl_fixture *f, const char *addr, bool allowed, const char *rule) {
        struct netaddr a = net(addr);
        bool ok = !allowed;
        const struct acl_entry *e = acl_check(&f->cfg, &a, &ok);
        char buf[64] = "(none)";

        if (e)
                netaddr_format(&e->net, buf, sizeof buf);
        ck_assert_msg(ok == allowed, "%s: %s, expected %s (rule %s)", addr, ok ? "allowed" : "refused",
                      allowed ? "allowed" : "refused", buf);
        if (!rule)
                ck_assert_msg(!e, "%s: decided by %s, expected no rule", addr, buf);
        else
                ck_assert_msg(e && strcmp(buf, rule) == 0, "%s: decided by %s, expected %s", addr, buf, rule);
}

START_TEST(test_acl_empty)
{
        struct acl_fixture f;

        acl_setup(&f, NULL, NULL);
        expect_acl(&f, "192.0.2.1", true, NULL);
        expect_acl(&f, "2001:db8::1", true, NULL);
}
END_TEST

START_TEST(test_acl_allow_only)
{
        static const char *const allow[] = { "10.0.0.0/8", "2001:db8::/32", NULL };
        struct acl_fixture f;

        acl_setup(&f, allow, NULL);
        expect_acl(&f, "10.1.2.3", true, "10.0.0.0/8");
        expect_acl(&f, "11.0.0.1", false, NULL);
        expect_acl(&f, "2001:db8:1::1", true, "2001:db8::/32");
        expect_acl(&f, "2001:db9::1", false, NULL);
}
END_TEST

START_TEST(test_acl_deny_only)
{
        static const char *const deny[] = { "192.0.2.0/24", "2001:db8:bad::/48", NULL };
        struct acl_fixture f;

        acl_setup(&f, NULL, deny);
        expect_acl(&f, "192.0.2.77", false, "192.0.2.0/24");
        expect_acl(&f, "192.0.3.77", true, NULL);
        expect_acl(&f, "2001:db8:bad:1::1", false, "2001:db8:bad::/48");
        expect_acl(&f, "2001:db8:bae::1", true, NULL);
}
END_TEST

START_TEST(test_acl_longest_prefix)
{
        static const char *const allow[] = { "10.0.0.0/8", "10.1.2.0/24", "2001:db8::/32",
                                             "2001:db8:1:2::/64", NULL };
        static const char *const deny[] = { "10.1.0.0/16", "10.1.2.3", "0.0.0.0/0",
                                            "2001:db8:1::/48", NULL };
        struct acl_fixture f;

        acl_setup(&f, allow, deny);
        expect_acl(&f, "10.9.9.9", true, "10.0.0.0/8");           /* /8 allow beats /0 deny */
        expect_acl(&f, "10.1.9.9", false, "10.1.0.0/16");         /* /16 deny beats /8 allow */
        expect_acl(&f, "10.1.2.4", true, "10.1.2.0/24");          /* /24 allow beats /16 deny */
        expect_acl(&f, "10.1.2.3", false, "10.1.2.3/32");         /* /32 deny beats /24 allow */
        expect_acl(&f, "192.0.2.1", false, "0.0.0.0/0");
        expect_acl(&f, "2001:db8:9::1", true, "2001:db8::/32");
        expect_acl(&f, "2001:db8:1:3::1", false, "2001:db8:1::/48");
        expect_acl(&f, "2001:db8:1:2::1", true, "2001:db8:1:2::/64");
        expect_acl(&f, "2001:db9::1", false, NULL);               /* no v6 rule: allow list exists */
}
END_TEST

START_TEST(test_acl_deny_wins_tie)
{
        static const char *const allow[] = { "192.0.2.0/24", "2001:db8::/32", "198.51.100.7", NULL };
        static const char *const deny[] = { "192.0.2.0/24", "2001:db8::/32", "198.51.100.7", NULL };
        struct acl_fixture f;

        acl_setup(&f, allow, deny);
        expect_acl(&f, "192.0.2.1", false, "192.0.2.0/24");
        expect_acl(&f, "2001:db8::1", false, "2001:db8::/32");
        expect_acl(&f, "198.51.100.7", false, "198.51.100.7/32");

        /* Whatever the order of the entries. */
        static const char *const deny_first[] = { "192.0.2.0/24", NULL };
        acl_setup(&f, NULL, deny_first);
        f.acl[1] = (struct acl_entry) { .net = net("192.0.2.0/24"), .allow = true };
        f.cfg.n_acl = 2;
        f.cfg.n_allow = 1;
        expect_acl(&f, "192.0.2.1", false, "192.0.2.0/24");
}
END_TEST

START_TEST(test_acl_families_apart)
{
        static const char *const deny[] = { "0.0.0.0/0", NULL };
        static const char *const allow6[] = { "::/0", NULL };
        struct acl_fixture f;

        acl_setup(&f, NULL, deny);
        expect_acl(&f, "203.0.113.1", false, "0.0.0.0/0");
        expect_acl(&f, "2001:db8::1", true, NULL);

        acl_setup(&f, allow6, NULL);
        expect_acl(&f, "2001:db8::1", true, "::/0");
        expect_acl(&f, "203.0.113.1", false, NULL);
}
END_TEST

/* ---- the decision ---- */

/* A configuration with every limit off, a sources table, and a global bucket. */
struct admit_fixture {
        struct acl_fixture acl;
        struct source_table sources;
        uint64_t rate_tat;
        unsigned active;
};

static void admit_setup(struct admit_fixture *f, unsigned max_sources) {
        acl_setup(&f->acl, NULL, NULL);
        f->acl.cfg.path = (char *) "test.conf";
        f->acl.cfg.max_sources = max_sources;
        f->acl.cfg.source_prefix_v4 = 32;
        f->acl.cfg.source_prefix_v6 = 64;
        ck_assert_int_eq(sources_init(&f->sources, max_sources, 32, 64), 0);
        f->rate_tat = 0;
        f->active = 0;
}

static bool try_admit(struct admit_fixture *f, const char *addr, uint64_t now, struct verdict *v) {
        const struct admit_tables t = { .active = f->active, .sources = &f->sources, .rate_tat = &f->rate_tat };
        struct netaddr a = net(addr);
        bool ok = admit(&f->acl.cfg, &t, &a, now, v);

        ck_assert(ok == v->accepted);
        if (ok)
                f->active++;
        return ok;
}

static void expect_refused(struct admit_fixture *f, const char *addr, uint64_t now, enum refusal why) {
        struct verdict v;

        ck_assert_msg(!try_admit(f, addr, now, &v), "%s admitted, expected %s", addr, refusal_to_string(why));
        ck_assert_msg(v.reason == why, "%s refused as %s, expected %s", addr,
                      refusal_to_string(v.reason), refusal_to_string(why));
}

static void expect_admitted(struct admit_fixture *f, const char *addr, uint64_t now) {
        struct verdict v;

        ck_assert_msg(try_admit(f, addr, now, &v), "%s refused (%s)", addr, refusal_to_string(v.reason));
}

START_TEST(test_admit_counts_under_key)
{
        struct admit_fixture f;
        struct verdict v;
        struct source *s;

        admit_setup(&f, 16);
        f.acl.cfg.source_prefix_v6 = 48;
        sources_configure(&f.sources, 16, 24, 48);
        ck_assert(try_admit(&f, "192.0.2.7", T0, &v));
        ck_assert_int_eq(memcmp(&v.key, &(struct netaddr) { .family = AF_INET, .prefixlen = 24, .bytes = { 192, 0, 2 } },
                                sizeof v.key), 0);
        ck_assert(try_admit(&f, "192.0.2.200", T0, &v));
        s = sources_get(&f.sources, &v.key);
        ck_assert_ptr_nonnull(s);
        ck_assert_uint_eq(s->active, 2);
        ck_assert(try_admit(&f, "2001:db8:1:2::1", T0, &v));
        ck_assert_uint_eq(v.key.prefixlen, 48);
        ck_assert_uint_eq(f.sources.h.len, 2);
        sources_done(&f.sources);
}
END_TEST

START_TEST(test_admit_order)
{
        struct admit_fixture f;
        static const char *const deny[] = { "192.0.2.66", NULL };

        /* The access list comes before the global cap. */
        admit_setup(&f, 2);
        acl_setup(&f.acl, NULL, deny);
        f.acl.cfg.max_connections = 1;
        f.acl.cfg.max_connections_per_source = 1;
        f.acl.cfg.rate_limit = 1;
        f.acl.cfg.rate_limit_burst = 1;
        f.acl.cfg.rate_limit_per_source = 1;
        f.acl.cfg.rate_limit_per_source_burst = 1;
        f.acl.cfg.max_sources = 2;
        expect_admitted(&f, "192.0.2.1", T0);
        expect_refused(&f, "192.0.2.66", T0, REFUSED_ACCESS);
        /* Then the global cap, before the per-source cap of a full source. */
        expect_refused(&f, "192.0.2.1", T0, REFUSED_LIMIT);
        expect_refused(&f, "192.0.2.2", T0, REFUSED_LIMIT);
        f.acl.cfg.max_connections = 0;
        /* Then the per-source cap, before the rate buckets (both empty now). */
        expect_refused(&f, "192.0.2.1", T0, REFUSED_PER_SOURCE);
        /* A new source with room in the table: the global rate before the per-source one. */
        expect_refused(&f, "192.0.2.2", T0, REFUSED_RATE);
        /* With the global bucket refilled, the new source's own bucket is full:
         * admitted; then its per-source bucket is empty. */
        expect_admitted(&f, "192.0.2.2", T0 + SEC(1));
        f.acl.cfg.max_connections_per_source = 0;
        f.acl.cfg.rate_limit = 0;
        expect_refused(&f, "192.0.2.2", T0 + SEC(1), REFUSED_PER_SOURCE_RATE);
        /* The table (2 entries, both with a connection) is full: a third
         * source is refused before any rate is looked at. */
        f.acl.cfg.rate_limit = 1;
        expect_refused(&f, "192.0.2.3", T0 + SEC(1), REFUSED_SOURCES);
        sources_done(&f.sources);
}
END_TEST

START_TEST(test_admit_buckets_checked_before_charged)
{
        struct admit_fixture f;
        struct netaddr key = net("192.0.2.1");
        uint64_t global, own;

        admit_setup(&f, 8);
        f.acl.cfg.rate_limit = 10;
        f.acl.cfg.rate_limit_burst = 1;
        f.acl.cfg.rate_limit_per_source = 1;
        f.acl.cfg.rate_limit_per_source_burst = 1;
        expect_admitted(&f, "192.0.2.1", T0);

        /* 100 ms later the global bucket has room, the source's has not:
         * refused, and the global bucket is not charged. */
        global = f.rate_tat;
        expect_refused(&f, "192.0.2.1", T0 + SEC(1) / 10, REFUSED_PER_SOURCE_RATE);
        ck_assert_uint_eq(f.rate_tat, global);
        expect_admitted(&f, "192.0.2.9", T0 + SEC(1) / 10);

        /* Now the global bucket is empty (another source just took it), the
         * first source's full again: refused, and the source's bucket is not charged. */
        expect_admitted(&f, "192.0.2.10", T0 + SEC(1) + 1);
        own = sources_get(&f.sources, &key)->tat;
        expect_refused(&f, "192.0.2.1", T0 + SEC(1) + 1, REFUSED_RATE);
        ck_assert_uint_eq(sources_get(&f.sources, &key)->tat, own);
        ck_assert_uint_eq(sources_get(&f.sources, &key)->active, 1);
        sources_done(&f.sources);
}
END_TEST

START_TEST(test_admit_refusal_counts_nothing)
{
        struct admit_fixture f;

        admit_setup(&f, 8);
        f.acl.cfg.rate_limit = 1;
        f.acl.cfg.rate_limit_burst = 1;
        expect_admitted(&f, "192.0.2.1", T0);
        /* A new source refused by the rate leaves no entry behind. */
        expect_refused(&f, "198.51.100.1", T0, REFUSED_RATE);
        ck_assert_ptr_null(sources_get(&f.sources, &(struct netaddr) { .family = AF_INET, .prefixlen = 32,
                                                                        .bytes = { 198, 51, 100, 1 } }));
        ck_assert_uint_eq(f.sources.h.len, 1);
        sources_done(&f.sources);
}
END_TEST

/* A reload changes the prefixes while connections run: each release uses
 * the key its connection was counted under, and every count returns to 0. */
START_TEST(test_admit_prefix_change)
{
        struct admit_fixture f;
        struct verdict old1, old2, new1;

        admit_setup(&f, 8);
        ck_assert(try_admit(&f, "192.0.2.1", T0, &old1));
        ck_assert(try_admit(&f, "192.0.2.2", T0, &old2));
        sources_configure(&f.sources, 8, 24, 64);
        ck_assert(try_admit(&f, "192.0.2.3", T0, &new1));
        ck_assert_uint_eq(new1.key.prefixlen, 24);
        ck_assert_uint_eq(f.sources.h.len, 3);
        ck_assert_uint_eq(sources_get(&f.sources, &old1.key)->active, 1);

        sources_put(&f.sources, &old1.key, T0);
        sources_put(&f.sources, &new1.key, T0);
        /* A second release of the same key never goes below zero or touches another entry. */
        sources_put(&f.sources, &old1.key, T0);
        ck_assert_uint_eq(sources_get(&f.sources, &old2.key)->active, 1);
        sources_put(&f.sources, &old2.key, T0);
        ck_assert_uint_eq(f.sources.h.len, 0);
        sources_done(&f.sources);
}
END_TEST

/* The same, with the running connections moved to the new prefixes at once. */
START_TEST(test_admit_prefix_rekey)
{
        struct admit_fixture f;
        struct verdict a, b;
        struct netaddr ra = net("192.0.2.1"), rb = net("192.0.2.2");

        admit_setup(&f, 8);
        f.acl.cfg.max_connections_per_source = 2;
        ck_assert(try_admit(&f, "192.0.2.1", T0, &a));
        ck_assert(try_admit(&f, "192.0.2.2", T0, &b));
        sources_configure(&f.sources, 8, 24, 64);
        ck_assert_int_eq(sources_rekey(&f.sources, &a.key, &ra, T0), 0);
        ck_assert_int_eq(sources_rekey(&f.sources, &b.key, &rb, T0), 0);
        ck_assert_int_eq(memcmp(&a.key, &b.key, sizeof a.key), 0);
        ck_assert_uint_eq(f.sources.h.len, 1);
        ck_assert_uint_eq(sources_get(&f.sources, &a.key)->active, 2);
        /* The /24 holds two: a third from it is refused. */
        expect_refused(&f, "192.0.2.3", T0, REFUSED_PER_SOURCE);
        /* Rekeying again under the same prefixes changes nothing. */
        ck_assert_int_eq(sources_rekey(&f.sources, &a.key, &ra, T0), 0);
        ck_assert_uint_eq(sources_get(&f.sources, &a.key)->active, 2);
        sources_put(&f.sources, &a.key, T0);
        sources_put(&f.sources, &b.key, T0);
        ck_assert_uint_eq(f.sources.h.len, 0);
        sources_done(&f.sources);
}
END_TEST

START_TEST(test_verdict_format)
{
        struct admit_fixture f;
        static const char *const deny[] = { "192.0.2.0/24", NULL };
        struct verdict v;
        char buf[192];

        admit_setup(&f, 8);
        acl_setup(&f.acl, NULL, deny);
        f.acl.cfg.path = (char *) "test.conf";
        ck_assert(!try_admit(&f, "192.0.2.1", T0, &v));
        verdict_format(&v, &f.acl.cfg, buf, sizeof buf);
        ck_assert_str_eq(buf, "denied by 'deny 192.0.2.0/24' (test.conf:1)");

        acl_setup(&f.acl, NULL, NULL);
        f.acl.cfg.max_connections_per_source = 1;
        ck_assert(try_admit(&f, "10.0.0.1", T0, &v));
        ck_assert(!try_admit(&f, "10.0.0.1", T0, &v));
        verdict_format(&v, &f.acl.cfg, buf, sizeof buf);
        ck_assert_str_eq(buf, "max_connections_per_source (1) reached for 10.0.0.1/32");
        ck_assert_str_eq(refusal_to_string(v.reason), "refused-per-source");
        ck_assert_str_eq(refusal_to_field(REFUSED_SOURCES), "REFUSED_SOURCES_FULL");
        sources_done(&f.sources);
}
END_TEST

/* ---- a proxy listener's balancer, before its header ---- */

static bool try_balancer(struct admit_fixture *f, const char *addr, uint64_t now, struct verdict *v) {
        const struct admit_tables t = { .active = f->active, .sources = &f->sources, .rate_tat = &f->rate_tat };
        struct netaddr a = net(addr);
        bool ok = admit_balancer(&f->acl.cfg, &t, &a, now, v);

        ck_assert(ok == v->accepted);
        if (ok)
                f->active++;
        return ok;
}

START_TEST(test_admit_balancer)
{
        static const char *const deny[] = { "10.0.0.0/8", NULL };
        struct netaddr trusted[] = { net("10.0.0.10"), net("2001:db8::/64") };
        struct admit_fixture f;
        struct verdict v;
        struct source *s;

        admit_setup(&f, 8);
        acl_setup(&f.acl, NULL, deny);
        f.acl.cfg.path = (char *) "test.conf";
        f.acl.cfg.proxy_trusted = trusted;
        f.acl.cfg.n_proxy_trusted = ARRAY_SIZE(trusted);
        f.acl.cfg.max_connections = 4;
        f.acl.cfg.max_connections_per_source = 2;
        f.acl.cfg.rate_limit_per_source = 1;
        f.acl.cfg.rate_limit_per_source_burst = 1;

        /* Untrusted: refused first, whatever else holds. */
        ck_assert(!try_balancer(&f, "10.0.0.11", T0, &v));
        ck_assert_int_eq(v.reason, REFUSED_PROXY_UNTRUSTED);
        ck_assert_uint_eq(f.sources.h.len, 0);
        /* Trusted: neither the deny nor the per-source rate applies to the
         * balancer, but its own per-source count does. */
        ck_assert(try_balancer(&f, "10.0.0.10", T0, &v));
        ck_assert(try_balancer(&f, "10.0.0.10", T0, &v));
        s = sources_get(&f.sources, &v.key);
        ck_assert_ptr_nonnull(s);
        ck_assert_uint_eq(s->active, 2);
        ck_assert_uint_eq(s->tat, 0);           /* no rate charged */
        ck_assert(!try_balancer(&f, "10.0.0.10", T0, &v));
        ck_assert_int_eq(v.reason, REFUSED_PER_SOURCE);
        /* Another balancer, and then the global cap. */
        ck_assert(try_balancer(&f, "2001:db8::1", T0, &v));
        ck_assert(try_balancer(&f, "2001:db8::2", T0, &v));
        ck_assert(!try_balancer(&f, "2001:db8::3", T0, &v));
        ck_assert_int_eq(v.reason, REFUSED_LIMIT);
        /* Released with the stored key, the count is gone. */
        sources_put(&f.sources, &v.key, T0);
        sources_put(&f.sources, &v.key, T0);
        ck_assert_ptr_null(sources_get(&f.sources, &v.key));
        sources_done(&f.sources);
}
END_TEST

START_TEST(test_verdict_format_proxy)
{
        struct config c = { .path = (char *) "/etc/echod.conf" };
        struct verdict v = { .reason = REFUSED_PROXY_HEADER, .what = "v1: no CRLF within 107 bytes" };
        char buf[192];

        verdict_format(&v, &c, buf, sizeof buf);
        ck_assert_str_eq(buf, "invalid PROXY header: v1: no CRLF within 107 bytes");
        v = (struct verdict) { .reason = REFUSED_PROXY_UNTRUSTED };
        verdict_format(&v, &c, buf, sizeof buf);
        ck_assert_str_eq(buf, "a proxy listener's connection not from proxy_trusted (/etc/echod.conf)");
        v = (struct verdict) { .reason = REFUSED_PROXY_TIMEOUT };
        verdict_format(&v, &c, buf, sizeof buf);
        ck_assert_str_eq(buf, "no whole PROXY header within proxy_timeout");
        ck_assert_str_eq(refusal_to_string(REFUSED_PROXY_TIMEOUT), "refused-proxy-timeout");
        ck_assert_str_eq(refusal_to_field(REFUSED_PROXY_HEADER), "REFUSED_PROXY_HEADER");
}
END_TEST

static Suite *admit_suite(void) {
        Suite *s = suite_create("admit");
        TCase *tc;

        tc = tcase_create("acl");
        tcase_add_test(tc, test_acl_empty);
        tcase_add_test(tc, test_acl_allow_only);
        tcase_add_test(tc, test_acl_deny_only);
        tcase_add_test(tc, test_acl_longest_prefix);
        tcase_add_test(tc, test_acl_deny_wins_tie);
        tcase_add_test(tc, test_acl_families_apart);
        suite_add_tcase(s, tc);

        tc = tcase_create("decision");
        tcase_add_test(tc, test_admit_counts_under_key);
        tcase_add_test(tc, test_admit_order);
        tcase_add_test(tc, test_admit_buckets_checked_before_charged);
        tcase_add_test(tc, test_admit_refusal_counts_nothing);
        tcase_add_test(tc, test_admit_prefix_change);
        tcase_add_test(tc, test_admit_prefix_rekey);
        tcase_add_test(tc, test_verdict_format);
        tcase_add_test(tc, test_admit_balancer);
        tcase_add_test(tc, test_verdict_format_proxy);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return unit_run(admit_suite());
}
