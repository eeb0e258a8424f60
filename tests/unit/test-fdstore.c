/* SPDX-License-Identifier: MIT */
/* Unit tests for the fd store's names (fdstore.c) and for what the new
 * image refuses to take over from a previous one (upgrade.c). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "unit.h"
#include "addr.h"
#include "fdstore.h"
#include "listen.h"
#include "upgrade.h"

static struct listener make(enum listener_kind kind, const char *addr) {
        struct listener l = { .fd = -1, .kind = kind };

        ck_assert_int_eq(sockaddr_parse(addr, &l.addr), 0);
        sockaddr_format(&l.addr, l.name, sizeof l.name);
        return l;
}

/* What systemd's fdname_is_valid() accepts. */
static bool valid_fdname(const char *s) {
        size_t n = strlen(s);

        for (size_t i = 0; i < n; i++)
                if (s[i] < ' ' || s[i] >= 127 || s[i] == ':')
                        return false;
        return n <= 255;
}

START_TEST(test_names)
{
        static const struct { enum listener_kind kind; const char *addr, *name; } cases[] = {
                { LISTENER_TCP, "127.0.0.1:7", "tcp@127.0.0.1_7" },
                { LISTENER_TCP, "[::]:7", "tcp@[__]_7" },
                { LISTENER_PROXY, "[2001:db8::1]:7007", "proxy@[2001_db8__1]_7007" },
                { LISTENER_UDP, "0.0.0.0:65535", "udp@0.0.0.0_65535" },
        };
        char buf[FDSTORE_NAME_MAX];

        for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
                struct listener l = make(cases[i].kind, cases[i].addr);
                fdstore_name(&l, buf, sizeof buf);
                ck_assert_str_eq(buf, cases[i].name);
                ck_assert_msg(valid_fdname(buf), "'%s' is no valid fd name", buf);
                ck_assert_int_eq(fdstore_kind_from_name(buf), (int) cases[i].kind);
        }
}
END_TEST

START_TEST(test_names_not_ours)
{
        /* A socket unit's names, systemd's default, and near misses. */
        static const char *const others[] = { "echod.socket", "unknown", "tcp", "udp", "", "tcpx@1.2.3.4_7", "@x" };

        for (size_t i = 0; i < ARRAY_SIZE(others); i++)
                ck_assert_msg(fdstore_kind_from_name(others[i]) == -EINVAL, "'%s' taken as a stored listener", others[i]);
}
END_TEST

static int load(const char *env, char *err, size_t size) {
        struct upgrade_state s;
        int r;

        if (env)
                ck_assert_int_eq(setenv("ECHOD_UPGRADE_FD", env, 1), 0);
        else
                unsetenv("ECHOD_UPGRADE_FD");
        r = upgrade_load(&s, err, size);
        upgrade_state_done(&s);
        ck_assert_ptr_null(getenv("ECHOD_UPGRADE_FD"));
        return r;
}

START_TEST(test_upgrade_refuses)
{
        char err[256] = "", num[16];
        static const char junk[4096] = "not the echod upgrade header";
        int fd;

        ck_assert_int_eq(load(NULL, err, sizeof err), 0);
        ck_assert_int_eq(load("seven", err, sizeof err), -EBADMSG);
        ck_assert_ptr_nonnull(strstr(err, "not a descriptor number"));

        fd = memfd_create("test", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        ck_assert_int_ge(fd, 3);
        ck_assert_int_eq(write(fd, junk, sizeof junk), (ssize_t) sizeof junk);
        snprintf(num, sizeof num, "%d", fd);
        ck_assert_int_eq(load(num, err, sizeof err), -EBADMSG);
        ck_assert_ptr_nonnull(strstr(err, "not sealed"));

        /* upgrade_load() closed it: make another, sealed this time. */
        fd = memfd_create("test", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        ck_assert_int_eq(write(fd, junk, sizeof junk), (ssize_t) sizeof junk);
        ck_assert_int_eq(fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE), 0);
        snprintf(num, sizeof num, "%d", fd);
        ck_assert_int_eq(load(num, err, sizeof err), -EBADMSG);
        ck_assert_ptr_nonnull(strstr(err, "no echod upgrade magic"));
}
END_TEST

static Suite *fdstore_suite(void) {
        Suite *s = suite_create("fdstore");
        TCase *tc = tcase_create("names");

        tcase_add_test(tc, test_names);
        tcase_add_test(tc, test_names_not_ours);
        suite_add_tcase(s, tc);

        tc = tcase_create("upgrade");
        tcase_add_test(tc, test_upgrade_refuses);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return unit_run(fdstore_suite());
}
