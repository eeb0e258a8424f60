/* SPDX-License-Identifier: MIT */
/* Unit tests for udp-filter.c: every drop reason, the IPv4-mapped forms of
 * the bogus sources, loopback only to loopback, the order of the checks,
 * and what an echo charges. */
#include <arpa/inet.h>
#include <string.h>

#include "macro.h"
#include "udp-filter.h"
#include "unit.h"

#define SEC(n) ((uint64_t) (n) * USEC_PER_SEC)
#define T0 SEC(1000)

static struct config cfg;
static struct acl_entry acl[4];
static struct port_range deny_ports[] = { { 0, 1023 }, { 1900, 1900 }, { 11211, 11211 } };
static struct udp_filter_state st;

static void setup(void) {
        memset(&cfg, 0, sizeof cfg);
        cfg.max_sources = 4;
        cfg.source_prefix_v4 = 32;
        cfg.source_prefix_v6 = 64;
        cfg.acl = acl;
        cfg.udp_deny_source_ports = deny_ports;
        cfg.n_udp_deny_source_ports = ARRAY_SIZE(deny_ports);
        cfg.udp_rate_limit_per_source = 100;
        cfg.udp_rate_limit_per_source_burst = 200;
        cfg.udp_rate_limit = 10000;
        cfg.udp_rate_limit_burst = 20000;
        cfg.udp_max_bytes_per_second = 10 * 1024 * 1024;
        ck_assert_int_eq(udp_filter_init(&st, &cfg), 0);
}

static void teardown(void) {
        udp_filter_done(&st);
}

static struct netaddr addr(const char *text) {
        struct sockaddr_any a = {};
        struct netaddr n;

        if (strchr(text, ':')) {
                a.in6.sin6_family = AF_INET6;
                ck_assert_int_eq(inet_pton(AF_INET6, text, &a.in6.sin6_addr), 1);
                a.len = sizeof a.in6;
        } else {
                a.in.sin_family = AF_INET;
                ck_assert_int_eq(inet_pton(AF_INET, text, &a.in.sin_addr), 1);
                a.len = sizeof a.in;
        }
        udp_fold_address(&n, &a);
        return n;
}

static struct udp_datagram dgram(const char *src, uint16_t port, const char *dst) {
        return (struct udp_datagram) {
                .source = addr(src),
                .source_port = port,
                .destination = addr(dst),
                .size = 64,
        };
}

static enum udp_verdict decide(const struct udp_datagram *d) {
        return udp_filter(&cfg, &st, d, T0);
}

START_TEST(test_echo)
{
        struct udp_datagram d = dgram("192.0.2.1", 40000, "198.51.100.1");

        ck_assert_int_eq(decide(&d), UDP_ECHO);
        d = dgram("2001:db8::1", 40000, "2001:db8::7");
        ck_assert_int_eq(decide(&d), UDP_ECHO);
        d = dgram("::ffff:192.0.2.1", 1024, "::ffff:198.51.100.1");
        ck_assert_int_eq(d.source.family, AF_INET);
        ck_assert_int_eq(decide(&d), UDP_ECHO);
}
END_TEST

START_TEST(test_bogus_sources)
{
        static const char *const bogus[] = {
                "0.0.0.0", "0.255.1.2", "224.0.0.1", "239.255.255.255", "240.0.0.1", "255.255.255.255",
                "::", "ff02::1", "ff0e::5", "::ffff:0.0.0.1", "::ffff:240.0.0.1", "::ffff:224.0.0.5",
                "::ffff:255.255.255.255", "127.0.0.1", "127.9.9.9", "::1", "::ffff:127.0.0.1",
        };
        for (size_t i = 0; i < ARRAY_SIZE(bogus); i++) {
                struct udp_datagram d = dgram(bogus[i], 40000, "192.0.2.7");
                ck_assert_msg(decide(&d) == UDP_DROP_SOURCE_ADDRESS, "%s not dropped", bogus[i]);
                d = dgram(bogus[i], 40000, "2001:db8::7");
                ck_assert_msg(decide(&d) == UDP_DROP_SOURCE_ADDRESS, "%s not dropped (v6 dst)", bogus[i]);
        }
        cfg.udp_rate_limit_per_source = 0;      /* more sources than the table holds */
        static const char *const fine[] = { "1.0.0.1", "223.255.255.254", "128.0.0.1", "2001:db8::", "fe80::1", "::2" };
        for (size_t i = 0; i < ARRAY_SIZE(fine); i++) {
                struct udp_datagram d = dgram(fine[i], 40000, "192.0.2.7");
                ck_assert_msg(decide(&d) == UDP_ECHO, "%s dropped", fine[i]);
        }
}
END_TEST

START_TEST(test_loopback_to_loopback)
{
        struct udp_datagram d = dgram("127.0.0.1", 40000, "127.0.0.1");

        ck_assert_int_eq(decide(&d), UDP_ECHO);
        d = dgram("127.0.0.5", 40000, "127.0.0.1");
        ck_assert_int_eq(decide(&d), UDP_ECHO);
        d = dgram("::1", 40000, "::1");
        ck_assert_int_eq(decide(&d), UDP_ECHO);
        d = dgram("::ffff:127.0.0.1", 40000, "::ffff:127.0.0.1");
        ck_assert_int_eq(decide(&d), UDP_ECHO);
        /* A loopback source to a non-loopback address was forged. */
        d = dgram("127.0.0.1", 40000, "10.0.0.1");
        ck_assert_int_eq(decide(&d), UDP_DROP_SOURCE_ADDRESS);
}
END_TEST

START_TEST(test_destinations)
{
        static const char *const groups[] = { "224.0.0.1", "239.1.2.3", "255.255.255.255", "ff02::1", "::ffff:224.0.0.9" };
        for (size_t i = 0; i < ARRAY_SIZE(groups); i++) {
                struct udp_datagram d = dgram("192.0.2.1", 40000, groups[i]);
                ck_assert_msg(decide(&d) == UDP_DROP_DESTINATION, "to %s not dropped", groups[i]);
        }
        /* A subnet broadcast looks like unicast: the kernel's word decides. */
        struct udp_datagram d = dgram("192.0.2.1", 40000, "192.0.2.255");
        ck_assert_int_eq(decide(&d), UDP_ECHO);
        d.destination_broadcast = true;
        ck_assert_int_eq(decide(&d), UDP_DROP_DESTINATION);
}
END_TEST

START_TEST(test_source_ports)
{
        static const uint16_t denied[] = { 0, 7, 19, 53, 123, 1023, 1900, 11211 };
        static const uint16_t fine[] = { 1024, 1899, 1901, 11210, 11212, 65535 };

        for (size_t i = 0; i < ARRAY_SIZE(denied); i++) {
                struct udp_datagram d = dgram("192.0.2.1", denied[i], "192.0.2.7");
                ck_assert_msg(decide(&d) == UDP_DROP_SOURCE_PORT, "port %u not dropped", denied[i]);
        }
        for (size_t i = 0; i < ARRAY_SIZE(fine); i++) {
                struct udp_datagram d = dgram("192.0.2.1", fine[i], "192.0.2.7");
                ck_assert_msg(decide(&d) == UDP_ECHO, "port %u dropped", fine[i]);
        }
        cfg.n_udp_deny_source_ports = 0;
        struct udp_datagram d = dgram("192.0.2.1", 7, "192.0.2.7");
        ck_assert_int_eq(decide(&d), UDP_ECHO);
}
END_TEST

START_TEST(test_truncated_first)
{
        /* Every other reason applies too: truncation is checked first. */
        struct udp_datagram d = dgram("0.0.0.0", 7, "255.255.255.255");

        d.truncated = true;
        ck_assert_int_eq(decide(&d), UDP_DROP_TRUNCATED);
        d.truncated = false;
        ck_assert_int_eq(decide(&d), UDP_DROP_DESTINATION);
}
END_TEST

START_TEST(test_access)
{
        ck_assert_int_eq(netaddr_parse_cidr("192.0.2.0/24", &acl[0].net), 0);
        acl[0].allow = false;
        cfg.n_acl = 1;
        struct udp_datagram d = dgram("192.0.2.1", 40000, "198.51.100.1");
        ck_assert_int_eq(decide(&d), UDP_DROP_ACCESS);
        d = dgram("192.0.3.1", 40000, "198.51.100.1");
        ck_assert_int_eq(decide(&d), UDP_ECHO);
}
END_TEST

START_TEST(test_rate_per_source)
{
        struct udp_datagram a = dgram("192.0.2.1", 40000, "198.51.100.1");
        struct udp_datagram b = dgram("192.0.2.2", 40000, "198.51.100.1");

        for (unsigned i = 0; i < 200; i++)
                ck_assert_int_eq(udp_filter(&cfg, &st, &a, T0), UDP_ECHO);
        ck_assert_int_eq(udp_filter(&cfg, &st, &a, T0), UDP_DROP_RATE_PER_SOURCE);
        /* Another source is still served, and the first is again after 1/rate. */
        ck_assert_int_eq(udp_filter(&cfg, &st, &b, T0), UDP_ECHO);
        ck_assert_int_eq(udp_filter(&cfg, &st, &a, T0 + SEC(1) / 100), UDP_ECHO);
        ck_assert_int_eq(udp_filter(&cfg, &st, &a, T0 + SEC(1) / 100), UDP_DROP_RATE_PER_SOURCE);
}
END_TEST

START_TEST(test_rate_global_charges_nothing_else)
{
        struct udp_datagram d = dgram("192.0.2.1", 40000, "198.51.100.1");

        cfg.udp_rate_limit = 10;
        cfg.udp_rate_limit_burst = 3;
        cfg.udp_rate_limit_per_source_burst = 5;
        for (unsigned i = 0; i < 3; i++)
                ck_assert_int_eq(udp_filter(&cfg, &st, &d, T0), UDP_ECHO);
        for (unsigned i = 0; i < 10; i++)
                ck_assert_int_eq(udp_filter(&cfg, &st, &d, T0), UDP_DROP_RATE);
        /* Those drops cost the source's bucket nothing: 2 of its 5 are left. */
        cfg.udp_rate_limit = 0;
        ck_assert_int_eq(udp_filter(&cfg, &st, &d, T0), UDP_ECHO);
        ck_assert_int_eq(udp_filter(&cfg, &st, &d, T0), UDP_ECHO);
        ck_assert_int_eq(udp_filter(&cfg, &st, &d, T0), UDP_DROP_RATE_PER_SOURCE);
}
END_TEST

START_TEST(test_bytes)
{
        struct udp_datagram d = dgram("192.0.2.1", 40000, "198.51.100.1");

        cfg.udp_rate_limit_per_source = 0;
        cfg.udp_max_bytes_per_second = 10000;
        d.size = 1000;
        for (unsigned i = 0; i < 10; i++)
                ck_assert_int_eq(udp_filter(&cfg, &st, &d, T0), UDP_ECHO);
        ck_assert_int_eq(udp_filter(&cfg, &st, &d, T0), UDP_DROP_BYTES);
        d.size = 0;
        ck_assert_int_eq(udp_filter(&cfg, &st, &d, T0), UDP_ECHO);
        d.size = 1000;
        ck_assert_int_eq(udp_filter(&cfg, &st, &d, T0 + SEC(1) / 10), UDP_ECHO);
        ck_assert_int_eq(udp_filter(&cfg, &st, &d, T0 + SEC(1) / 10), UDP_DROP_BYTES);
        /* No per-source entries were made with the per-source limit off. */
        ck_assert_uint_eq(st.sources.h.len, 0);
}
END_TEST

START_TEST(test_sources_full)
{
        char host[32];

        /* Four sources each with a charged bucket fill the table of 4. */
        for (unsigned i = 0; i < 4; i++) {
                snprintf(host, sizeof host, "192.0.2.%u", i + 1);
                struct udp_datagram d = dgram(host, 40000, "198.51.100.1");
                ck_assert_int_eq(decide(&d), UDP_ECHO);
        }
        struct udp_datagram d = dgram("192.0.2.99", 40000, "198.51.100.1");
        ck_assert_int_eq(decide(&d), UDP_DROP_SOURCES);
        /* Once their buckets have refilled, they can go. */
        ck_assert_int_eq(udp_filter(&cfg, &st, &d, T0 + SEC(5)), UDP_ECHO);
}
END_TEST

START_TEST(test_names)
{
        for (int v = 0; v < _UDP_VERDICT_MAX; v++) {
                ck_assert_str_ne(udp_verdict_to_string(v), "unknown");
                ck_assert_str_ne(udp_verdict_to_field(v), "UDP_UNKNOWN");
        }
}
END_TEST

static Suite *udp_filter_suite(void) {
        Suite *s = suite_create("udp-filter");
        TCase *tc = tcase_create("verdicts");

        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, test_echo);
        tcase_add_test(tc, test_bogus_sources);
        tcase_add_test(tc, test_loopback_to_loopback);
        tcase_add_test(tc, test_destinations);
        tcase_add_test(tc, test_source_ports);
        tcase_add_test(tc, test_truncated_first);
        tcase_add_test(tc, test_access);
        tcase_add_test(tc, test_rate_per_source);
        tcase_add_test(tc, test_rate_global_charges_nothing_else);
        tcase_add_test(tc, test_bytes);
        tcase_add_test(tc, test_sources_full);
        tcase_add_test(tc, test_names);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return unit_run(udp_filter_suite());
}
