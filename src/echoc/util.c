/* SPDX-License-Identifier: MIT */
/* echoc's own helpers: messages, mode names, its duration syntax, name resolution. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "echoc.h"

const char *program_name = "echoc";

void log_msg(const char *fmt, ...) {
        va_list ap;

        fprintf(stderr, "%s: ", program_name);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
}

static const char *const mode_names[] = {
        [BENCH_RATE] = "rate",
        [BENCH_STREAM] = "stream",
        [BENCH_LATENCY] = "latency",
        [BENCH_HOLD] = "hold",
        [BENCH_UDP] = "udp",
};

const char *bench_mode_to_string(enum bench_mode m) {
        if (m <= BENCH_NONE || m > BENCH_UDP)
                return "none";
        return mode_names[m];
}

enum bench_mode bench_mode_from_string(const char *s) {
        for (enum bench_mode m = BENCH_RATE; m <= BENCH_UDP; m++)
                if (strcmp(s, mode_names[m]) == 0)
                        return m;
        return BENCH_NONE;
}

int parse_seconds(const char *s, uint64_t *ret_usec) {
        const char *end;
        uint64_t whole, frac = 0, frac_scale = 1, unit = USEC_PER_SEC;
        int r;

        r = parse_uint64_prefix(s, &end, &whole);
        if (r < 0)
                return r;
        if (*end == '.') {
                end++;
                if (*end < '0' || *end > '9')
                        return -EINVAL;
                /* Keep microsecond precision; ignore (but accept) further digits. */
                for (; *end >= '0' && *end <= '9'; end++)
                        if (frac_scale < USEC_PER_SEC) {
                                frac = frac * 10 + (uint64_t) (*end - '0');
                                frac_scale *= 10;
                        }
        }
        if (strcmp(end, "") == 0 || strcmp(end, "s") == 0)
                unit = USEC_PER_SEC;
        else if (strcmp(end, "ms") == 0)
                unit = 1000;
        else if (strcmp(end, "m") == 0 || strcmp(end, "min") == 0)
                unit = 60 * USEC_PER_SEC;
        else if (strcmp(end, "h") == 0)
                unit = 3600 * USEC_PER_SEC;
        else
                return -EINVAL;

        /* One year is far beyond any sensible timeout or run time. */
        if (whole > UINT64_C(366) * 24 * 3600 * USEC_PER_SEC / unit)
                return -ERANGE;
        *ret_usec = whole * unit + frac * unit / frac_scale;
        return 0;
}

int resolve_host(const char *host, const char *port, int family, struct addrinfo **ret) {
        struct addrinfo hints = {
                .ai_family = family,
                .ai_socktype = SOCK_STREAM,
                .ai_protocol = IPPROTO_TCP,
        };

        /* No AI_ADDRCONFIG: it hides ::1 on hosts whose only IPv6 address is loopback. */
        int r = getaddrinfo(host, port, &hints, ret);

        if (r == 0)
                return EXIT_OK;
        if (r == EAI_SERVICE)
                log_msg("unknown port or service '%s'", port);
        else
                log_msg("cannot resolve '%s': %s", host, r == EAI_SYSTEM ? strerror(errno) : gai_strerror(r));
        return EXIT_CONNECT;
}

const char *format_seconds(uint64_t usec, char *buf, size_t size) {
        if (usec % USEC_PER_SEC == 0)
                snprintf(buf, size, "%llus", (unsigned long long) (usec / USEC_PER_SEC));
        else
                snprintf(buf, size, "%.6gs", (double) usec / (double) USEC_PER_SEC);
        return buf;
}
