/* SPDX-License-Identifier: MIT */
/*
 * echoc: what the command line (main.c), the line mode (line.c) and the
 * load generator (bench.c) share: options, exit codes, and echoc's own
 * helpers in util.c (messages, its duration syntax, name resolution).
 * Numbers, sizes, addresses and clocks come from src/shared.
 */
#pragma once

#include <netdb.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>

#include "addr.h"
#include "fd-util.h"
#include "macro.h"
#include "parse.h"
#include "usage.h"

/* Exit codes, documented in echoc(1); EXIT_USAGE (2) is usage.h's. */
enum {
        EXIT_OK = 0,
        EXIT_MISMATCH = 1,      /* echo differed, was short or had extra bytes; bench: errors were counted */
        EXIT_CONNECT = 3,       /* name resolution or connection failure */
        EXIT_TIMEOUT = 4,       /* connect or echo timed out */
        EXIT_IO = 5,            /* connection reset, or local I/O / resource failure */
};

enum bench_mode {
        BENCH_NONE,
        BENCH_RATE,
        BENCH_STREAM,
        BENCH_LATENCY,
        BENCH_HOLD,
        BENCH_UDP,
};

/* --proxy: the PROXY protocol header sent before anything else. */
enum proxy_mode {
        PROXY_NONE,
        PROXY_V1,
        PROXY_V2,
        PROXY_LOCAL,            /* a v2 LOCAL header: a balancer's health check */
};

struct options {
        int family;                     /* AF_UNSPEC, AF_INET or AF_INET6 */
        uint64_t timeout_usec;          /* connect / no-progress timeout */
        const char *host;
        const char *port;
        enum bench_mode mode;
        uint64_t concurrency;
        uint64_t size;
        uint64_t duration_usec;         /* 0 = not given */
        uint64_t requests;              /* 0 = not given */
        bool json;
        const char *source;             /* bench: local address to connect from */
        bool udp;                       /* -u: datagrams (line mode) */
        uint64_t retries;               /* -u: resends of a datagram that did not come back */
        enum proxy_mode proxy;
        struct sockaddr_any proxy_source;       /* the client the header names; family 0 = our own address */
};

#define DEFAULT_PORT "7"
#define DEFAULT_TIMEOUT_USEC (10 * USEC_PER_SEC)
#define DEFAULT_DURATION_USEC (5 * USEC_PER_SEC)

extern const char *program_name;

/* "message\n" on stderr, prefixed with the program name. */
void log_msg(const char *fmt, ...) _printf_(1, 2);

const char *bench_mode_to_string(enum bench_mode m);
enum bench_mode bench_mode_from_string(const char *s);

/* Seconds, optionally fractional ("0.5"), or with a unit: "250ms", "2s", "1m".
 * Returns 0, -EINVAL or -ERANGE. */
int parse_seconds(const char *s, uint64_t *ret_usec);

/* getaddrinfo() for a TCP peer. Returns EXIT_OK, or EXIT_CONNECT after saying why. */
int resolve_host(const char *host, const char *port, int family, struct addrinfo **ret);

/* Formats a duration in microseconds as e.g. "10s" or "1.5s". */
const char *format_seconds(uint64_t usec, char *buf, size_t size);

static inline void freeaddrinfop(struct addrinfo **ai) {
        if (*ai)
                freeaddrinfo(*ai);
}

/* Mode entry points; each returns an exit code and has logged why. */
int run_pipe(const struct options *o);
int run_bench(const struct options *o);
int run_udp_lines(const struct options *o);
int run_bench_udp(const struct options *o);

const char *proxy_mode_to_string(enum proxy_mode m);
enum proxy_mode proxy_mode_from_string(const char *s);
/* The header of mode for a connection from src to dst into buf. Returns
 * its length or -errno. */
ssize_t proxy_header_format(enum proxy_mode mode, const struct sockaddr_any *src, const struct sockaddr_any *dst,
                            uint8_t *buf, size_t size);
/* Sends o's header (if any) on fd, just connected to dst; with more, as
 * the start of a segment that the data sent next completes (MSG_MORE).
 * Returns 0 or -errno. */
int proxy_header_send(const struct options *o, int fd, const struct sockaddr_any *dst, bool more);
