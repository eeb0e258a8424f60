/* SPDX-License-Identifier: MIT */
/* echoc helpers: strict parsers, name resolution, address and time formatting. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

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
};

const char *bench_mode_to_string(enum bench_mode m) {
        if (m <= BENCH_NONE || m > BENCH_HOLD)
                return "none";
        return mode_names[m];
}

enum bench_mode bench_mode_from_string(const char *s) {
        for (enum bench_mode m = BENCH_RATE; m <= BENCH_HOLD; m++)
                if (strcmp(s, mode_names[m]) == 0)
                        return m;
        return BENCH_NONE;
}

int parse_count(const char *s, uint64_t min, uint64_t max, uint64_t *ret) {
        uint64_t v;
        int r;

        r = parse_uint64(s, &v);
        if (r < 0)
                return r;
        if (v < min || v > max)
                return -ERANGE;
        *ret = v;
        return 0;
}

int parse_bytes(const char *s, uint64_t min, uint64_t max, uint64_t *ret) {
        const char *end;
        uint64_t v, mult = 1;
        int r;

        r = parse_uint64_prefix(s, &end, &v);
        if (r < 0)
                return r;
        switch (*end) {
        case '\0':
                break;
        case 'k': case 'K':
                mult = UINT64_C(1) << 10;
                end++;
                break;
        case 'm': case 'M':
                mult = UINT64_C(1) << 20;
                end++;
                break;
        case 'g': case 'G':
                mult = UINT64_C(1) << 30;
                end++;
                break;
        default:
                return -EINVAL;
        }
        /* Accept "64K", "64KB", "64KiB". */
        if (mult > 1 && (strcmp(end, "iB") == 0 || strcmp(end, "B") == 0))
                end += strlen(end);
        if (*end != '\0')
                return -EINVAL;
        if (v > UINT64_MAX / mult)
                return -ERANGE;
        v *= mult;
        if (v < min || v > max)
                return -ERANGE;
        *ret = v;
        return 0;
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

const char *format_sockaddr(const struct sockaddr *sa, char *buf, size_t size) {
        char a[INET6_ADDRSTRLEN];

        if (sa->sa_family == AF_INET) {
                const struct sockaddr_in *in = (const struct sockaddr_in *) sa;
                inet_ntop(AF_INET, &in->sin_addr, a, sizeof(a));
                snprintf(buf, size, "%s:%u", a, ntohs(in->sin_port));
        } else if (sa->sa_family == AF_INET6) {
                const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *) sa;
                inet_ntop(AF_INET6, &in6->sin6_addr, a, sizeof(a));
                snprintf(buf, size, "[%s]:%u", a, ntohs(in6->sin6_port));
        } else
                snprintf(buf, size, "(family %d)", sa->sa_family);
        return buf;
}

const char *format_seconds(uint64_t usec, char *buf, size_t size) {
        if (usec % USEC_PER_SEC == 0)
                snprintf(buf, size, "%llus", (unsigned long long) (usec / USEC_PER_SEC));
        else
                snprintf(buf, size, "%.6gs", (double) usec / (double) USEC_PER_SEC);
        return buf;
}

uint64_t now_nsec(void) {
        struct timespec ts;

        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * NSEC_PER_SEC + (uint64_t) ts.tv_nsec;
}
