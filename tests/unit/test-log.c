/* SPDX-License-Identifier: MIT */
/* Unit tests for log.c: journald's native protocol on a socket of the
 * test's own ($ECHOD_JOURNAL_SOCKET), and what a full socket costs: a
 * place in the queue, and past its bound a record, counted. */
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

/* The number N=... of the next record in the socket, or -1 when none. */
static int next_record(void) {
        char buf[8192];
        const char *f;
        ssize_t n = recv(journal, buf, sizeof buf - 1, MSG_DONTWAIT);

        if (n <= 0)
                return -1;
        buf[n] = 0;
        f = strstr(buf, "\nN=");
        ck_assert_ptr_nonnull(f);
        return atoi(f + 3);
}

START_TEST(test_full_socket_queues_in_order)
{
        uint64_t before = log_dropped();
        int expect = 0, got;

        /* Nobody reads: the socket fills within net.unix.max_dgram_qlen
         * datagrams, and the rest wait in the queue, nothing lost. */
        for (int i = 0; i < 2000; i++)
                ck_assert(log_struct(LOG_INFO, "N=%d", i, LOG_MESSAGE("record %d", i)));
        ck_assert_uint_gt(log_journal_queued(), 0);
        ck_assert_uint_lt(log_journal_queued(), 2000);
        ck_assert_uint_eq(log_dropped(), before);
        /* As journald reads, the queue goes out, in order. */
        while (expect < 2000) {
                got = next_record();
                if (got < 0) {
                        ck_assert_uint_gt(log_journal_queued(), 0);
                        (void) log_journal_flush();
                        continue;
                }
                ck_assert_int_eq(got, expect);
                expect++;
        }
        ck_assert_uint_eq(log_journal_queued(), 0);
        ck_assert_uint_eq(log_dropped(), before);
}
END_TEST

START_TEST(test_full_queue_drops_and_counts)
{
        uint64_t before = log_dropped();
        int sent = 0, failed = 0;

        /* Past the queue's bound (4,096 records) a record is dropped, counted. */
        for (int i = 0; i < 6000; i++) {
                if (log_struct(LOG_INFO, "N=%d", i, LOG_MESSAGE("record %d", i)))
                        sent++;
                else
                        failed++;
        }
        ck_assert_int_gt(sent, 4096);
        ck_assert_int_gt(failed, 0);
        ck_assert_uint_eq(log_dropped() - before, (uint64_t) failed);
        /* At exit, what journald does not take in time counts as dropped too. */
        log_journal_drain(10000);
        ck_assert_uint_eq(log_journal_queued(), 0);
        ck_assert_uint_eq(log_dropped() - before, (uint64_t) failed + 4096);
}
END_TEST

/* The status record has some 50 fields: none may be cut off. */
START_TEST(test_many_fields_all_sent)
{
        char buf[16384];
        ssize_t n;

        ck_assert(log_struct(LOG_INFO,
                             "F01=1", "F02=2", "F03=3", "F04=4", "F05=5", "F06=6", "F07=7", "F08=8", "F09=9", "F10=10",
                             "F11=11", "F12=12", "F13=13", "F14=14", "F15=15", "F16=16", "F17=17", "F18=18", "F19=19",
                             "F20=20", "F21=21", "F22=22", "F23=23", "F24=24", "F25=25", "F26=26", "F27=27", "F28=28",
                             "F29=29", "F30=30", "F31=31", "F32=32", "F33=33", "F34=34", "F35=35", "F36=36", "F37=37",
                             "F38=38", "F39=39", "F40=40", "F41=41", "F42=42", "F43=43", "F44=44", "F45=45", "F46=46",
                             "F47=47", "F48=48", "F49=49", "F50=50", "F51=51", "F52=52", "F53=53", "F54=54", "F55=55",
                             LOG_MESSAGE("many fields")));
        n = recv(journal, buf, sizeof buf - 1, MSG_DONTWAIT);
        ck_assert_int_gt(n, 0);
        buf[n] = 0;
        ck_assert_ptr_nonnull(strstr(buf, "\nF01=1\n"));
        ck_assert_ptr_nonnull(strstr(buf, "\nF55=55\n"));
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
        tcase_add_test(tc, test_full_socket_queues_in_order);
        tcase_add_test(tc, test_full_queue_drops_and_counts);
        tcase_add_test(tc, test_many_fields_all_sent);
        tcase_add_test(tc, test_journal_gone_drops_and_counts);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return unit_run(log_suite());
}
