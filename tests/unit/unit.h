/* SPDX-License-Identifier: MIT */
/* What every unit suite shares: running a suite and small assertions. */
#pragma once

#include <check.h>
#include <stdbool.h>
#include <stdlib.h>

/* Runs s in fork mode (unless CK_FORK=no) and returns the exit status. */
static inline int unit_run(Suite *s) {
        SRunner *sr = srunner_create(s);
        int failed;

        srunner_run_all(sr, CK_ENV);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

/*
 * ck_assert*() records its location with a write() on every call, even when
 * it passes; in loops of many thousand checks use this one, which only
 * calls into Check on failure.
 */
#define unit_assert(cond, ...) do {                                     \
                if (!(cond))                                            \
                        ck_abort_msg(__VA_ARGS__);                      \
        } while (0)
