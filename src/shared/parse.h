/* SPDX-License-Identifier: MIT */
/* Strict parsers: no sign, no spaces, no base prefix; the whole string must match. */
#pragma once

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#include "macro.h"

/* Parses the leading decimal digits of s (at least one); *end points past
 * them. Returns 0, -EINVAL or -ERANGE. */
int parse_uint64_prefix(const char *s, const char **end, uint64_t *ret);

/* Parses a decimal unsigned integer; the whole string must be digits.
 * Returns 0, -EINVAL or -ERANGE. */
int parse_uint64(const char *s, uint64_t *ret);

/* As parse_uint64(), and the value must lie in min..max (else -ERANGE). */
int parse_uint64_range(const char *s, uint64_t min, uint64_t max, uint64_t *ret);

/* "300", "30s", "5m", "2h", "1d", optionally combined ("1h30m").
 * Returns 0, -EINVAL or -ERANGE. */
int parse_duration(const char *s, uint64_t *ret_usec);

/* "1048576", "512K", "64M", "1G", "1T" (powers of 1024). */
int parse_size(const char *s, uint64_t *ret);
/* As parse_size(), and the value must lie in min..max (else -ERANGE). */
int parse_size_range(const char *s, uint64_t min, uint64_t max, uint64_t *ret);

/* Formats a duration in the shortest exact form parse_duration accepts. */
void format_duration(char *buf, size_t size, uint64_t usec);
