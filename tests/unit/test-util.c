/* SPDX-License-Identifier: MIT */
/* Unit tests for src/shared: strict number, duration and size parsers,
 * the clocks, the strbuf, usage errors, copying an address, and the
 * descriptor helpers. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "unit.h"
#include "addr.h"
#include "fd-util.h"
#include "parse.h"
#include "strbuf.h"
#include "usage.h"

#define SEC(n) ((uint64_t) (n) * USEC_PER_SEC)

/* ---- parse_uint64 ---- */

START_TEST(test_uint64_valid)
{
        static const struct { const char *s; uint64_t v; } ok[] = {
                { "0", 0 },
                { "1", 1 },
                { "007", 7 },
                { "65535", 65535 },
                { "4294967296", UINT64_C(4294967296) },
                { "18446744073709551615", UINT64_MAX },
        };

        for (size_t i = 0; i < ARRAY_SIZE(ok); i++) {
                uint64_t v = 12345;
                ck_assert_msg(parse_uint64(ok[i].s, &v) == 0, "'%s' rejected", ok[i].s);
                ck_assert_uint_eq(v, ok[i].v);
        }
}
END_TEST

START_TEST(test_uint64_invalid)
{
        static const char *const bad[] = {
                "", "-1", "+1", " 1", "1 ", "\t1", "1\n", "0x10", "0X10", "1e3",
                "1.0", "1,000", "one", "1a", "a1", "-0", "١",
        };

        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
                uint64_t v = 12345;
                int r = parse_uint64(bad[i], &v);
                ck_assert_msg(r == -EINVAL, "'%s' gave %d, expected -EINVAL", bad[i], r);
                ck_assert_msg(v == 12345, "'%s' wrote the result on failure", bad[i]);
        }
        ck_assert_int_eq(parse_uint64(NULL, &(uint64_t) { 0 }), -EINVAL);
}
END_TEST

START_TEST(test_uint64_overflow)
{
        uint64_t v = 12345;

        ck_assert_int_eq(parse_uint64("18446744073709551616", &v), -ERANGE);
        ck_assert_int_eq(parse_uint64("18446744073709551620", &v), -ERANGE);
        ck_assert_int_eq(parse_uint64("99999999999999999999999", &v), -ERANGE);
        ck_assert_uint_eq(v, 12345);
}
END_TEST

/* ---- parse_duration ---- */

START_TEST(test_duration_valid)
{
        static const struct { const char *s; uint64_t usec; } ok[] = {
                { "0", 0 },
                { "0s", 0 },
                { "300", SEC(300) },
                { "30s", SEC(30) },
                { "5m", SEC(300) },
                { "2h", SEC(7200) },
                { "1d", SEC(86400) },
                { "1h30m", SEC(5400) },
                { "1d2h3m4s", SEC(86400 + 7200 + 180 + 4) },
                { "1m30", SEC(90) },            /* a bare number last is seconds */
                { "90m", SEC(5400) },
                { "365d", SEC(365 * 86400) },
        };

        for (size_t i = 0; i < ARRAY_SIZE(ok); i++) {
                uint64_t v = 12345;
                ck_assert_msg(parse_duration(ok[i].s, &v) == 0, "'%s' rejected", ok[i].s);
                ck_assert_msg(v == ok[i].usec, "'%s' gave %llu usec, expected %llu", ok[i].s,
                              (unsigned long long) v, (unsigned long long) ok[i].usec);
        }
}
END_TEST

START_TEST(test_duration_invalid)
{
        static const char *const bad[] = {
                "", "5x", "-1", "+1", "m", "s", "5 m", " 5m", "5m ", "5M", "5S", "1.5h",
                "0x10", "5ms", "h1", "1hm", "5min", "1h 30m",
        };

        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
                uint64_t v = 12345;
                int r = parse_duration(bad[i], &v);
                ck_assert_msg(r == -EINVAL, "'%s' gave %d, expected -EINVAL", bad[i], r);
                ck_assert_msg(v == 12345, "'%s' wrote the result on failure", bad[i]);
        }
        ck_assert_int_eq(parse_duration(NULL, &(uint64_t) { 0 }), -EINVAL);
}
END_TEST

START_TEST(test_duration_overflow)
{
        uint64_t v = 12345;

        /* The number itself, the number times its unit, and the sum overflow. */
        ck_assert_int_eq(parse_duration("18446744073709551616", &v), -ERANGE);
        ck_assert_int_eq(parse_duration("18446744073709551615", &v), -ERANGE);
        ck_assert_int_eq(parse_duration("18446744073709s", &v), 0);
        ck_assert_int_eq(parse_duration("18446744073710s", &v), -ERANGE);
        ck_assert_int_eq(parse_duration("213503982d", &v), 0);
        ck_assert_int_eq(parse_duration("213503983d", &v), -ERANGE);
        ck_assert_int_eq(parse_duration("200000000d", &v), 0);
        ck_assert_int_eq(parse_duration("200000000d200000000d", &v), -ERANGE);
        v = 12345;
        ck_assert_int_eq(parse_duration("9999999999999999999d", &v), -ERANGE);
        ck_assert_uint_eq(v, 12345);
}
END_TEST

/* ---- parse_size ---- */

START_TEST(test_size_valid)
{
        static const struct { const char *s; uint64_t v; } ok[] = {
                { "0", 0 },
                { "1048576", 1048576 },
                { "1K", 1024 },
                { "512K", 512 * 1024 },
                { "64M", UINT64_C(64) << 20 },
                { "1G", UINT64_C(1) << 30 },
                { "2T", UINT64_C(2) << 40 },
                { "0T", 0 },
                { "16777215T", UINT64_C(16777215) << 40 },
                { "18446744073709551615", UINT64_MAX },
        };

        for (size_t i = 0; i < ARRAY_SIZE(ok); i++) {
                uint64_t v = 12345;
                ck_assert_msg(parse_size(ok[i].s, &v) == 0, "'%s' rejected", ok[i].s);
                ck_assert_uint_eq(v, ok[i].v);
        }
}
END_TEST

START_TEST(test_size_invalid)
{
        static const char *const bad[] = {
                "", "K", "1k", "1m", "1g", "1KB", "1KiB", "1P", "1E", "1B", "-1", "+1",
                " 1K", "1K ", "1 K", "1.5M", "0x10", "1KK",
        };

        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
                uint64_t v = 12345;
                int r = parse_size(bad[i], &v);
                ck_assert_msg(r == -EINVAL, "'%s' gave %d, expected -EINVAL", bad[i], r);
                ck_assert_msg(v == 12345, "'%s' wrote the result on failure", bad[i]);
        }
        ck_assert_int_eq(parse_size(NULL, &(uint64_t) { 0 }), -EINVAL);
}
END_TEST

START_TEST(test_size_overflow)
{
        uint64_t v = 12345;

        ck_assert_int_eq(parse_size("16777216T", &v), -ERANGE);
        ck_assert_int_eq(parse_size("17179869184G", &v), -ERANGE);
        ck_assert_int_eq(parse_size("18446744073709551616", &v), -ERANGE);
        ck_assert_uint_eq(v, 12345);
}
END_TEST

/* ---- the range-checked parsers ---- */

START_TEST(test_uint64_range)
{
        uint64_t v = 12345;

        ck_assert_int_eq(parse_uint64_range("1", 1, 1000000, &v), 0);
        ck_assert_uint_eq(v, 1);
        ck_assert_int_eq(parse_uint64_range("1000000", 1, 1000000, &v), 0);
        ck_assert_uint_eq(v, 1000000);
        ck_assert_int_eq(parse_uint64_range("18446744073709551615", 0, UINT64_MAX, &v), 0);
        ck_assert_uint_eq(v, UINT64_MAX);

        v = 12345;
        ck_assert_int_eq(parse_uint64_range("0", 1, 1000000, &v), -ERANGE);
        ck_assert_int_eq(parse_uint64_range("1000001", 1, 1000000, &v), -ERANGE);
        ck_assert_int_eq(parse_uint64_range("18446744073709551616", 0, UINT64_MAX, &v), -ERANGE);
        ck_assert_int_eq(parse_uint64_range("-3", 1, 10, &v), -EINVAL);
        ck_assert_int_eq(parse_uint64_range("1e3", 1, 10000, &v), -EINVAL);
        ck_assert_int_eq(parse_uint64_range("", 0, 10, &v), -EINVAL);
        ck_assert_int_eq(parse_uint64_range(NULL, 0, 10, &v), -EINVAL);
        ck_assert_uint_eq(v, 12345);
}
END_TEST

START_TEST(test_size_range)
{
        uint64_t v = 12345;

        /* The grammar is parse_size()'s; only the bounds are added. */
        ck_assert_int_eq(parse_size_range("1", 1, UINT64_C(1) << 30, &v), 0);
        ck_assert_uint_eq(v, 1);
        ck_assert_int_eq(parse_size_range("64K", 1, UINT64_C(1) << 30, &v), 0);
        ck_assert_uint_eq(v, 65536);
        ck_assert_int_eq(parse_size_range("1G", 1, UINT64_C(1) << 30, &v), 0);
        ck_assert_uint_eq(v, UINT64_C(1) << 30);

        v = 12345;
        ck_assert_int_eq(parse_size_range("0", 1, UINT64_C(1) << 30, &v), -ERANGE);
        ck_assert_int_eq(parse_size_range("1025M", 1, UINT64_C(1) << 30, &v), -ERANGE);
        ck_assert_int_eq(parse_size_range("1T", 1, UINT64_C(1) << 30, &v), -ERANGE);
        ck_assert_int_eq(parse_size_range("16777216T", 0, UINT64_MAX, &v), -ERANGE);
        ck_assert_int_eq(parse_size_range("64k", 1, UINT64_C(1) << 30, &v), -EINVAL);
        ck_assert_int_eq(parse_size_range("12Q", 1, UINT64_C(1) << 30, &v), -EINVAL);
        ck_assert_int_eq(parse_size_range(NULL, 0, 10, &v), -EINVAL);
        ck_assert_uint_eq(v, 12345);
}
END_TEST

/* ---- format_duration ---- */

START_TEST(test_format_duration)
{
        static const struct { uint64_t usec; const char *s; } cases[] = {
                { 0, "0s" },
                { SEC(1), "1s" },
                { SEC(59), "59s" },
                { SEC(60), "1m" },
                { SEC(90), "90s" },
                { SEC(300), "5m" },
                { SEC(3600), "1h" },
                { SEC(5400), "90m" },
                { SEC(86400), "1d" },
                { SEC(90000), "25h" },
                { SEC(86401), "86401s" },
        };
        char buf[64];

        for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
                format_duration(buf, sizeof buf, cases[i].usec);
                ck_assert_str_eq(buf, cases[i].s);
        }
}
END_TEST

START_TEST(test_format_duration_round_trip)
{
        static const uint64_t secs[] = {
                0, 1, 2, 30, 59, 60, 61, 119, 120, 300, 3599, 3600, 3601, 5400, 7200,
                86399, 86400, 86401, 90000, 172800, 365 * 86400, UINT64_C(4294967296),
                UINT64_MAX / USEC_PER_SEC,
        };
        char buf[64];

        for (size_t i = 0; i < ARRAY_SIZE(secs); i++) {
                uint64_t v = 12345;
                format_duration(buf, sizeof buf, SEC(secs[i]));
                ck_assert_msg(parse_duration(buf, &v) == 0, "'%s' does not parse", buf);
                ck_assert_msg(v == SEC(secs[i]), "'%s' parsed to %llu usec, expected %llu",
                              buf, (unsigned long long) v, (unsigned long long) SEC(secs[i]));
        }

        /* And every duration parse_duration accepts formats back to itself. */
        static const char *const texts[] = { "300", "30s", "5m", "2h", "1d", "1h30m", "1d1s" };
        for (size_t i = 0; i < ARRAY_SIZE(texts); i++) {
                uint64_t v, w;
                ck_assert_int_eq(parse_duration(texts[i], &v), 0);
                format_duration(buf, sizeof buf, v);
                ck_assert_int_eq(parse_duration(buf, &w), 0);
                ck_assert_uint_eq(v, w);
        }
}
END_TEST

START_TEST(test_format_duration_truncates)
{
        char buf[4];

        /* A short buffer gets a terminated prefix, never an overflow. */
        format_duration(buf, sizeof buf, SEC(123456));
        ck_assert_uint_eq(strlen(buf), 3);
}
END_TEST

/* ---- strbuf ---- */

START_TEST(test_strbuf)
{
        char buf[64];
        struct strbuf sb;

        strbuf_init(&sb, buf, sizeof buf);
        ck_assert_str_eq(buf, "");
        strbuf_add(&sb, "n=");
        strbuf_add_u64(&sb, 0);
        strbuf_add(&sb, " max=");
        strbuf_add_u64(&sb, UINT64_MAX);
        strbuf_add(&sb, " t=");
        strbuf_add_seconds(&sb, 1250999);
        strbuf_add(&sb, " ");
        strbuf_add_seconds(&sb, 7);
        ck_assert_str_eq(buf, "n=0 max=18446744073709551615 t=1.250 0.000");
}
END_TEST

START_TEST(test_strbuf_truncates)
{
        char buf[8] = "xxxxxxx", one[1] = "x";
        struct strbuf sb;

        /* What does not fit is cut off; the result is always terminated. */
        strbuf_init(&sb, buf, sizeof buf);
        strbuf_add(&sb, "abcd");
        strbuf_add_u64(&sb, 123456);
        ck_assert_str_eq(buf, "abcd123");
        strbuf_add(&sb, "more");
        strbuf_add_seconds(&sb, 5000000);
        ck_assert_str_eq(buf, "abcd123");

        strbuf_init(&sb, one, sizeof one);
        strbuf_add(&sb, "a");
        strbuf_add_u64(&sb, 9);
        ck_assert_str_eq(one, "");
}
END_TEST

/* ---- clocks ---- */

START_TEST(test_clocks)
{
        /* One reading in two units: a later microsecond reading never
         * falls behind an earlier nanosecond one, and vice versa. */
        for (int i = 0; i < 1000; i++) {
                uint64_t ns = now_nsec(CLOCK_MONOTONIC);
                uint64_t us = now_usec(CLOCK_MONOTONIC);
                uint64_t ns2 = now_nsec(CLOCK_MONOTONIC);
                unit_assert(ns / NSEC_PER_USEC <= us, "usec %llu behind nsec %llu",
                            (unsigned long long) us, (unsigned long long) ns);
                unit_assert(us <= ns2 / NSEC_PER_USEC, "usec %llu ahead of nsec %llu",
                            (unsigned long long) us, (unsigned long long) ns2);
        }

        struct timespec ts;
        ck_assert_int_eq(clock_gettime(CLOCK_REALTIME, &ts), 0);
        uint64_t before = (uint64_t) ts.tv_sec * NSEC_PER_SEC + (uint64_t) ts.tv_nsec;
        ck_assert_uint_ge(now_nsec(CLOCK_REALTIME), before);
}
END_TEST

/* ---- usage_error ---- */

START_TEST(test_usage_error)
{
        char buf[256];
        int p[2], saved;
        ssize_t n;

        ck_assert_int_eq(pipe(p), 0);
        saved = dup(STDERR_FILENO);
        ck_assert_int_ge(saved, 0);
        ck_assert_int_ge(dup2(p[1], STDERR_FILENO), 0);
        int r = usage_error("prog", "--size: '%s' is %s", "12Q", "not valid");
        fflush(stderr);
        ck_assert_int_ge(dup2(saved, STDERR_FILENO), 0);
        close(saved);
        close(p[1]);
        n = read(p[0], buf, sizeof buf - 1);
        close(p[0]);

        ck_assert_int_eq(r, EXIT_USAGE);
        ck_assert_int_eq(EXIT_USAGE, 2);
        ck_assert_int_gt(n, 0);
        buf[n] = '\0';
        ck_assert_str_eq(buf, "prog: --size: '12Q' is not valid\n"
                              "Try 'prog --help' for more information.\n");
}
END_TEST

/* ---- sockaddr_set ---- */

START_TEST(test_sockaddr_set)
{
        struct sockaddr_in in = {
                .sin_family = AF_INET,
                .sin_port = htons(7),
                .sin_addr.s_addr = htonl(0x7f000001),
        };
        struct sockaddr_in6 in6 = {
                .sin6_family = AF_INET6,
                .sin6_port = htons(65535),
                .sin6_addr = IN6ADDR_LOOPBACK_INIT,
        };
        struct sockaddr_any a, b;
        char buf[ADDR_STR_MAX];

        memset(&a, 0xaa, sizeof a);
        ck_assert_int_eq(sockaddr_set(&a, (const struct sockaddr *) &in, sizeof in), 0);
        ck_assert_uint_eq(a.len, sizeof in);
        sockaddr_format(&a, buf, sizeof buf);
        ck_assert_str_eq(buf, "127.0.0.1:7");
        ck_assert_int_eq(sockaddr_parse("127.0.0.1:7", &b), 0);
        ck_assert(sockaddr_equal(&a, &b));
        /* Nothing of the old contents is left behind the copied bytes. */
        for (size_t i = sizeof in; i < sizeof a.storage; i++)
                unit_assert(((const unsigned char *) &a.storage)[i] == 0, "byte %zu not cleared", i);

        ck_assert_int_eq(sockaddr_set(&a, (const struct sockaddr *) &in6, sizeof in6), 0);
        ck_assert_uint_eq(a.len, sizeof in6);
        sockaddr_format(&a, buf, sizeof buf);
        ck_assert_str_eq(buf, "[::1]:65535");

        /* Too long for any address: refused, and a is left as it was. */
        static unsigned char big[sizeof(struct sockaddr_storage) + 1];
        b = a;
        ck_assert_int_eq(sockaddr_set(&a, (const struct sockaddr *) big, sizeof big), -EINVAL);
        ck_assert_int_eq(memcmp(&a, &b, sizeof a), 0);
}
END_TEST

/* ---- descriptor helpers ---- */

START_TEST(test_fd_flags)
{
        int p[2];

        ck_assert_int_eq(pipe(p), 0);
        ck_assert_int_eq(fd_set_nonblock(p[0], true), 0);
        ck_assert(fcntl(p[0], F_GETFL) & O_NONBLOCK);
        ck_assert_int_eq(fd_set_nonblock(p[0], true), 0);
        ck_assert_int_eq(fd_set_nonblock(p[0], false), 0);
        ck_assert(!(fcntl(p[0], F_GETFL) & O_NONBLOCK));
        ck_assert_int_eq(fd_set_cloexec(p[1], true), 0);
        ck_assert(fcntl(p[1], F_GETFD) & FD_CLOEXEC);
        ck_assert_int_eq(fd_set_cloexec(p[1], false), 0);
        ck_assert(!(fcntl(p[1], F_GETFD) & FD_CLOEXEC));
        close(p[0]);
        close(p[1]);
        ck_assert_int_eq(fd_set_nonblock(p[0], true), -EBADF);
        ck_assert_int_eq(fd_set_cloexec(p[0], true), -EBADF);

        /* safe_close keeps errno and tolerates -1. */
        errno = EAGAIN;
        ck_assert_int_eq(safe_close(-1), -1);
        ck_assert_int_eq(errno, EAGAIN);
}
END_TEST

START_TEST(test_loop_write)
{
        static char big[256 * 1024];
        int p[2];

        for (size_t i = 0; i < sizeof big; i++)
                big[i] = (char) (i * 7);
        ck_assert_int_eq(pipe(p), 0);

        /* More than a pipe holds, so the writer must block; read in a child. */
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                close(p[1]);
                size_t got = 0;
                char buf[4096];
                for (;;) {
                        ssize_t n = read(p[0], buf, sizeof buf);
                        if (n <= 0)
                                break;
                        for (ssize_t k = 0; k < n; k++)
                                if (buf[k] != big[got + (size_t) k])
                                        _exit(2);
                        got += (size_t) n;
                }
                _exit(got == sizeof big ? 0 : 1);
        }
        close(p[0]);
        ck_assert_int_eq(loop_write(p[1], big, sizeof big), 0);
        close(p[1]);
        int st;
        ck_assert_int_eq(waitpid(pid, &st, 0), pid);
        ck_assert(WIFEXITED(st));
        ck_assert_int_eq(WEXITSTATUS(st), 0);

        ck_assert_int_eq(loop_write(p[1], "x", 1), -EBADF);
}
END_TEST

static Suite *util_suite(void) {
        Suite *s = suite_create("util");
        TCase *tc;

        tc = tcase_create("parse_uint64");
        tcase_add_test(tc, test_uint64_valid);
        tcase_add_test(tc, test_uint64_invalid);
        tcase_add_test(tc, test_uint64_overflow);
        suite_add_tcase(s, tc);

        tc = tcase_create("parse_duration");
        tcase_add_test(tc, test_duration_valid);
        tcase_add_test(tc, test_duration_invalid);
        tcase_add_test(tc, test_duration_overflow);
        suite_add_tcase(s, tc);

        tc = tcase_create("parse_size");
        tcase_add_test(tc, test_size_valid);
        tcase_add_test(tc, test_size_invalid);
        tcase_add_test(tc, test_size_overflow);
        suite_add_tcase(s, tc);

        tc = tcase_create("ranges");
        tcase_add_test(tc, test_uint64_range);
        tcase_add_test(tc, test_size_range);
        suite_add_tcase(s, tc);

        tc = tcase_create("format_duration");
        tcase_add_test(tc, test_format_duration);
        tcase_add_test(tc, test_format_duration_round_trip);
        tcase_add_test(tc, test_format_duration_truncates);
        suite_add_tcase(s, tc);

        tc = tcase_create("strbuf");
        tcase_add_test(tc, test_strbuf);
        tcase_add_test(tc, test_strbuf_truncates);
        suite_add_tcase(s, tc);

        tc = tcase_create("clocks");
        tcase_add_test(tc, test_clocks);
        suite_add_tcase(s, tc);

        tc = tcase_create("usage");
        tcase_add_test(tc, test_usage_error);
        suite_add_tcase(s, tc);

        tc = tcase_create("sockaddr_set");
        tcase_add_test(tc, test_sockaddr_set);
        suite_add_tcase(s, tc);

        tc = tcase_create("fd");
        tcase_add_test(tc, test_fd_flags);
        tcase_add_test(tc, test_loop_write);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return unit_run(util_suite());
}
