/* SPDX-License-Identifier: MIT */
/* How both programs complain about their command line. */
#pragma once

#include "macro.h"

/* The exit status of a bad command line, in echod(8) and echoc(1) alike. */
#define EXIT_USAGE 2

/* Prints "PROGRAM: message" and a pointer to --help on stderr.
 * Returns EXIT_USAGE, for "return usage_error(...)". */
int usage_error(const char *program, const char *fmt, ...) _printf_(2, 3);
