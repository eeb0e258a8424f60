/* SPDX-License-Identifier: MIT */
/* Unit tests for log.c: journald's native protocol on a socket of the
 * test's own ($ECHOD_JOURNAL_SOCKET), and what a full socket costs. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "unit.h"

static int journal;
static char dir[32], path[64];

static void setup(void) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };

        strcpy(dir, "/tmp/echod-test-log-XXXXXX");
        ck_assert_ptr_nonnull(mkdtemp(dir));
        snprintf(path, sizeof path, "%s/journal", dir);
        strcpy(sa.sun_path, path);
        journal = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        ck_assert_int_ge(journal, 0);
        ck_assert_int_eq(bind(journal, (struct sockaddr *) &sa, sizeof sa), 0);
        ck_assert_int_eq(setenv("ECHOD_JOURNAL_SOCKET", path, 1), 0);
        log_open(LOG_TARGET_JOURNAL);
}

static void teardown(void) {
        close(journal);
        unlink(path);
        rmdir(dir);
}

START_TEST(test_native_protocol)
{
        char buf[8192];
        ssize_t n;

        ck_assert(log_struct(LOG_WARNING, LOG_MESSAGE_ID("0123456789abcdef0123456789abcdef"),
                             "REMOTE_ADDR=%s", "192.0.2.7",
                             "%s", "",          /* prints nothing: no field */
                             "NOTE=%s", "two\nlines",
                             LOG_MESSAGE("hello %d", 42)));
        n = recv(journal, buf, sizeof buf, MSG_DONTWAIT);
        ck_assert_int_gt(n, 0);
        /* Plain fields as "KEY=value\n"; one with a newline as KEY\n, length, value, \n. */
        static const char binary[] = "NOTE\n\x09\0\0\0\0\0\0\0two\nlines\n";
        ck_assert_ptr_nonnull(memmem(buf, (size_t) n, "MESSAGE=hello 42\n", 17));
        ck_assert_ptr_nonnull(memmem(buf, (size_t) n, "PRIORITY=4\n", 11));
        ck_assert_ptr_nonnull(memmem(buf, (size_t) n, "SYSLOG_IDENTIFIER=echod\n", 24));
        ck_assert_ptr_nonnull(memmem(buf, (size_t) n, "MESSAGE_ID=0123456789abcdef0123456789abcdef\n", 44));
        ck_assert_ptr_nonnull(memmem(buf, (size_t) n, "REMOTE_ADDR=192.0.2.7\n", 22));
        ck_assert_ptr_nonnull(memmem(buf, (size_t) n, binary, sizeof binary - 1));
        ck_assert_ptr_null(memmem(buf, (size_t) n, "\n\n", 2));
}
END_TEST

START_TEST(test_full_socket_drops_and_counts)
{
        uint64_t before = log_dropped();
        int sent = 0, failed = 0;

        /* Nobody reads: the socket fills within net.unix.max_dgram_qlen
         * datagrams and every send after that fails at once. */
        for (int i = 0; i < 2000; i++) {
                if (log_struct(LOG_INFO, "N=%d", i, LOG_MESSAGE("record %d", i)))
                        sent++;
                else
                        failed++;
        }
        ck_assert_int_gt(sent, 0);
        ck_assert_int_gt(failed, 0);
        ck_assert_uint_eq(log_dropped() - before, (uint64_t) failed);
}
END_TEST

START_TEST(test_journal_gone_drops_and_counts)
{
        uint64_t before = log_dropped();

        unlink(path);
        ck_assert(!log_struct(LOG_INFO, LOG_MESSAGE("nobody there")));
        ck_assert_uint_eq(log_dropped() - before, 1);
}
END_TEST

static Suite *log_suite(void) {
        Suite *s = suite_create("log");
        TCase *tc = tcase_create("journal");

        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, test_native_protocol);
        tcase_add_test(tc, test_full_socket_drops_and_counts);
        tcase_add_test(tc, test_journal_gone_drops_and_counts);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return unit_run(log_suite());
}
