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
 * Tests that show a known, reported bug in src/ go in a TCase that is added
 * only when ECHOD_UNIT_KNOWN_BUGS is set, so that the suite stays green while
 * the bug is open and anyone can reproduce it:
 *     ECHOD_UNIT_KNOWN_BUGS=1 BUILDDIR/tests/unit/test-addr
 * Once the bug is fixed, move the test into its regular TCase (each suite
 * keeps its fixed bugs in a "regressions" TCase).
 */
static inline bool unit_known_bugs(void) {
        return getenv("ECHOD_UNIT_KNOWN_BUGS") != NULL;
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
