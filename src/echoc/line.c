/* SPDX-License-Identifier: MIT */
/*
 * echoc line mode: connect, send standard input a line at a time, print
 * what comes back, half-close at end of input, and verify the echo byte
 * for byte. Full duplex through poll(): the socket is always read while
 * input is sent, so a long pipe never deadlocks against the server's
 * buffers. At most WINDOW bytes are in flight (sent, not yet echoed).
 * A byte beyond what was sent cannot be an echo: the first one ends the
 * conversation at once, however much more the server would send.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "echoc.h"

#define WINDOW (256 * 1024)
#define RBUF   (64 * 1024)

/* Connects one address within timeout. Returns the socket or -errno. */
static int connect_one(const struct addrinfo *ai, uint64_t timeout_usec) {
        _cleanup_(closep) int fd = -1;
        int err = 0;
        socklen_t len = sizeof(err);

        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
        if (fd < 0)
                return -errno;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
                if (errno != EINPROGRESS)
                        return -errno;

                uint64_t deadline = now_usec(CLOCK_MONOTONIC) + timeout_usec;
                for (;;) {
                        struct pollfd p = { .fd = fd, .events = POLLOUT };
                        uint64_t now = now_usec(CLOCK_MONOTONIC);
                        if (now >= deadline)
                                return -ETIMEDOUT;
                        int ms = (int) ((deadline - now + USEC_PER_MSEC - 1) / USEC_PER_MSEC);
                        int n = poll(&p, 1, ms);
                        if (n < 0 && errno == EINTR)
                                continue;
                        if (n < 0)
                                return -errno;
                        if (n > 0)
                                break;
                }
                if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
                        return -errno;
                if (err != 0)
                        return -err;
        }
        int r = fd;
        fd = -1;
        return r;
}

static void describe_byte(char *buf, size_t size, int c) {
        if (c == '\n')
                snprintf(buf, size, "'\\n' (0x0a)");
        else if (c >= 0x20 && c < 0x7f)
                snprintf(buf, size, "'%c' (0x%02x)", c, c);
        else
                snprintf(buf, size, "0x%02x", c);
}

struct session {
        int fd;
        char peer[ADDR_STR_MAX];

        /* buf[0..verified) is free, [verified..sent) awaits its echo,
         * [sent..filled) is read from stdin but not yet sent. */
        unsigned char *buf;
        size_t verified, sent, filled;

        uint64_t total_sent, total_recv;
        uint64_t lines_recv;            /* newlines received up to the first extra byte */
        bool stdin_eof, shut, peer_eof;

        bool mismatch;                  /* a byte differed */
        uint64_t mismatch_offset, mismatch_line;
        int mismatch_sent, mismatch_got;

        bool extra;                     /* more came back than was sent */
        uint64_t extra_offset, extra_line;
        int extra_got;
};

/* Compares echoed bytes with what was sent; records the first difference
 * and the first byte beyond what was sent. */
static void verify(struct session *s, const unsigned char *data, size_t n) {
        size_t expect = s->sent - s->verified;
        size_t k = n < expect ? n : expect;
        const unsigned char *want = s->buf + s->verified;

        for (size_t i = 0; i < k; i++) {
                if (!s->mismatch && data[i] != want[i]) {
                        s->mismatch = true;
                        s->mismatch_offset = s->total_recv + i;
                        s->mismatch_line = s->lines_recv + 1;
                        s->mismatch_sent = want[i];
                        s->mismatch_got = data[i];
                }
                if (data[i] == '\n')
                        s->lines_recv++;
        }
        if (n > k && !s->extra) {
                s->extra = true;
                s->extra_offset = s->total_recv + k;
                s->extra_line = s->lines_recv + 1;
                s->extra_got = data[k];
        }
        s->verified += k;
        s->total_recv += n;
        if (s->verified == s->sent && s->sent == s->filled)
                s->verified = s->sent = s->filled = 0;
}

/* End of what may be sent now: whole lines, or everything at end of input
 * or when the window is full (a line longer than the window). */
static size_t sendable_end(const struct session *s) {
        if (s->stdin_eof || s->filled == WINDOW)
                return s->filled;
        const unsigned char *nl = memrchr(s->buf + s->sent, '\n', s->filled - s->sent);
        return nl ? (size_t) (nl - s->buf) + 1 : s->sent;
}

static int report(const struct session *s) {
        char a[32], b[32];

        if (s->mismatch) {
                describe_byte(a, sizeof(a), s->mismatch_sent);
                describe_byte(b, sizeof(b), s->mismatch_got);
                log_msg("echo differs at byte %" PRIu64 " (line %" PRIu64 "): sent %s, received %s "
                        "(%" PRIu64 " bytes sent, %" PRIu64 " received)",
                        s->mismatch_offset + 1, s->mismatch_line, a, b, s->total_sent, s->total_recv);
        }
        if (s->extra) {
                describe_byte(b, sizeof(b), s->extra_got);
                log_msg("echo has extra bytes: %" PRIu64 " bytes sent, %" PRIu64 " received; the first "
                        "unexpected byte, %s, is byte %" PRIu64 " (line %" PRIu64 "); stopped reading",
                        s->total_sent, s->total_recv, b, s->extra_offset + 1, s->extra_line);
        }
        if (s->mismatch || s->extra)
                return EXIT_MISMATCH;
        if (s->total_recv < s->total_sent || !s->stdin_eof) {
                log_msg("short echo: %s closed the connection after echoing %" PRIu64 " of %" PRIu64
                        " bytes sent%s", s->peer, s->total_recv, s->total_sent,
                        s->stdin_eof ? "" : " (input was not finished)");
                return EXIT_MISMATCH;
        }
        return EXIT_OK;
}

static int converse(struct session *s, uint64_t timeout_usec) {
        _cleanup_(freep) unsigned char *rbuf = malloc(RBUF);
        uint64_t last_progress = now_usec(CLOCK_MONOTONIC);
        char t[32];

        if (!rbuf) {
                log_msg("out of memory");
                return EXIT_IO;
        }

        while (!s->peer_eof) {
                struct pollfd p[2] = {
                        { .fd = -1, .events = POLLIN },
                        { .fd = s->fd, .events = POLLIN },
                };
                size_t end = sendable_end(s);
                bool waiting = s->sent > s->verified || s->shut;

                if (!s->stdin_eof && !s->shut && s->filled < WINDOW)
                        p[0].fd = STDIN_FILENO;
                if (end > s->sent)
                        p[1].events |= POLLOUT;

                /* The clock runs only while we wait on the network, not on the user. */
                int ms = -1;
                if (waiting || end > s->sent) {
                        uint64_t now = now_usec(CLOCK_MONOTONIC), deadline = last_progress + timeout_usec;
                        if (now >= deadline) {
                                log_msg("timed out after %s waiting for %s (%" PRIu64 " bytes sent, %"
                                        PRIu64 " echoed)", format_seconds(timeout_usec, t, sizeof(t)),
                                        s->peer, s->total_sent, s->total_recv);
                                return EXIT_TIMEOUT;
                        }
                        ms = (int) ((deadline - now + USEC_PER_MSEC - 1) / USEC_PER_MSEC);
                }

                int n = poll(p, 2, ms);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        log_msg("poll: %m");
                        return EXIT_IO;
                }
                /* The wait was on the user: start the clock now. */
                if (ms < 0)
                        last_progress = now_usec(CLOCK_MONOTONIC);

                if (p[1].revents & (POLLIN | POLLHUP | POLLERR)) {
                        ssize_t k = recv(s->fd, rbuf, RBUF, MSG_DONTWAIT);
                        if (k < 0 && errno != EAGAIN && errno != EINTR) {
                                log_msg("connection to %s: %m (%" PRIu64 " bytes sent, %" PRIu64 " echoed)",
                                        s->peer, s->total_sent, s->total_recv);
                                return EXIT_IO;
                        }
                        if (k == 0)
                                s->peer_eof = true;
                        if (k > 0) {
                                last_progress = now_usec(CLOCK_MONOTONIC);
                                verify(s, rbuf, (size_t) k);
                                int r = loop_write(STDOUT_FILENO, rbuf, (size_t) k);
                                if (r < 0) {
                                        errno = -r;
                                        log_msg("write to standard output: %m");
                                        return EXIT_IO;
                                }
                                /* Reading on could last for ever (a server that streams). */
                                if (s->extra)
                                        return report(s);
                        }
                }

                if (!s->peer_eof && (p[1].revents & POLLOUT) && end > s->sent) {
                        ssize_t k = send(s->fd, s->buf + s->sent, end - s->sent, MSG_NOSIGNAL | MSG_DONTWAIT);
                        if (k < 0 && errno != EAGAIN && errno != EINTR) {
                                log_msg("connection to %s: %m (%" PRIu64 " bytes sent, %" PRIu64 " echoed)",
                                        s->peer, s->total_sent, s->total_recv);
                                return EXIT_IO;
                        }
                        if (k > 0) {
                                last_progress = now_usec(CLOCK_MONOTONIC);
                                s->sent += (size_t) k;
                                s->total_sent += (uint64_t) k;
                        }
                }

                if (p[0].fd >= 0 && (p[0].revents & (POLLIN | POLLHUP | POLLERR | POLLNVAL))) {
                        ssize_t k = read(STDIN_FILENO, s->buf + s->filled, WINDOW - s->filled);
                        if (k < 0 && errno != EAGAIN && errno != EINTR) {
                                log_msg("read standard input: %m");
                                return EXIT_IO;
                        }
                        if (k == 0)
                                s->stdin_eof = true;
                        if (k > 0)
                                s->filled += (size_t) k;
                }

                /* Slide the window once half of it is echoed, or when it is full. */
                if (s->verified >= WINDOW / 2 || (s->filled == WINDOW && s->verified > 0)) {
                        memmove(s->buf, s->buf + s->verified, s->filled - s->verified);
                        s->sent -= s->verified;
                        s->filled -= s->verified;
                        s->verified = 0;
                }

                if (s->stdin_eof && !s->shut && s->sent == s->filled) {
                        if (shutdown(s->fd, SHUT_WR) < 0) {
                                log_msg("shutdown: %m");
                                return EXIT_IO;
                        }
                        s->shut = true;
                        last_progress = now_usec(CLOCK_MONOTONIC);
                }
        }
        return report(s);
}

int run_pipe(const struct options *o) {
        _cleanup_(freeaddrinfop) struct addrinfo *ai = NULL;
        _cleanup_(freep) unsigned char *buf = NULL;
        _cleanup_(closep) int fd = -1;
        struct session s = {};
        char addr[ADDR_STR_MAX], t[32];
        int r, last = 0;

        /* Standard output may be a pipe that closes early: report EPIPE, do not die. */
        signal(SIGPIPE, SIG_IGN);

        r = resolve_host(o->host, o->port, o->family, &ai);
        if (r != EXIT_OK)
                return r;

        for (const struct addrinfo *a = ai; a; a = a->ai_next) {
                struct sockaddr_any sa = {};

                (void) sockaddr_set(&sa, a->ai_addr, a->ai_addrlen);   /* getaddrinfo()'s always fit */
                sockaddr_format(&sa, addr, sizeof(addr));
                r = connect_one(a, o->timeout_usec);
                if (r >= 0) {
                        fd = r;
                        r = proxy_header_send(o, fd, &sa, false);
                        if (r < 0) {
                                log_msg("cannot send the PROXY header to %s: %s", addr, strerror(-r));
                                return EXIT_IO;
                        }
                        break;
                }
                last = r;
                if (r == -ETIMEDOUT)
                        log_msg("connect to %s: timed out after %s", addr,
                                format_seconds(o->timeout_usec, t, sizeof(t)));
                else
                        log_msg("connect to %s: %s", addr, strerror(-r));
        }
        if (fd < 0)
                return last == -ETIMEDOUT ? EXIT_TIMEOUT : EXIT_CONNECT;

        buf = malloc(WINDOW);
        if (!buf) {
                log_msg("out of memory");
                return EXIT_IO;
        }
        s.fd = fd;
        s.buf = buf;
        snprintf(s.peer, sizeof(s.peer), "%s", addr);
        return converse(&s, o->timeout_usec);
}
