/* SPDX-License-Identifier: MIT */
/* Strict parsers for numbers, durations and sizes, and their formatting. */
#include <inttypes.h>
#include <stdio.h>

#include "parse.h"

int parse_uint64_prefix(const char *s, const char **end, uint64_t *ret) {
        uint64_t v = 0;
        const char *p = s;

        if (*p < '0' || *p > '9')
                return -EINVAL;
        for (; *p >= '0' && *p <= '9'; p++) {
                unsigned d = (unsigned) (*p - '0');
                if (v > (UINT64_MAX - d) / 10)
                        return -ERANGE;
                v = v * 10 + d;
        }
        *end = p;
        *ret = v;
        return 0;
}

int parse_uint64(const char *s, uint64_t *ret) {
        const char *end;
        uint64_t v;
        int r;

        if (!s)
                return -EINVAL;
        r = parse_uint64_prefix(s, &end, &v);
        if (r < 0)
                return r;
        if (*end != '\0')
                return -EINVAL;
        *ret = v;
        return 0;
}

/* parse(s), and the value must lie in min..max; *ret is untouched on failure. */
static int parse_in_range(int (*parse)(const char *, uint64_t *), const char *s,
                          uint64_t min, uint64_t max, uint64_t *ret) {
        uint64_t v;
        int r = parse(s, &v);

        if (r < 0)
                return r;
        if (v < min || v > max)
                return -ERANGE;
        *ret = v;
        return 0;
}

int parse_uint64_range(const char *s, uint64_t min, uint64_t max, uint64_t *ret) {
        return parse_in_range(parse_uint64, s, min, max, ret);
}

static int mul_add(uint64_t *acc, uint64_t v, uint64_t unit) {
        if (v > UINT64_MAX / unit)
                return -ERANGE;
        v *= unit;
        if (*acc > UINT64_MAX - v)
                return -ERANGE;
        *acc += v;
        return 0;
}

int parse_duration(const char *s, uint64_t *ret_usec) {
        static const struct { char suffix; uint64_t usec; } units[] = {
                { 's', USEC_PER_SEC },
                { 'm', 60 * USEC_PER_SEC },
                { 'h', 3600 * USEC_PER_SEC },
                { 'd', 86400 * USEC_PER_SEC },
        };
        uint64_t total = 0;
        const char *p = s;
        int r;

        if (!s || !*s)
                return -EINVAL;
        while (*p) {
                const char *end;
                uint64_t v, unit = 0;

                r = parse_uint64_prefix(p, &end, &v);
                if (r < 0)
                        return r;
                if (*end == '\0') {
                        /* A bare number is seconds, and only as the whole value or last part. */
                        unit = USEC_PER_SEC;
                        p = end;
                } else {
                        for (size_t i = 0; i < ARRAY_SIZE(units); i++)
                                if (*end == units[i].suffix)
                                        unit = units[i].usec;
                        if (unit == 0)
                                return -EINVAL;
                        p = end + 1;
                }
                r = mul_add(&total, v, unit);
                if (r < 0)
                        return r;
        }
        *ret_usec = total;
        return 0;
}

int parse_size(const char *s, uint64_t *ret) {
        const char *end;
        uint64_t v, unit = 1;
        int r;

        if (!s)
                return -EINVAL;
        r = parse_uint64_prefix(s, &end, &v);
        if (r < 0)
                return r;
        switch (*end) {
        case '\0': break;
        case 'K': unit = UINT64_C(1) << 10; end++; break;
        case 'M': unit = UINT64_C(1) << 20; end++; break;
        case 'G': unit = UINT64_C(1) << 30; end++; break;
        case 'T': unit = UINT64_C(1) << 40; end++; break;
        default: return -EINVAL;
        }
        if (*end != '\0')
                return -EINVAL;
        if (v > UINT64_MAX / unit)
                return -ERANGE;
        *ret = v * unit;
        return 0;
}

int parse_size_range(const char *s, uint64_t min, uint64_t max, uint64_t *ret) {
        return parse_in_range(parse_size, s, min, max, ret);
}

void format_duration(char *buf, size_t size, uint64_t usec) {
        uint64_t s = usec / USEC_PER_SEC;

        if (s > 0 && s % 86400 == 0)
                snprintf(buf, size, "%" PRIu64 "d", s / 86400);
        else if (s > 0 && s % 3600 == 0)
                snprintf(buf, size, "%" PRIu64 "h", s / 3600);
        else if (s > 0 && s % 60 == 0)
                snprintf(buf, size, "%" PRIu64 "m", s / 60);
        else
                snprintf(buf, size, "%" PRIu64 "s", s);
}
