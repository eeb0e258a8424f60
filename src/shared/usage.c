/* SPDX-License-Identifier: MIT */
/* Usage errors: one message, then where to read more. */
#include <stdarg.h>
#include <stdio.h>

#include "usage.h"

int usage_error(const char *program, const char *fmt, ...) {
        va_list ap;

        fprintf(stderr, "%s: ", program);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fprintf(stderr, "\nTry '%s --help' for more information.\n", program);
        return EXIT_USAGE;
}
