/* SPDX-License-Identifier: MIT */
/* What every unit suite shares: running a suite and small assertions. */
#pragma once

#include <check.h>
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
