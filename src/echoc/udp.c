/* SPDX-License-Identifier: MIT */
/*
 * echoc's UDP side: -u line mode (each input line one datagram, retried
 * until it comes back identical) and --bench udp (a window of datagrams
 * outstanding, batched with recvmmsg/sendmmsg).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "echoc.h"

#define UDP_MAX_PAYLOAD 65507           /* IPv4's limit; IPv6 allows 65,527 */

static int udp_connect(const struct options *o, int *ret_fd) {
        struct addrinfo hints = { .ai_family = o->family, .ai_socktype = SOCK_DGRAM, .ai_protocol = IPPROTO_UDP };
        struct addrinfo *ai = NULL;
        int r, fd = -1;

        r = getaddrinfo(o->host, o->port, &hints, &ai);
        if (r != 0) {
                if (r == EAI_SERVICE)
                        log_msg("unknown port or service '%s'", o->port);
                else
                        log_msg("cannot resolve '%s': %s", o->host, r == EAI_SYSTEM ? strerror(errno) : gai_strerror(r));
                return EXIT_CONNECT;
        }
        for (struct addrinfo *a = ai; a; a = a->ai_next) {
                fd = socket(a->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
                if (fd < 0)
                        continue;
                if (connect(fd, a->ai_addr, a->ai_addrlen) == 0)
                        break;
                fd = safe_close(fd);
        }
        freeaddrinfo(ai);
        if (fd < 0) {
                log_msg("cannot reach %s port %s: %s", o->host, o->port, strerror(errno));
                return EXIT_CONNECT;
        }
        *ret_fd = fd;
        return EXIT_OK;
}

/* ---- line mode ---- */

/* Sends line until an identical datagram comes back. Returns EXIT_OK,
 * EXIT_MISMATCH (only other payloads came back), EXIT_TIMEOUT, EXIT_CONNECT
 * (ICMP port unreachable) or EXIT_IO. */
static int udp_line(int fd, const struct options *o, const char *line, size_t len, char *buf) {
        bool other = false;

        for (uint64_t attempt = 0; attempt <= o->retries; attempt++) {
                uint64_t deadline = now_usec(CLOCK_MONOTONIC) + o->timeout_usec;

                if (send(fd, line, len, MSG_NOSIGNAL) < 0) {
                        if (errno == ECONNREFUSED)
                                continue;       /* an earlier datagram's ICMP error */
                        log_msg("cannot send: %s", strerror(errno));
                        return EXIT_IO;
                }
                for (;;) {
                        uint64_t now = now_usec(CLOCK_MONOTONIC);
                        struct pollfd p = { .fd = fd, .events = POLLIN };
                        ssize_t n;

                        if (now >= deadline)
                                break;
                        int pr = poll(&p, 1, (int) ((deadline - now + 999) / 1000));
                        if (pr < 0 && errno == EINTR)
                                continue;
                        if (pr <= 0)
                                break;
                        n = recv(fd, buf, UDP_MAX_PAYLOAD + 21, MSG_DONTWAIT | MSG_TRUNC);
                        if (n < 0) {
                                if (errno == EINTR || errno == EAGAIN)
                                        continue;
                                if (errno == ECONNREFUSED) {
                                        log_msg("%s port %s: connection refused (nothing listens there)", o->host, o->port);
                                        return EXIT_CONNECT;
                                }
                                log_msg("cannot receive: %s", strerror(errno));
                                return EXIT_IO;
                        }
                        /* A late copy of an earlier line's echo is not this line's. */
                        if ((size_t) n == len && memcmp(buf, line, len) == 0) {
                                if (loop_write(STDOUT_FILENO, buf, len) < 0)
                                        return EXIT_IO;
                                return EXIT_OK;
                        }
                        other = true;
                }
        }
        log_msg("no identical echo of a %zu-byte line after %" PRIu64 " attempt%s", len, o->retries + 1,
                o->retries == 0 ? "" : "s");
        return other ? EXIT_MISMATCH : EXIT_TIMEOUT;
}

int run_udp_lines(const struct options *o) {
        _cleanup_close_ int fd = -1;
        _cleanup_free_ char *line = NULL, *buf = malloc(UDP_MAX_PAYLOAD + 64);
        size_t cap = 0;
        ssize_t len;
        int worst = EXIT_OK, r;

        if (!buf)
                return EXIT_IO;
        r = udp_connect(o, &fd);
        if (r != EXIT_OK)
                return r;
        while ((len = getline(&line, &cap, stdin)) >= 0) {
                if ((size_t) len > UDP_MAX_PAYLOAD) {
                        log_msg("a %zd-byte line does not fit in one datagram (at most %d bytes)", len, UDP_MAX_PAYLOAD);
                        worst = EXIT_IO;
                        continue;
                }
                r = udp_line(fd, o, line, (size_t) len, buf);
                if (r == EXIT_CONNECT || r == EXIT_IO)
                        return r;
                if (r != EXIT_OK && worst == EXIT_OK)
                        worst = r;
        }
        return worst;
}

/* ---- bench ---- */

#define BATCH 64

struct slot {
        uint64_t seq;                   /* 0 = free */
        uint64_t sent;
};

static void fill(char *p, size_t size, uint64_t seq) {
        memset(p, (int) ('a' + seq % 26), size);
        memcpy(p, &seq, size < sizeof seq ? size : sizeof seq);
}

static int cmp_u32(const void *a, const void *b) {
        uint32_t x = *(const uint32_t *) a, y = *(const uint32_t *) b;
        return x < y ? -1 : x > y;
}

int run_bench_udp(const struct options *o) {
        _cleanup_close_ int fd = -1;
        size_t window = (size_t) o->concurrency, size = (size_t) o->size, n_lat = 0, cap_lat = 1 << 16;
        uint64_t seq = 0, sent = 0, received = 0, lost = 0, errors = 0, start, end, now;
        uint64_t loss_after = o->timeout_usec < USEC_PER_SEC ? o->timeout_usec : USEC_PER_SEC;
        struct slot *slots = calloc(window, sizeof *slots);
        uint32_t *lat = malloc(cap_lat * sizeof *lat);
        char *out = malloc(size), *in = malloc((size_t) BATCH * (UDP_MAX_PAYLOAD + 64)), *expect = malloc(size);
        struct mmsghdr msgs[BATCH];
        struct iovec iovs[BATCH];
        int r;

        if (!slots || !lat || !out || !in || !expect)
                return EXIT_IO;
        if (size > UDP_MAX_PAYLOAD) {
                log_msg("--size: at most %d bytes for udp", UDP_MAX_PAYLOAD);
                return EXIT_USAGE;
        }
        r = udp_connect(o, &fd);
        if (r != EXIT_OK)
                return r;
        (void) fd_set_nonblock(fd, true);
        int buf = 4 << 20;
        (void) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
        (void) setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);

        start = now_usec(CLOCK_MONOTONIC);
        end = o->duration_usec ? start + o->duration_usec : UINT64_MAX;
        for (now = start; now < end && (o->requests == 0 || received + lost < o->requests); now = now_usec(CLOCK_MONOTONIC)) {
                /* Every free slot gets a datagram; one outstanding too long is lost. */
                for (size_t i = 0; i < window; i++) {
                        struct slot *s = &slots[i];
                        if (s->seq && now - s->sent > loss_after) {
                                lost++;
                                s->seq = 0;
                        }
                        if (s->seq)
                                continue;
                        s->seq = ++seq * window + i;    /* its slot is seq % window */
                        s->sent = now;
                        fill(out, size, s->seq);
                        if (send(fd, out, size, MSG_NOSIGNAL) < 0) {
                                s->seq = 0;
                                if (errno != EAGAIN && errno != ENOBUFS && errno != ECONNREFUSED && errno != EINTR) {
                                        log_msg("cannot send: %s", strerror(errno));
                                        return EXIT_IO;
                                }
                                break;
                        }
                        sent++;
                }
                struct pollfd p = { .fd = fd, .events = POLLIN };
                if (poll(&p, 1, 10) <= 0)
                        continue;
                for (int i = 0; i < BATCH; i++) {
                        iovs[i] = (struct iovec) { in + (size_t) i * (UDP_MAX_PAYLOAD + 64), UDP_MAX_PAYLOAD + 64 };
                        msgs[i].msg_hdr = (struct msghdr) { .msg_iov = &iovs[i], .msg_iovlen = 1 };
                }
                int n = recvmmsg(fd, msgs, BATCH, MSG_DONTWAIT, NULL);
                if (n < 0)
                        continue;       /* EAGAIN, or an ICMP error: the datagram counts as lost */
                now = now_usec(CLOCK_MONOTONIC);
                for (int i = 0; i < n; i++) {
                        const char *p2 = iovs[i].iov_base;
                        uint64_t got = 0;
                        size_t len = msgs[i].msg_len;

                        memcpy(&got, p2, len < sizeof got ? len : sizeof got);
                        struct slot *s = len >= sizeof got || len == size ? &slots[got % window] : NULL;
                        fill(expect, size, got);
                        if (!s || s->seq != got || len != size || memcmp(p2, expect, size) != 0) {
                                /* A late echo of a datagram counted lost is no error. */
                                if (!(s && got < s->seq && len == size && memcmp(p2, expect, size) == 0))
                                        errors++;
                                continue;
                        }
                        if (n_lat == cap_lat) {
                                uint32_t *nl = realloc(lat, 2 * cap_lat * sizeof *lat);
                                if (!nl)
                                        return EXIT_IO;
                                lat = nl;
                                cap_lat *= 2;
                        }
                        lat[n_lat++] = (uint32_t) (now - s->sent);
                        received++;
                        s->seq = 0;
                }
        }
        /* Datagrams still on their way at the end are neither lost nor echoed. */
        now = now_usec(CLOCK_MONOTONIC);

        double secs = (double) (now - start) / USEC_PER_SEC, rate = secs > 0 ? (double) received / secs : 0;
        double loss = sent ? (double) lost / (double) sent : 0;
        qsort(lat, n_lat, sizeof *lat, cmp_u32);
#define PCT(q) (n_lat ? (double) lat[(size_t) ((double) (n_lat - 1) * (q))] : 0.0)
        if (o->json)
                printf("{\"mode\":\"udp\",\"target\":\"%s:%s\",\"concurrency\":%zu,\"size\":%zu,\"seconds\":%.3f,"
                       "\"sent\":%" PRIu64 ",\"received\":%" PRIu64 ",\"lost\":%" PRIu64 ",\"loss\":%.6f,"
                       "\"datagrams_per_s\":%.1f,\"latency_us\":{\"count\":%zu,\"p50\":%.0f,\"p90\":%.0f,\"p99\":%.0f,\"max\":%.0f},"
                       "\"errors\":{\"total\":%" PRIu64 ",\"mismatch\":%" PRIu64 "}}\n",
                       o->host, o->port, window, size, secs, sent, received, lost, loss, rate,
                       n_lat, PCT(0.5), PCT(0.9), PCT(0.99), PCT(1.0), errors, errors);
        else
                printf("udp %s port %s: %.0f datagrams/s (%" PRIu64 " of %" PRIu64 " echoed and verified in %.2f s, %zu outstanding, %zu B), "
                       "loss %.3f%%, latency p50 %.0f us p90 %.0f us p99 %.0f us max %.0f us, errors %" PRIu64 "\n",
                       o->host, o->port, rate, received, sent, secs, window, size, loss * 100,
                       PCT(0.5), PCT(0.9), PCT(0.99), PCT(1.0), errors);
        free(slots);
        free(lat);
        free(out);
        free(in);
        free(expect);
        return errors ? EXIT_MISMATCH : received ? EXIT_OK : EXIT_TIMEOUT;
}
