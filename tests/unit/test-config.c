/* SPDX-License-Identifier: MIT */
/* Unit tests for config.c: defaults, every rejection with its true line,
 * comments, the shipped conf/echod.conf, and the --dump-config round trip. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "unit.h"
#include "fd-util.h"

#define SEC(n) ((uint64_t) (n) * USEC_PER_SEC)

/* Loads text as "t.conf". */
static int load(const char *text, struct config **ret, struct strv *errors) {
        *ret = NULL;
        return config_load_text("t.conf", text, strlen(text), ret, errors);
}

static struct config *load_ok(const char *text) {
        struct strv errors = {};
        struct config *c;
        int r = load(text, &c, &errors);

        ck_assert_msg(r == 0, "rejected (%d, first error: %s):\n%s", r,
                      errors.n > 0 ? errors.items[0] : "none", text);
        ck_assert_uint_eq(errors.n, 0);
        ck_assert_ptr_nonnull(c);
        strv_clear(&errors);
        return c;
}

/* Asserts that text is rejected with exactly one error starting with prefix. */
static void expect_error(const char *text, const char *prefix) {
        struct strv errors = {};
        struct config *c;
        int r = load(text, &c, &errors);

        ck_assert_msg(r == -EINVAL, "accepted or wrong code %d:\n%s", r, text);
        ck_assert_ptr_null(c);
        ck_assert_msg(errors.n == 1, "%zu errors instead of 1 (first: %s):\n%s", errors.n,
                      errors.n > 0 ? errors.items[0] : "none", text);
        ck_assert_msg(strncmp(errors.items[0], prefix, strlen(prefix)) == 0,
                      "error \"%s\" does not start with \"%s\"; input:\n%s", errors.items[0], prefix, text);
        strv_clear(&errors);
}

static bool acl_equal(const struct config *a, const struct config *b) {
        if (a->n_acl != b->n_acl || a->n_allow != b->n_allow)
                return false;
        for (size_t i = 0; i < a->n_acl; i++)
                if (a->acl[i].allow != b->acl[i].allow ||
                    memcmp(&a->acl[i].net, &b->acl[i].net, sizeof a->acl[i].net) != 0)
                        return false;
        return true;
}

static bool str_equal(const char *a, const char *b) {
        return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* Every setting, ignoring path and the line numbers of access rules. */
static void assert_config_equal(const struct config *a, const struct config *b) {
        ck_assert_uint_eq(a->n_listen, b->n_listen);
        for (size_t i = 0; i < a->n_listen; i++) {
                ck_assert_str_eq(a->listen[i].text, b->listen[i].text);
                ck_assert(sockaddr_equal(&a->listen[i].addr, &b->listen[i].addr));
        }
        ck_assert_uint_eq(a->backlog, b->backlog);
        ck_assert_int_eq(a->reuse_port, b->reuse_port);
        ck_assert_uint_eq(a->max_connections, b->max_connections);
        ck_assert_uint_eq(a->max_connections_per_source, b->max_connections_per_source);
        ck_assert_uint_eq(a->source_prefix_v4, b->source_prefix_v4);
        ck_assert_uint_eq(a->source_prefix_v6, b->source_prefix_v6);
        ck_assert_uint_eq(a->max_sources, b->max_sources);
        ck_assert_uint_eq(a->rate_limit, b->rate_limit);
        ck_assert_uint_eq(a->rate_limit_burst, b->rate_limit_burst);
        ck_assert_uint_eq(a->rate_limit_per_source, b->rate_limit_per_source);
        ck_assert_uint_eq(a->rate_limit_per_source_burst, b->rate_limit_per_source_burst);
        ck_assert_uint_eq(a->idle_timeout_usec, b->idle_timeout_usec);
        ck_assert_uint_eq(a->session_timeout_usec, b->session_timeout_usec);
        ck_assert_uint_eq(a->shutdown_timeout_usec, b->shutdown_timeout_usec);
        ck_assert_uint_eq(a->max_bytes, b->max_bytes);
        ck_assert(acl_equal(a, b));
        ck_assert(str_equal(a->user, b->user));
        ck_assert(str_equal(a->group, b->group));
        ck_assert_int_eq(a->log_level, b->log_level);
        ck_assert_int_eq(a->log_connections, b->log_connections);
        ck_assert_int_eq(a->log_payload, b->log_payload);
        ck_assert(str_equal(a->metrics_file, b->metrics_file));
        ck_assert_uint_eq(a->metrics_interval_usec, b->metrics_interval_usec);
        ck_assert_uint_eq(a->n_listen_udp, b->n_listen_udp);
        for (size_t i = 0; i < a->n_listen_udp; i++)
                ck_assert(sockaddr_equal(&a->listen_udp[i].addr, &b->listen_udp[i].addr));
        ck_assert_uint_eq(a->n_udp_deny_source_ports, b->n_udp_deny_source_ports);
        for (size_t i = 0; i < a->n_udp_deny_source_ports; i++) {
                ck_assert_uint_eq(a->udp_deny_source_ports[i].first, b->udp_deny_source_ports[i].first);
                ck_assert_uint_eq(a->udp_deny_source_ports[i].last, b->udp_deny_source_ports[i].last);
        }
        ck_assert_uint_eq(a->udp_rate_limit_per_source, b->udp_rate_limit_per_source);
        ck_assert_uint_eq(a->udp_rate_limit_per_source_burst, b->udp_rate_limit_per_source_burst);
        ck_assert_uint_eq(a->udp_rate_limit, b->udp_rate_limit);
        ck_assert_uint_eq(a->udp_rate_limit_burst, b->udp_rate_limit_burst);
        ck_assert_uint_eq(a->udp_max_bytes_per_second, b->udp_max_bytes_per_second);
        ck_assert_uint_eq(a->n_proxy_listen, b->n_proxy_listen);
        for (size_t i = 0; i < a->n_proxy_listen; i++)
                ck_assert(sockaddr_equal(&a->proxy_listen[i].addr, &b->proxy_listen[i].addr));
        ck_assert_uint_eq(a->n_proxy_trusted, b->n_proxy_trusted);
        for (size_t i = 0; i < a->n_proxy_trusted; i++)
                ck_assert_int_eq(memcmp(&a->proxy_trusted[i], &b->proxy_trusted[i], sizeof a->proxy_trusted[i]), 0);
        ck_assert_uint_eq(a->proxy_timeout_usec, b->proxy_timeout_usec);
}

/* The defaults documented in conf/echod.conf and the issues. */
static void assert_defaults(const struct config *c) {
        struct sockaddr_any any6;

        ck_assert_uint_eq(c->n_listen, 1);
        ck_assert_str_eq(c->listen[0].text, "[::]:7");
        ck_assert_int_eq(sockaddr_parse("[::]:7", &any6), 0);
        ck_assert(sockaddr_equal(&c->listen[0].addr, &any6));
        ck_assert_uint_eq(c->backlog, 128);
        ck_assert_uint_eq(c->max_connections, 512);
        ck_assert_uint_eq(c->max_connections_per_source, 32);
        ck_assert_uint_eq(c->source_prefix_v4, 32);
        ck_assert_uint_eq(c->source_prefix_v6, 64);
        ck_assert_uint_eq(c->max_sources, 1024);
        ck_assert_uint_eq(c->rate_limit, 0);
        ck_assert_uint_eq(c->rate_limit_burst, 100);
        ck_assert_uint_eq(c->rate_limit_per_source, 20);
        ck_assert_uint_eq(c->rate_limit_per_source_burst, 40);
        ck_assert_uint_eq(c->idle_timeout_usec, SEC(300));
        ck_assert_uint_eq(c->session_timeout_usec, SEC(3600));
        ck_assert_uint_eq(c->shutdown_timeout_usec, SEC(10));
        ck_assert_uint_eq(c->max_bytes, 0);
        ck_assert_uint_eq(c->n_acl, 0);
        ck_assert_uint_eq(c->n_allow, 0);
        ck_assert_ptr_null(c->user);
        ck_assert_ptr_null(c->group);
        ck_assert_int_eq(c->log_level, LOG_INFO);
        ck_assert_int_eq(c->log_connections, LOG_CONNECTIONS_CLOSE);
        ck_assert_uint_eq(c->log_rate, 200);
        ck_assert_uint_eq(c->log_rate_burst, 2000);
        ck_assert(!c->log_payload);
        ck_assert_ptr_null(c->metrics_file);
        ck_assert_uint_eq(c->metrics_interval_usec, SEC(15));
}

/* ---- defaults and accepted values ---- */

START_TEST(test_defaults)
{
        struct config *c = load_ok("");

        ck_assert_str_eq(c->path, "t.conf");
        assert_defaults(c);
        config_free(c);

        c = load_ok("\n\n  \n\t\n");
        assert_defaults(c);
        config_free(c);
}
END_TEST

START_TEST(test_only_comments)
{
        struct config *c = load_ok(
                "# echod\n"
                "#listen = { \"[::]:7\" }\n"
                "// backlog = 1\n"
                "/* max_connections = 1\n"
                "   max_bytes = 1 */\n"
                "/**/ /* */ # x\n"
                "   # indented\n");

        assert_defaults(c);
        config_free(c);
}
END_TEST

START_TEST(test_all_keys)
{
        struct config *c = load_ok(
                "listen = { \"127.0.0.1:7007\", \"[::1]:7007\", \"0.0.0.0:8\", \"[::]:8\" }\n"
                "backlog = 1\n"
                "max_connections = 0\n"
                "max_connections_per_source = 0\n"
                "source_prefix_v4 = 24\n"
                "source_prefix_v6 = 48\n"
                "max_sources = 1\n"
                "rate_limit = 1000000\n"
                "rate_limit_burst = 1\n"
                "rate_limit_per_source = 5\n"
                "rate_limit_per_source_burst = 1000000\n"
                "idle_timeout = 0\n"
                "session_timeout = 1h30m\n"
                "shutdown_timeout = 365d\n"
                "max_bytes = 64M\n"
                "allow = { \"10.0.0.0/8\", \"2001:db8::/32\", \"192.0.2.1\" }\n"
                "deny = { \"10.1.0.0/16\" }\n"
                "user = \"root\"\n"
                "group = \"root\"\n"
                "log_level = \"debug\"\n"
                "log_connections = false\n"
                "log_payload = yes\n");
        struct netaddr n;

        ck_assert_uint_eq(c->n_listen, 4);
        ck_assert_str_eq(c->listen[0].text, "127.0.0.1:7007");
        ck_assert_int_eq(c->listen[0].addr.sa.sa_family, AF_INET);
        ck_assert_uint_eq(sockaddr_port(&c->listen[0].addr), 7007);
        ck_assert_str_eq(c->listen[1].text, "[::1]:7007");
        ck_assert_int_eq(c->listen[1].addr.sa.sa_family, AF_INET6);
        ck_assert_str_eq(c->listen[3].text, "[::]:8");
        ck_assert_uint_eq(c->backlog, 1);
        ck_assert_uint_eq(c->max_connections, 0);
        ck_assert_uint_eq(c->max_connections_per_source, 0);
        ck_assert_uint_eq(c->source_prefix_v4, 24);
        ck_assert_uint_eq(c->source_prefix_v6, 48);
        ck_assert_uint_eq(c->max_sources, 1);
        ck_assert_uint_eq(c->rate_limit, 1000000);
        ck_assert_uint_eq(c->rate_limit_burst, 1);
        ck_assert_uint_eq(c->rate_limit_per_source, 5);
        ck_assert_uint_eq(c->rate_limit_per_source_burst, 1000000);
        ck_assert_uint_eq(c->idle_timeout_usec, 0);
        ck_assert_uint_eq(c->session_timeout_usec, SEC(5400));
        ck_assert_uint_eq(c->shutdown_timeout_usec, SEC(365 * 86400));
        ck_assert_uint_eq(c->max_bytes, UINT64_C(64) << 20);
        ck_assert_uint_eq(c->n_acl, 4);
        ck_assert_uint_eq(c->n_allow, 3);
        ck_assert(c->acl[0].allow && c->acl[1].allow && c->acl[2].allow && !c->acl[3].allow);
        ck_assert_int_eq(netaddr_parse_cidr("2001:db8::/32", &n), 0);
        ck_assert_mem_eq(&c->acl[1].net, &n, sizeof n);
        ck_assert_uint_eq(c->acl[2].net.prefixlen, 32);
        ck_assert_uint_eq(c->acl[0].line, 16);
        ck_assert_uint_eq(c->acl[3].line, 17);
        ck_assert_str_eq(c->user, "root");
        ck_assert_str_eq(c->group, "root");
        ck_assert_int_eq(c->log_level, LOG_DEBUG);
        ck_assert(!c->log_connections);
        ck_assert(c->log_payload);
        config_free(c);
}
END_TEST

START_TEST(test_accepted_forms)
{
        struct config *c;

        /* Booleans in every spelling. */
        static const struct { const char *v; bool b; } bools[] = {
                { "true", true }, { "yes", true }, { "on", true },
                { "false", false }, { "no", false }, { "off", false },
                { "\"true\"", true }, { "\"off\"", false },
        };
        for (size_t i = 0; i < ARRAY_SIZE(bools); i++) {
                char text[64];
                snprintf(text, sizeof text, "log_connections = %s\n", bools[i].v);
                c = load_ok(text);
                ck_assert_int_eq(c->log_connections, bools[i].b);
                config_free(c);
        }

        /* The record modes; true and false are old spellings of close and off. */
        static const struct { const char *v; enum log_connections mode; } modes[] = {
                { "close", LOG_CONNECTIONS_CLOSE }, { "all", LOG_CONNECTIONS_ALL },
                { "errors", LOG_CONNECTIONS_ERRORS }, { "off", LOG_CONNECTIONS_OFF },
                { "\"all\"", LOG_CONNECTIONS_ALL }, { "true", LOG_CONNECTIONS_CLOSE },
                { "false", LOG_CONNECTIONS_OFF },
        };
        for (size_t i = 0; i < ARRAY_SIZE(modes); i++) {
                char text[64];
                snprintf(text, sizeof text, "log_connections = %s\n", modes[i].v);
                c = load_ok(text);
                ck_assert_int_eq(c->log_connections, modes[i].mode);
                config_free(c);
        }
        c = load_ok("log_rate = 0\nlog_rate_burst = 5\n");
        ck_assert_uint_eq(c->log_rate, 0);
        ck_assert_uint_eq(c->log_rate_burst, 5);
        config_free(c);

        /* Every level an operator may choose. */
        static const struct { const char *name; int level; } levels[] = {
                { "err", LOG_ERR }, { "warning", LOG_WARNING }, { "notice", LOG_NOTICE },
                { "info", LOG_INFO }, { "debug", LOG_DEBUG },
        };
        for (size_t i = 0; i < ARRAY_SIZE(levels); i++) {
                char text[64];
                snprintf(text, sizeof text, "log_level = \"%s\"\n", levels[i].name);
                c = load_ok(text);
                ck_assert_int_eq(c->log_level, levels[i].level);
                config_free(c);
        }

        /* Quoted numbers, single quotes, durations with suffixes, sizes. */
        c = load_ok("backlog = \"64\"\nidle_timeout = '30s'\nsession_timeout = 2h\nmax_bytes = 1G\n");
        ck_assert_uint_eq(c->backlog, 64);
        ck_assert_uint_eq(c->idle_timeout_usec, SEC(30));
        ck_assert_uint_eq(c->session_timeout_usec, SEC(7200));
        ck_assert_uint_eq(c->max_bytes, UINT64_C(1) << 30);
        config_free(c);

        /* A single listen string counts as a one-element list. */
        c = load_ok("listen = \"127.0.0.1:7\"\n");
        ck_assert_uint_eq(c->n_listen, 1);
        ck_assert_str_eq(c->listen[0].text, "127.0.0.1:7");
        config_free(c);

        /* A key given twice: the last one wins. */
        c = load_ok("backlog = 5\nbacklog = 6\n");
        ck_assert_uint_eq(c->backlog, 6);
        config_free(c);

        /* user = "" is the documented default: not set. */
        c = load_ok("user = \"\"\ngroup = \"\"\n");
        ck_assert_ptr_null(c->user);
        ck_assert_ptr_null(c->group);
        config_free(c);

        /* A mapped IPv4 network is stored as IPv4. */
        c = load_ok("deny = { \"::ffff:10.0.0.0/104\" }\n");
        ck_assert_uint_eq(c->n_acl, 1);
        ck_assert_int_eq(c->acl[0].net.family, AF_INET);
        ck_assert_uint_eq(c->acl[0].net.prefixlen, 8);
        config_free(c);

        /* Windows line ends. */
        c = load_ok("backlog = 7\r\nmax_bytes = 1K\r\n");
        ck_assert_uint_eq(c->backlog, 7);
        ck_assert_uint_eq(c->max_bytes, 1024);
        config_free(c);

        /* Non-ASCII text is fine inside strings and comments. */
        c = load_ok("# caf\xc3\xa9\n/* \xe2\x82\xac */ // \xff\nbacklog = 9\n");
        ck_assert_uint_eq(c->backlog, 9);
        config_free(c);
}
END_TEST

/* ---- rejections: one error, on the true line, naming the key ---- */

START_TEST(test_reject_values)
{
        static const struct { const char *text, *prefix; } bad[] = {
                /* numbers */
                { "backlog = -1\n", "t.conf:1: backlog: invalid value '-1'" },
                { "backlog = 0\n", "t.conf:1: backlog: invalid value '0'" },
                { "backlog = 65536\n", "t.conf:1: backlog: invalid value '65536'" },
                { "backlog = 1.5\n", "t.conf:1: backlog: invalid value" },
                { "backlog = 0x10\n", "t.conf:1: backlog: invalid value" },
                { "backlog = \" 5\"\n", "t.conf:1: backlog: invalid value" },
                { "backlog = ten\n", "t.conf:1: backlog: invalid value 'ten'" },
                { "backlog = 99999999999999999999999\n", "t.conf:1: backlog: invalid value" },
                { "max_connections = -1\n", "t.conf:1: max_connections: invalid value '-1'" },
                { "max_connections = 1000001\n", "t.conf:1: max_connections: invalid value" },
                { "max_connections_per_source = -5\n", "t.conf:1: max_connections_per_source: invalid value" },
                { "source_prefix_v4 = 33\n", "t.conf:1: source_prefix_v4: invalid value '33'" },
                { "source_prefix_v6 = 129\n", "t.conf:1: source_prefix_v6: invalid value '129'" },
                { "source_prefix_v6 = -64\n", "t.conf:1: source_prefix_v6: invalid value" },
                { "max_sources = 0\n", "t.conf:1: max_sources: invalid value '0'" },
                { "rate_limit = -1\n", "t.conf:1: rate_limit: invalid value" },
                { "rate_limit_burst = 0\n", "t.conf:1: rate_limit_burst: invalid value '0'" },
                { "rate_limit_per_source = 1x\n", "t.conf:1: rate_limit_per_source: invalid value" },
                { "rate_limit_per_source_burst = 0\n", "t.conf:1: rate_limit_per_source_burst: invalid value" },
                /* empty values, such as an unset ${VARIABLE} */
                { "backlog = \"\"\n", "t.conf:1: backlog: empty value" },
                { "backlog = ${ECHOD_TEST_UNSET_VARIABLE}\n", "t.conf:1: backlog: empty value" },
                { "max_connections = ''\n", "t.conf:1: max_connections: empty value" },
                { "idle_timeout = \"\"\n", "t.conf:1: idle_timeout: empty value" },
                { "max_bytes = \"\"\n", "t.conf:1: max_bytes: empty value" },
                { "log_level = \"\"\n", "t.conf:1: log_level: empty value" },
                { "log_payload = \"\"\n", "t.conf:1: log_payload: empty value" },
                { "listen = { \"\" }\n", "t.conf:1: listen: empty value" },
                { "allow = { \"\" }\n", "t.conf:1: allow: empty value" },
                { "deny = { ${ECHOD_TEST_UNSET_VARIABLE} }\n", "t.conf:1: deny: empty value" },
                /* durations */
                { "idle_timeout = -1\n", "t.conf:1: idle_timeout: invalid duration '-1'" },
                { "idle_timeout = 5x\n", "t.conf:1: idle_timeout: invalid duration '5x'" },
                { "idle_timeout = m\n", "t.conf:1: idle_timeout: invalid duration 'm'" },
                { "idle_timeout = 1.5\n", "t.conf:1: idle_timeout: invalid duration" },
                { "session_timeout = 5 m\n", "t.conf:1:" },
                { "session_timeout = 366d\n", "t.conf:1: session_timeout: invalid duration '366d'" },
                { "shutdown_timeout = 99999999999999999999d\n", "t.conf:1: shutdown_timeout: invalid duration" },
                /* sizes */
                { "max_bytes = -1\n", "t.conf:1: max_bytes: invalid size '-1'" },
                { "max_bytes = 1KB\n", "t.conf:1: max_bytes: invalid size '1KB'" },
                { "max_bytes = 1k\n", "t.conf:1: max_bytes: invalid size '1k'" },
                { "max_bytes = 16777216T\n", "t.conf:1: max_bytes: invalid size" },
                /* addresses */
                { "listen = { \"1.2.3.4\" }\n", "t.conf:1: listen: invalid address '1.2.3.4'" },
                { "listen = { \":7\" }\n", "t.conf:1: listen: invalid address" },
                { "listen = { \"::1:7\" }\n", "t.conf:1: listen: invalid address" },
                { "listen = { \"[1.2.3.4]:7\" }\n", "t.conf:1: listen: invalid address" },
                { "listen = { \"localhost:7\" }\n", "t.conf:1: listen: invalid address" },
                { "listen = { \"127.0.0.1:0\" }\n", "t.conf:1: listen: invalid port in '127.0.0.1:0'" },
                { "listen = { \"[::1]:65536\" }\n", "t.conf:1: listen: invalid port in '[::1]:65536'" },
                { "listen = { \"127.0.0.1:7\", \"127.0.0.1:7\" }\n",
                  "t.conf:1: listen: address '127.0.0.1:7' is listed twice" },
                { "listen = {\n  \"[::]:7\",\n  \"0.0.0.0:7\",\n  \"[::]:7\"\n}\n",
                  "t.conf:4: listen: address '[::]:7' is listed twice" },
                /* networks */
                { "allow = { \"10.0.0.1/8\" }\n", "t.conf:1: allow: '10.0.0.1/8' has address bits set" },
                { "deny = { \"2001:db8::1/32\" }\n", "t.conf:1: deny: '2001:db8::1/32' has address bits set" },
                { "allow = { \"10.0.0.0/33\" }\n", "t.conf:1: allow: invalid network '10.0.0.0/33'" },
                { "deny = { \"::/129\" }\n", "t.conf:1: deny: invalid network '::/129'" },
                { "deny = { \"10.0.0.0/-8\" }\n", "t.conf:1: deny: invalid network" },
                { "allow = { \"10.0.0.0/\" }\n", "t.conf:1: allow: invalid network" },
                { "allow = { \"example.com\" }\n", "t.conf:1: allow: invalid network 'example.com'" },
                /* booleans, levels, names */
                { "log_connections = 1\n", "t.conf:1: log_connections: invalid value '1': expected close, all, errors or off" },
                { "log_connections = TRUE\n", "t.conf:1: log_connections: invalid value 'TRUE'" },
                { "log_connections = open\n", "t.conf:1: log_connections: invalid value 'open'" },
                { "log_rate = -1\n", "t.conf:1: log_rate: invalid value '-1'" },
                { "log_rate_burst = 0\n", "t.conf:1: log_rate_burst: invalid value '0'" },
                { "log_payload = maybe\n", "t.conf:1: log_payload: invalid boolean 'maybe'" },
                { "log_level = \"INFO\"\n", "t.conf:1: log_level: invalid level 'INFO'" },
                { "log_level = \"crit\"\n", "t.conf:1: log_level: invalid level 'crit'" },
                { "log_level = \"warn\"\n", "t.conf:1: log_level: invalid level 'warn'" },
                { "log_level = 6\n", "t.conf:1: log_level: invalid level '6'" },
                { "user = \"echod-test-no-such-user\"\n", "t.conf:1: user: no such user 'echod-test-no-such-user'" },
                { "group = \"echod-test-no-such-group\"\n", "t.conf:1: group: no such group 'echod-test-no-such-group'" },
                /* syntax */
                { "foo = 1\n", "t.conf:1: no such option 'foo'" },
                { "Backlog = 1\n", "t.conf:1: no such option 'Backlog'" },
                { "backlog = { 1 }\n", "t.conf:1:" },
        };

        for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
                expect_error(bad[i].text, bad[i].prefix);
}
END_TEST

START_TEST(test_reject_every_error_reported)
{
        struct strv errors = {};
        struct config *c;

        /* The validator does not stop at the first problem. */
        ck_assert_int_eq(load("backlog = 0\n"
                              "max_bytes = 1x\n"
                              "\n"
                              "allow = { \"10.0.0.1/8\", \"bad\" }\n"
                              "log_payload = 2\n", &c, &errors), -EINVAL);
        ck_assert_ptr_null(c);
        ck_assert_uint_eq(errors.n, 5);
        ck_assert_str_eq(errors.items[0], "t.conf:1: backlog: invalid value '0': expected a whole number from 1 to 65535");
        ck_assert(strncmp(errors.items[1], "t.conf:2: max_bytes: ", 21) == 0);
        ck_assert(strncmp(errors.items[2], "t.conf:4: allow: '10.0.0.1/8'", 29) == 0);
        ck_assert(strncmp(errors.items[3], "t.conf:4: allow: invalid network 'bad'", 38) == 0);
        ck_assert(strncmp(errors.items[4], "t.conf:5: log_payload: ", 23) == 0);
        strv_clear(&errors);

        /* Errors are appended to what the caller already holds. */
        ck_assert_int_eq(strv_appendf(&errors, "%s", "earlier"), 0);
        ck_assert_int_eq(load("backlog = 0\n", &c, &errors), -EINVAL);
        ck_assert_uint_eq(errors.n, 2);
        ck_assert_str_eq(errors.items[0], "earlier");
        strv_clear(&errors);
        ck_assert_uint_eq(errors.n, 0);
        ck_assert_ptr_null(errors.items);
}
END_TEST

START_TEST(test_zero_means)
{
        /* A range that allows 0 says what 0 means. */
        expect_error("max_connections = x\n",
                     "t.conf:1: max_connections: invalid value 'x': expected a whole number from 0 to 1000000 (0 = unlimited)");
        expect_error("rate_limit = x\n",
                     "t.conf:1: rate_limit: invalid value 'x': expected a whole number from 0 to 1000000 (0 = off)");
}
END_TEST

/* ---- line numbers after comments (libconfuse 3.3 miscounts them) ---- */

START_TEST(test_lines_hash_comments)
{
        expect_error("# one\n# two\n# three\nfoo = 1\n", "t.conf:4: no such option 'foo'");
        expect_error("# one\n# two\n# three\nbacklog = 0\n", "t.conf:4: backlog:");
        expect_error("#\n#\n#\n#\n#\n#\n#\n#\n#\nbacklog = 0 # trailing\n", "t.conf:10: backlog:");
        expect_error("backlog = 5 # a\n# b\nmax_bytes = x # c\n", "t.conf:3: max_bytes:");
}
END_TEST

START_TEST(test_lines_slash_comments)
{
        expect_error("// one\n// two\n// three\nfoo = 1\n", "t.conf:4: no such option 'foo'");
        expect_error("backlog = 5 // a\n// b\nmax_bytes = x // c\n", "t.conf:3: max_bytes:");
}
END_TEST

START_TEST(test_lines_block_comments)
{
        expect_error("/* one\n   two\n   three */\nfoo = 1\n", "t.conf:4: no such option 'foo'");
        expect_error("/* one\n   two\n   three */\nbacklog = 0\n", "t.conf:4: backlog:");
        expect_error("backlog = 5 /* a\n b\n c\n d */ max_bytes = x\n", "t.conf:4: max_bytes:");
        expect_error("/* a */ /* b\n*/\n/**/\n/* # // */ idle_timeout = x\n", "t.conf:4: idle_timeout:");
        /* A block comment does not nest; the first close ends it. */
        expect_error("/* /* x */ foo = 1\n", "t.conf:1: no such option 'foo'");
}
END_TEST

START_TEST(test_lines_mixed)
{
        /* A file that looks like the shipped one, with an error near the end. */
        expect_error("# /etc/echod.conf\n"
                     "#\n"
                     "## Where to listen\n"
                     "listen = { \"127.0.0.1:7\" } # local only\n"
                     "\n"
                     "/*\n"
                     " * block\n"
                     " */\n"
                     "backlog = 64 // tuned\n"
                     "\n"
                     "// next\n"
                     "max_sources = 0\n",
                     "t.conf:12: max_sources:");
        expect_error("listen = {\n"
                     "  \"127.0.0.1:7\",   # first\n"
                     "  /* second */\n"
                     "  \"[::1]:0\"        // bad port\n"
                     "}\n",
                     "t.conf:4: listen: invalid port in '[::1]:0'");
}
END_TEST

START_TEST(test_comment_chars_in_strings)
{
        struct config *c;

        /* '#', '//' and '/' '*' inside quoted strings are text, not comments. */
        expect_error("user = \"#1\"\n", "t.conf:1: user: no such user '#1'");
        expect_error("user = \"a//b\"\n", "t.conf:1: user: no such user 'a//b'");
        expect_error("user = \"/* x */\"\n", "t.conf:1: user: no such user '/* x */'");
        expect_error("group = 'a#b/*c'\n", "t.conf:1: group: no such group 'a#b/*c'");
        expect_error("user = \"q\\\"#x\"\n", "t.conf:1: user: no such user 'q\"#x'");
        /* A string that opens a comment does not swallow the lines after it. */
        expect_error("user = \"/*\" # x\nfoo = 1\n", "t.conf:2: no such option 'foo'");
        expect_error("user = \"root\" # it's\nfoo = 1\n", "t.conf:2: no such option 'foo'");
        expect_error("user = \"root\" /* \"quoted\" */\nfoo = 1\n", "t.conf:2: no such option 'foo'");

        c = load_ok("user = \"root\" # \"not a string\nbacklog = 3\n");
        ck_assert_str_eq(c->user, "root");
        ck_assert_uint_eq(c->backlog, 3);
        config_free(c);

        /* A string spanning lines keeps the count right after it. */
        expect_error("user = \"x\n# y\nz\"\nfoo = 1\n", "t.conf:4: no such option 'foo'");
}
END_TEST

START_TEST(test_non_ascii)
{
        expect_error("backlog = 12\xc3\xa9\n", "t.conf:1: invalid character outside a quoted string");
        expect_error("# ok\n\nbacklog = 1\n\xef\xbb\xbf\n", "t.conf:4: invalid character outside a quoted string");
        expect_error("\xef\xbb\xbf" "backlog = 1\n", "t.conf:1: invalid character");
        expect_error("/* a\nb */\nbacklog\x01 = 1\n", "t.conf:3: invalid character");
        expect_error("backlog = 1\n\x1b[0m\n", "t.conf:2: invalid character");

        /* A NUL byte anywhere, even in a comment, is refused on its line. */
        static const char with_nul[] = "backlog = 1\n# a\0b\n";
        struct strv errors = {};
        struct config *c;
        ck_assert_int_eq(config_load_text("t.conf", with_nul, sizeof with_nul - 1, &c, &errors), -EINVAL);
        ck_assert_uint_eq(errors.n, 1);
        ck_assert(strncmp(errors.items[0], "t.conf:2: invalid character", 27) == 0);
        strv_clear(&errors);
}
END_TEST

START_TEST(test_blank_comments)
{
        char text[] = "a = 1 # x\n/* y\nz */ b = \"#q\" // w\n'//'";
        const char want[] = "a = 1    \n    \n     b = \"#q\"     \n'//'";

        config_blank_comments(text, strlen(text));
        ck_assert_str_eq(text, want);
}
END_TEST

/* ---- dump round trip ---- */

static char *dump(const struct config *c) {
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);

        ck_assert_ptr_nonnull(f);
        config_dump(c, f);
        ck_assert_int_eq(fclose(f), 0);
        return buf;
}

static void assert_round_trip(const char *text) {
        struct config *a = load_ok(text), *b;
        char *d1 = dump(a), *d2;

        b = load_ok(d1);
        assert_config_equal(a, b);
        /* And the second dump is the same text. */
        d2 = dump(b);
        ck_assert_str_eq(d1, d2);
        free(d1);
        free(d2);
        config_free(a);
        config_free(b);
}

START_TEST(test_proxy_keys)
{
        struct config *c;

        c = load_ok("");
        ck_assert_uint_eq(c->n_proxy_listen, 0);
        ck_assert_uint_eq(c->n_proxy_trusted, 0);
        ck_assert_uint_eq(c->proxy_timeout_usec, 3 * USEC_PER_SEC);
        config_free(c);

        /* Proxy listeners only: no plain listener by default. */
        c = load_ok("proxy_listen = { \"127.0.0.1:7007\", \"[::1]:7007\" }\n"
                    "proxy_trusted = { \"10.0.0.0/8\", \"2001:db8::1\" }\nproxy_timeout = 1s\n");
        ck_assert_uint_eq(c->n_listen, 0);
        ck_assert_uint_eq(c->n_proxy_listen, 2);
        ck_assert_uint_eq(c->n_proxy_trusted, 2);
        ck_assert_uint_eq(c->proxy_trusted[1].prefixlen, 128);
        ck_assert_uint_eq(c->proxy_timeout_usec, USEC_PER_SEC);
        config_free(c);

        expect_error("listen = { \"127.0.0.1:7\" }\nproxy_listen = { \"127.0.0.1:7007\" }\n",
                     "t.conf:2: proxy_listen: set, but proxy_trusted is empty");
        expect_error("listen = { \"127.0.0.1:7\" }\nproxy_listen = { \"127.0.0.1:7\" }\nproxy_trusted = { \"::1\" }\n",
                     "t.conf:2: proxy_listen: address '127.0.0.1:7' is listed twice");
        expect_error("proxy_listen = { \"127.0.0.1:7007\" }\nproxy_trusted = { \"10.0.0.1/8\" }\n",
                     "t.conf:2: proxy_trusted: '10.0.0.1/8' has address bits set");
        expect_error("proxy_listen = { \"127.0.0.1:7007\" }\nproxy_trusted = { \"lb1\" }\n",
                     "t.conf:2: proxy_trusted: invalid network 'lb1'");
        expect_error("proxy_listen = { \"nowhere\" }\nproxy_trusted = { \"::1\" }\n",
                     "t.conf:1: proxy_listen: invalid address 'nowhere'");
        expect_error("proxy_timeout = 0\n", "t.conf:1: proxy_timeout: must be greater than 0");
        assert_round_trip("proxy_listen = { \"127.0.0.1:7007\" }\nproxy_trusted = { \"10.0.0.0/8\", \"::1\" }\n"
                          "proxy_timeout = 10s\nlisten = { \"[::]:7\" }\n");
}
END_TEST

START_TEST(test_dump_round_trip)
{
        char *d;
        struct config *c;

        assert_round_trip("");
        assert_round_trip(
                "listen = { \"127.0.0.1:7007\", \"[::1]:7007\", \"[fe80::1%lo]:9\" }\n"
                "backlog = 1\n"
                "max_connections = 0\n"
                "max_connections_per_source = 7\n"
                "source_prefix_v4 = 0\n"
                "source_prefix_v6 = 128\n"
                "max_sources = 1000000\n"
                "rate_limit = 3\n"
                "rate_limit_burst = 4\n"
                "rate_limit_per_source = 5\n"
                "rate_limit_per_source_burst = 6\n"
                "idle_timeout = 90\n"
                "session_timeout = 1d1s\n"
                "shutdown_timeout = 0\n"
                "max_bytes = 3K\n"
                "allow = { \"10.0.0.0/8\", \"::ffff:192.0.2.0/120\", \"2001:db8::1\" }\n"
                "deny = { \"10.1.0.0/16\", \"::/0\" }\n"
                "user = \"root\"\n"
                "group = \"root\"\n"
                "log_level = \"err\"\n"
                "log_connections = off\n"
                "log_payload = on\n");
        assert_round_trip("deny = { \"0.0.0.0/0\" }\nlog_level = \"warning\"\nidle_timeout = 1h\n");
        assert_round_trip("allow = { \"192.0.2.1\" }\nlog_level = \"notice\"\nsession_timeout = 2h30m\n");
        assert_round_trip("metrics_file = \"/var/lib/prometheus/node-exporter/echod.prom\"\nmetrics_interval = 1m\n");

        /* The dump of the defaults names every key. */
        c = load_ok("");
        d = dump(c);
        static const char *const keys[] = {
                "listen", "backlog", "max_connections", "max_connections_per_source",
                "source_prefix_v4", "source_prefix_v6", "max_sources", "rate_limit",
                "rate_limit_burst", "rate_limit_per_source", "rate_limit_per_source_burst",
                "idle_timeout", "session_timeout", "shutdown_timeout", "max_bytes", "allow",
                "deny", "user", "group", "log_level", "log_connections", "log_payload",
                "log_rate", "log_rate_burst", "metrics_file", "metrics_interval",
        };
        for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
                char line[64];
                snprintf(line, sizeof line, "\n%s = ", keys[i]);
                ck_assert_msg(strstr(d, line), "dump lacks %s:\n%s", keys[i], d);
        }
        ck_assert(strstr(d, "\nidle_timeout = 5m\n"));
        free(d);
        config_free(c);
}
END_TEST

START_TEST(test_dump_quotes)
{
        /* The header names the file; names with quotes and backslashes are escaped. */
        struct strv errors = {};
        struct config *c = NULL;
        char *d;

        ck_assert_int_eq(config_load_text("/etc/echod.conf", "", 0, &c, &errors), 0);
        d = dump(c);
        ck_assert(strncmp(d, "# echod effective configuration (from /etc/echod.conf", 53) == 0);
        free(d);
        free(c->user);
        c->user = strdup("a\"b\\c");
        d = dump(c);
        ck_assert_ptr_nonnull(strstr(d, "\nuser = \"a\\\"b\\\\c\"\n"));
        free(d);
        config_free(c);
        strv_clear(&errors);
}
END_TEST

/* ---- files ---- */

START_TEST(test_load_missing)
{
        struct strv errors = {};
        struct config *c = NULL;

        ck_assert_int_eq(config_load("/nonexistent/echod-test.conf", &c, &errors), -ENOENT);
        ck_assert_ptr_null(c);
        ck_assert_uint_eq(errors.n, 1);
        ck_assert_str_eq(errors.items[0], "/nonexistent/echod-test.conf: cannot open: No such file or directory");
        strv_clear(&errors);

        ck_assert_int_eq(config_load("/", &c, &errors), -EINVAL);
        ck_assert_uint_eq(errors.n, 1);
        ck_assert_str_eq(errors.items[0], "/: not a regular file");
        strv_clear(&errors);
}
END_TEST

static char *write_temp(const char *text, size_t size) {
        char *path = strdup("/tmp/echod-unit-XXXXXX");
        int fd;

        ck_assert_ptr_nonnull(path);
        fd = mkstemp(path);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(loop_write(fd, text, size), 0);
        close(fd);
        return path;
}

START_TEST(test_load_file)
{
        static const char text[] = "# c\n\nbacklog = 42\nmax_bytes = x\n";
        struct strv errors = {};
        struct config *c = NULL;
        char want[128], *path;

        /* A valid file: the text up to "max_bytes". */
        path = write_temp(text, strlen("# c\n\nbacklog = 42\n"));
        ck_assert_int_eq(config_load(path, &c, &errors), 0);
        ck_assert_uint_eq(c->backlog, 42);
        ck_assert_str_eq(c->path, path);
        config_free(c);
        unlink(path);
        free(path);

        /* An invalid one names the file and the line. */
        path = write_temp(text, sizeof text - 1);
        ck_assert_int_eq(config_load(path, &c, &errors), -EINVAL);
        ck_assert_uint_eq(errors.n, 1);
        snprintf(want, sizeof want, "%s:4: max_bytes: ", path);
        ck_assert(strncmp(errors.items[0], want, strlen(want)) == 0);
        strv_clear(&errors);
        unlink(path);
        free(path);
}
END_TEST

START_TEST(test_load_too_large)
{
        size_t size = CONFIG_MAX_FILE_SIZE + 1;
        char *text = malloc(size);
        struct strv errors = {};
        struct config *c = NULL;
        char *path;

        ck_assert_ptr_nonnull(text);
        memset(text, '\n', size);
        path = write_temp(text, size);
        ck_assert_int_eq(config_load(path, &c, &errors), -EFBIG);
        ck_assert_uint_eq(errors.n, 1);
        ck_assert_ptr_nonnull(strstr(errors.items[0], "file larger than"));
        strv_clear(&errors);
        unlink(path);
        free(path);

        /* Exactly the maximum is fine. */
        path = write_temp(text, size - 1);
        ck_assert_int_eq(config_load(path, &c, &errors), 0);
        assert_defaults(c);
        config_free(c);
        unlink(path);
        free(path);
        free(text);
}
END_TEST

/* The number of "key = value" lines config_dump() writes for c. */
static size_t dumped_keys(const struct config *c) {
        char *buf = NULL, *line, *save = NULL;
        size_t size = 0, n = 0;
        FILE *f = open_memstream(&buf, &size);

        ck_assert_ptr_nonnull(f);
        config_dump(c, f);
        fclose(f);
        for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
                if (line[0] >= 'a' && line[0] <= 'z' && strstr(line, " = "))
                        n++;
        free(buf);
        return n;
}

/* The shipped file, as is and with every setting uncommented, gives the defaults. */
START_TEST(test_shipped_conf)
{
        const char *root = getenv("ECHOD_SOURCE_ROOT");
        struct strv errors = {};
        struct config *shipped = NULL, *uncommented, *defaults;
        char path[4096], *text = NULL, *out, *line, *save = NULL;
        size_t size = 0, n_keys = 0;
        FILE *f;

        ck_assert_msg(root, "ECHOD_SOURCE_ROOT is not set (meson test sets it)");
        snprintf(path, sizeof path, "%s/conf/echod.conf", root);
        ck_assert_int_eq(config_load(path, &shipped, &errors), 0);
        defaults = load_ok("");
        assert_config_equal(shipped, defaults);

        f = fopen(path, "re");
        ck_assert_ptr_nonnull(f);
        ck_assert_int_eq(getdelim(&text, &size, '\0', f) > 0, 1);
        fclose(f);
        out = calloc(1, strlen(text) + 1);
        ck_assert_ptr_nonnull(out);
        /* "#key = value" lines are settings; "# text" and "## text" are prose. */
        for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                if (line[0] == '#' && line[1] >= 'a' && line[1] <= 'z' && strstr(line, " = ")) {
                        line++;
                        n_keys++;
                }
                strcat(out, line);
                strcat(out, "\n");
        }
        /* Every key --dump-config writes is in the shipped file. */
        ck_assert_uint_eq(n_keys, dumped_keys(defaults));
        uncommented = load_ok(out);
        assert_config_equal(uncommented, defaults);

        config_free(shipped);
        config_free(uncommented);
        config_free(defaults);
        free(text);
        free(out);
}
END_TEST

/* ---- known bugs (see unit.h) ---- */

/*
 * BUG: prepare_text() refuses control characters outside strings, but its
 * test (c >= 0x80 || c < 0x20) lets DEL (0x7f) through to libconfuse, which
 * then reports "no such option ''" instead of the invalid-character message.
 * The file is still rejected, on the right line.
 */
START_TEST(test_regression_del_character)
{
        expect_error("backlog = 1\n\x7f\n", "t.conf:2: invalid character outside a quoted string");
}
END_TEST

/*
 * BUG: a "/" "*" comment that is never closed silently swallows the rest of
 * the file (prepare_text() blanks to the end, as libconfuse itself would):
 * an operator who comments out one block and forgets the close loses every
 * later setting, and -t says the file is OK. Expected: rejected, naming the
 * line where the comment opened.
 */
START_TEST(test_regression_unterminated_block_comment)
{
        expect_error("backlog = 5\n/* disabled for now\nmax_connections = 1\n", "t.conf:2:");
}
END_TEST

static Suite *config_suite(void) {
        Suite *s = suite_create("config");
        TCase *tc;

        tc = tcase_create("values");
        tcase_add_test(tc, test_defaults);
        tcase_add_test(tc, test_only_comments);
        tcase_add_test(tc, test_all_keys);
        tcase_add_test(tc, test_accepted_forms);
        suite_add_tcase(s, tc);

        tc = tcase_create("rejections");
        tcase_add_test(tc, test_reject_values);
        tcase_add_test(tc, test_reject_every_error_reported);
        tcase_add_test(tc, test_zero_means);
        suite_add_tcase(s, tc);

        tc = tcase_create("lines");
        tcase_add_test(tc, test_lines_hash_comments);
        tcase_add_test(tc, test_lines_slash_comments);
        tcase_add_test(tc, test_lines_block_comments);
        tcase_add_test(tc, test_lines_mixed);
        tcase_add_test(tc, test_comment_chars_in_strings);
        tcase_add_test(tc, test_non_ascii);
        tcase_add_test(tc, test_blank_comments);
        suite_add_tcase(s, tc);

        tc = tcase_create("dump");
        tcase_add_test(tc, test_dump_round_trip);
        tcase_add_test(tc, test_proxy_keys);
        tcase_add_test(tc, test_dump_quotes);
        suite_add_tcase(s, tc);

        tc = tcase_create("files");
        tcase_add_test(tc, test_load_missing);
        tcase_add_test(tc, test_load_file);
        tcase_add_test(tc, test_load_too_large);
        tcase_add_test(tc, test_shipped_conf);
        suite_add_tcase(s, tc);

        {
                /* Bugs this suite found, fixed since; kept as regressions. */
                tc = tcase_create("regressions");
                tcase_add_test(tc, test_regression_del_character);
                tcase_add_test(tc, test_regression_unterminated_block_comment);
                suite_add_tcase(s, tc);
        }
        return s;
}

static Suite *udp_suite(void);

int main(void) {
        int failed = unit_run(config_suite());

        return unit_run(udp_suite()) || failed;
}

/* ---- UDP keys ---- */

START_TEST(test_udp_defaults)
{
        struct config *c = load_ok("");

        ck_assert_uint_eq(c->n_listen_udp, 0);
        ck_assert_uint_eq(c->n_udp_deny_source_ports, 7);
        ck_assert_uint_eq(c->udp_deny_source_ports[0].first, 0);
        ck_assert_uint_eq(c->udp_deny_source_ports[0].last, 1023);
        ck_assert_uint_eq(c->udp_deny_source_ports[6].first, 11211);
        ck_assert_uint_eq(c->udp_deny_source_ports[6].last, 11211);
        ck_assert_uint_eq(c->udp_rate_limit_per_source, 100);
        ck_assert_uint_eq(c->udp_rate_limit_per_source_burst, 200);
        ck_assert_uint_eq(c->udp_rate_limit, 10000);
        ck_assert_uint_eq(c->udp_rate_limit_burst, 20000);
        ck_assert_uint_eq(c->udp_max_bytes_per_second, 10 * 1024 * 1024);
        config_free(c);
}
END_TEST

START_TEST(test_udp_values)
{
        struct config *c = load_ok("listen_udp = { \"[::]:7\", \"127.0.0.1:7007\" }\n"
                                   "udp_deny_source_ports = { \"7\", \"10-20\", \"65535\" }\n"
                                   "udp_rate_limit_per_source = 0\n"
                                   "udp_rate_limit = 5\nudp_rate_limit_burst = 1\n"
                                   "udp_max_bytes_per_second = 1K\n");

        ck_assert_uint_eq(c->n_listen_udp, 2);
        ck_assert_str_eq(c->listen_udp[1].text, "127.0.0.1:7007");
        ck_assert_uint_eq(c->n_udp_deny_source_ports, 3);
        ck_assert_uint_eq(c->udp_deny_source_ports[1].first, 10);
        ck_assert_uint_eq(c->udp_deny_source_ports[1].last, 20);
        ck_assert_uint_eq(c->udp_deny_source_ports[2].first, 65535);
        ck_assert_uint_eq(c->udp_rate_limit_per_source, 0);
        ck_assert_uint_eq(c->udp_rate_limit, 5);
        ck_assert_uint_eq(c->udp_rate_limit_burst, 1);
        ck_assert_uint_eq(c->udp_max_bytes_per_second, 1024);
        config_free(c);

        /* An empty list denies nothing (echod warns about it). */
        c = load_ok("udp_deny_source_ports = { }\n");
        ck_assert_uint_eq(c->n_udp_deny_source_ports, 0);
        config_free(c);
}
END_TEST

START_TEST(test_udp_rejections)
{
        expect_error("\nlisten_udp = { \"[::]:0\" }\n", "t.conf:2: listen_udp: invalid port");
        expect_error("listen_udp = { \"[::]:7\", \"[::]:7\" }\n", "t.conf:1: listen_udp: address '[::]:7' is listed twice");
        expect_error("listen_udp = { \"localhost:7\" }\n", "t.conf:1: listen_udp: invalid address");
        expect_error("\n\nudp_deny_source_ports = { \"20-10\" }\n", "t.conf:3: udp_deny_source_ports: range '20-10' ends before it starts");
        expect_error("udp_deny_source_ports = { \"65536\" }\n", "t.conf:1: udp_deny_source_ports: invalid port or range");
        expect_error("udp_deny_source_ports = { \"1-\" }\n", "t.conf:1: udp_deny_source_ports: invalid port or range");
        expect_error("udp_deny_source_ports = { \"\" }\n", "t.conf:1: udp_deny_source_ports: empty value");
        expect_error("udp_rate_limit = -1\n", "t.conf:1: udp_rate_limit: invalid value");
        expect_error("udp_rate_limit_burst = 0\n", "t.conf:1: udp_rate_limit_burst: invalid value");
        expect_error("udp_rate_limit_per_source_burst = 0\n", "t.conf:1: udp_rate_limit_per_source_burst: invalid value");
        expect_error("udp_max_bytes_per_second = 10X\n", "t.conf:1: udp_max_bytes_per_second: invalid size");
}
END_TEST

START_TEST(test_udp_dump_round_trip)
{
        struct config *a = load_ok("listen_udp = { \"[::1]:7\" }\nudp_deny_source_ports = { \"7\", \"100-200\" }\n"
                                   "udp_rate_limit = 0\nudp_max_bytes_per_second = 0\n"), *b;
        char *text = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&text, &size);

        config_dump(a, f);
        fclose(f);
        b = load_ok(text);
        assert_config_equal(a, b);
        config_free(a);
        config_free(b);
        free(text);
}
END_TEST

static Suite *udp_suite(void) {
        Suite *s = suite_create("config-udp");
        TCase *tc = tcase_create("udp");

        tcase_add_test(tc, test_udp_defaults);
        tcase_add_test(tc, test_udp_values);
        tcase_add_test(tc, test_udp_rejections);
        tcase_add_test(tc, test_udp_dump_round_trip);
        suite_add_tcase(s, tc);
        return s;
}
