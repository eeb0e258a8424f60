/* SPDX-License-Identifier: MIT */
/* Unit tests for status.c's record budget: which connection records are
 * written, what is counted for the summary, and when the summary is due. */
#include <string.h>

#include "log.h"
#include "master.h"
#include "status.h"
#include "unit.h"
#include "worker.h"

#define T0 (1000 * USEC_PER_SEC)

static struct master *master_new(const char *config) {
        static struct master m;
        struct strv errors = {};

        memset(&m, 0, sizeof m);
        log_open(LOG_TARGET_NONE);      /* every record is "taken" */
        ck_assert_int_eq(config_load_text("t.conf", config, strlen(config), &m.cfg, &errors), 0);
        return &m;
}

static void end(struct master *m, enum close_reason reason, uint64_t bytes, uint64_t now) {
        struct conn_record r = {
                .host = "192.0.2.7", .remote_port = 4000, .local_port = 7, .pid = 42,
                .reason = close_reason_to_string(reason), .bytes_known = true, .bytes = bytes,
        };

        status_conn_record(m, &r, reason, now);
}

static uint64_t unlogged_total(const struct master *m) {
        uint64_t n = 0;

        for (int i = 0; i < _CLOSE_REASON_MAX; i++)
                n += m->unlogged[i];
        return n;
}

START_TEST(test_within_budget_nothing_is_counted)
{
        struct master *m = master_new("log_rate = 10\nlog_rate_burst = 5\n");

        for (int i = 0; i < 5; i++)
                end(m, CLOSE_EOF, 100, T0);
        ck_assert_uint_eq(unlogged_total(m), 0);
        ck_assert_uint_eq(m->summary_due, 0);
        ck_assert_uint_eq(status_next_flush(m), USEC_INFINITY);
        config_free(m->cfg);
}
END_TEST

START_TEST(test_over_budget_counted_by_reason_and_summed_up)
{
        struct master *m = master_new("log_rate = 10\nlog_rate_burst = 5\n");

        /* A burst of 5 is written; the next 7 at the same moment are counted. */
        for (int i = 0; i < 10; i++)
                end(m, CLOSE_EOF, 100, T0);
        end(m, CLOSE_IDLE_TIMEOUT, 3, T0);
        end(m, CLOSE_KILLED, 0, T0);
        ck_assert_uint_eq(m->unlogged[CLOSE_EOF], 5);
        ck_assert_uint_eq(m->unlogged_bytes[CLOSE_EOF], 500);
        ck_assert_uint_eq(m->unlogged[CLOSE_IDLE_TIMEOUT], 1);
        ck_assert_uint_eq(m->unlogged_bytes[CLOSE_IDLE_TIMEOUT], 3);
        ck_assert_uint_eq(m->unlogged[CLOSE_KILLED], 1);
        /* Due 10 s after the first one held back, not sooner. */
        ck_assert_uint_eq(status_next_flush(m), T0 + 10 * USEC_PER_SEC);
        status_flush_refusals(m, T0 + 9 * USEC_PER_SEC);
        ck_assert_uint_eq(unlogged_total(m), 7);
        /* A token a second later: one more record is written. */
        end(m, CLOSE_EOF, 100, T0 + USEC_PER_SEC / 10);
        ck_assert_uint_eq(m->unlogged[CLOSE_EOF], 5);
        status_flush_refusals(m, T0 + 10 * USEC_PER_SEC);
        ck_assert_uint_eq(unlogged_total(m), 0);
        ck_assert_uint_eq(m->unlogged_bytes[CLOSE_EOF], 0);
        ck_assert_uint_eq(m->summary_due, 0);
        ck_assert_uint_eq(status_next_flush(m), USEC_INFINITY);
        config_free(m->cfg);
}
END_TEST

START_TEST(test_no_budget_and_forced_summary)
{
        struct master *m = master_new("log_rate = 0\n");

        for (int i = 0; i < 10000; i++)
                end(m, CLOSE_EOF, 1, T0);
        ck_assert_uint_eq(unlogged_total(m), 0);
        config_free(m->cfg);
        m = master_new("log_rate = 1\nlog_rate_burst = 1\n");
        end(m, CLOSE_EOF, 1, T0);
        end(m, CLOSE_RESET, 1, T0);
        ck_assert_uint_eq(m->unlogged[CLOSE_RESET], 1);
        /* At the stop: said at once. */
        status_flush_summary(m, T0 + 1, true);
        ck_assert_uint_eq(unlogged_total(m), 0);
        config_free(m->cfg);
}
END_TEST

START_TEST(test_open_records_spend_tokens_but_are_not_counted)
{
        struct master *m = master_new("log_rate = 1\nlog_rate_burst = 2\n");
        struct conn_record open = { .host = "192.0.2.7", .open = true };

        status_conn_record(m, &open, CLOSE_EOF, T0);
        status_conn_record(m, &open, CLOSE_EOF, T0);
        status_conn_record(m, &open, CLOSE_EOF, T0);
        ck_assert_uint_eq(unlogged_total(m), 0);
        end(m, CLOSE_EOF, 1, T0);
        ck_assert_uint_eq(m->unlogged[CLOSE_EOF], 1);
        config_free(m->cfg);
}
END_TEST

static Suite *status_suite(void) {
        Suite *s = suite_create("status");
        TCase *tc = tcase_create("budget");

        tcase_add_test(tc, test_within_budget_nothing_is_counted);
        tcase_add_test(tc, test_over_budget_counted_by_reason_and_summed_up);
        tcase_add_test(tc, test_no_budget_and_forced_summary);
        tcase_add_test(tc, test_open_records_spend_tokens_but_are_not_counted);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return unit_run(status_suite());
}
