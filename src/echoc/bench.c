/* SPDX-License-Identifier: MIT */
/*
 * echoc load generator (--bench): one epoll loop, edge-triggered,
 * non-blocking sockets, and four modes:
 *   rate     each of N slots loops: connect, send SIZE bytes, half-close,
 *            read the echo to EOF, verify, close;
 *   stream   N connections send continuously while reading the echo back;
 *   latency  N connections ping-pong SIZE bytes, one request at a time;
 *   hold     open N connections, check each with a SIZE-byte ping, then
 *            keep them idle for --duration.
 * Every byte that comes back is compared with what was sent: the payload is
 * a slice of a random pattern whose length is prime, at a different offset
 * for every cycle, request and connection, so a misordered, stale or
 * crossed echo cannot match by accident. Every failure is counted by kind.
 * SIGINT/SIGTERM end the run early and still print the result.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "echoc.h"

#define PATTERN_LEN     262139u                 /* prime */
#define RBUF_LEN        (256u * 1024u)
#define HOLD_INFLIGHT   64                      /* connects in flight while building up a hold */
#define SCAN_NS         (50 * UINT64_C(1000000)) /* timeout scan period */
#define SIGNAL_TOKEN    UINT64_MAX
#define OFFSET_STRIDE   UINT64_C(7919)          /* spreads pattern offsets apart */

enum err_kind {
        ERR_REFUSED,
        ERR_RESET,
        ERR_CLOSED,     /* orderly close before the whole echo came back */
        ERR_TIMEOUT,
        ERR_MISMATCH,   /* a byte differed, or more came back than was sent */
        ERR_OTHER,
        _ERR_MAX,
};

static const char *const err_names[_ERR_MAX] = {
        [ERR_REFUSED] = "refused",
        [ERR_RESET] = "reset",
        [ERR_CLOSED] = "closed",
        [ERR_TIMEOUT] = "timeout",
        [ERR_MISMATCH] = "mismatch",
        [ERR_OTHER] = "other",
};

enum conn_state {
        CS_IDLE,
        CS_CONNECTING,
        CS_ACTIVE,
        CS_DRAINING,    /* stream: stopped sending, reading the rest */
        CS_HELD,
        CS_DONE,
};

struct conn {
        int fd;
        uint32_t idx;
        uint32_t gen;           /* bumped on close: stale epoll events are ignored */
        enum conn_state state;
        bool shut;
        bool queued;
        uint64_t start;         /* ns: start of the cycle or request */
        uint64_t deadline;      /* ns: no progress by then is a timeout; 0 = none */
        uint64_t base;          /* pattern offset of this cycle's / request's first byte */
        uint64_t tx, rx;
        uint64_t goal;          /* bytes to send; UINT64_MAX = until stopped */
};

struct samples {
        uint64_t *v;
        size_t n, cap;
};

struct bench {
        const struct options *o;
        struct sockaddr_any addr;
        struct sockaddr_any source;     /* family 0: let the kernel choose */
        char target[ADDR_STR_MAX];
        int epfd, sigfd;

        struct conn *conns;
        uint32_t nconns;
        uint32_t *queue;        /* rate/latency: slots waiting for their next cycle */
        uint32_t nqueue;

        unsigned char *pat;     /* PATTERN_LEN bytes, then the first PATTERN_LEN again */
        unsigned char *rbuf;
        uint64_t timeout_ns;

        uint64_t t0, t_end, t_stop;
        uint64_t seq;           /* cycles / requests started */
        uint64_t completed;     /* cycles / requests verified */
        uint64_t window_completed;      /* rate: of them, by the end of --duration */
        uint64_t bytes;         /* verified echoed bytes while counting */
        bool counting;
        uint64_t established;
        uint32_t active;        /* slots with an open socket */
        uint64_t err[_ERR_MAX];
        char first_err[_ERR_MAX][192];
        struct samples lat;
        bool stopping, interrupted, nomem;

        /* stream */
        uint64_t window_bytes, window_ns;
        bool window_set;

        /* hold */
        uint32_t next_slot, inflight;
        uint64_t held, held_max, t_held, t_establish_end;
        bool holding;
};

_printf_(3, 4) static void count_error(struct bench *b, enum err_kind k, const char *fmt, ...) {
        va_list ap;

        if (b->err[k]++ == 0) {
                va_start(ap, fmt);
                vsnprintf(b->first_err[k], sizeof(b->first_err[k]), fmt, ap);
                va_end(ap);
        }
}

static enum err_kind classify(int err) {
        switch (err) {
        case ECONNREFUSED:
                return ERR_REFUSED;
        case ECONNRESET:
        case EPIPE:
        case ECONNABORTED:
                return ERR_RESET;
        case ETIMEDOUT:
                return ERR_TIMEOUT;
        default:
                return ERR_OTHER;
        }
}

static void samples_add(struct bench *b, uint64_t v) {
        struct samples *s = &b->lat;

        if (s->n == s->cap) {
                size_t cap = s->cap ? s->cap * 2 : 65536;
                uint64_t *nv = realloc(s->v, cap * sizeof(*nv));
                if (!nv) {
                        /* Keep running; the percentiles then cover what fit. */
                        b->nomem = true;
                        return;
                }
                s->v = nv;
                s->cap = cap;
        }
        s->v[s->n++] = v;
}

static int cmp_u64(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
        return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of sorted samples, in microseconds. */
static double pct_usec(const struct samples *s, double p) {
        if (s->n == 0)
                return 0.0;
        double exact = p / 100.0 * (double) s->n;
        size_t rank = (size_t) exact;
        if ((double) rank < exact)
                rank++;
        if (rank < 1)
                rank = 1;
        if (rank > s->n)
                rank = s->n;
        return (double) s->v[rank - 1] / 1000.0;
}

static double mean_usec(const struct samples *s) {
        long double sum = 0;

        if (s->n == 0)
                return 0.0;
        for (size_t i = 0; i < s->n; i++)
                sum += s->v[i];
        return (double) (sum / s->n / 1000.0L);
}

/* Index of the first byte of data[0..n) that differs from the pattern at off, or n. */
static size_t pattern_check(const struct bench *b, uint64_t off, const unsigned char *data, size_t n) {
        const unsigned char *want = b->pat + off % PATTERN_LEN;
        size_t done = 0;

        /* The pattern is stored twice over, so any PATTERN_LEN bytes are contiguous. */
        while (done < n) {
                size_t k = n - done < PATTERN_LEN ? n - done : PATTERN_LEN;
                if (memcmp(data + done, want, k) != 0) {
                        for (size_t i = 0; i < k; i++)
                                if (data[done + i] != want[i])
                                        return done + i;
                }
                done += k;
                want = b->pat + (off + done) % PATTERN_LEN;
        }
        return n;
}

static void conn_close(struct bench *b, struct conn *c) {
        if (c->fd >= 0) {
                (void) close(c->fd);    /* also leaves the epoll set */
                c->fd = -1;
                b->active--;
        }
        c->gen++;
        c->state = CS_IDLE;
        c->shut = false;
        c->deadline = 0;
}

static void queue_push(struct bench *b, struct conn *c) {
        if (!c->queued) {
                c->queued = true;
                b->queue[b->nqueue++] = c->idx;
        }
}

/* The current cycle, request or connection of c ended, well or not:
 * close it and decide what comes next. */
static void conn_finish(struct bench *b, struct conn *c) {
        enum conn_state was = c->state;

        conn_close(b, c);
        switch (b->o->mode) {
        case BENCH_RATE:
        case BENCH_LATENCY:
                queue_push(b, c);
                break;
        case BENCH_STREAM:
                c->state = CS_DONE;
                break;
        case BENCH_HOLD:
                if (was == CS_HELD)
                        b->held--;
                else if (was == CS_CONNECTING || was == CS_ACTIVE)
                        b->inflight--;
                c->state = CS_DONE;
                break;
        case BENCH_NONE:
        case BENCH_UDP:         /* udp.c */
                break;
        }
}

_printf_(4, 5) static void conn_fail(struct bench *b, struct conn *c, enum err_kind k, const char *fmt, ...) {
        char msg[160];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        count_error(b, k, "connection %" PRIu32 ": %s", c->idx, msg);
        conn_finish(b, c);
}

static void conn_fail_errno(struct bench *b, struct conn *c, const char *what, int err) {
        conn_fail(b, c, classify(err), "%s: %s (%" PRIu64 " bytes sent, %" PRIu64 " echoed)",
                  what, strerror(err), c->tx, c->rx);
}

static void request_begin(struct bench *b, struct conn *c, uint64_t now) {
        c->start = now;
        c->base = (b->seq * OFFSET_STRIDE + c->idx) % PATTERN_LEN;
        c->tx = c->rx = 0;
        c->goal = b->o->size;
        b->seq++;
}

static bool may_start_request(const struct bench *b) {
        return !b->stopping && (b->o->requests == 0 || b->seq < b->o->requests);
}

static void conn_send(struct bench *b, struct conn *c);

static void on_connected(struct bench *b, struct conn *c, uint64_t now) {
        b->established++;
        c->state = CS_ACTIVE;
        c->deadline = now + b->timeout_ns;

        switch (b->o->mode) {
        case BENCH_RATE:
                /* request_begin() ran before connect(): the cycle time includes it. */
                break;
        case BENCH_LATENCY:
                if (!may_start_request(b)) {
                        conn_close(b, c);
                        return;
                }
                request_begin(b, c, now);
                break;
        case BENCH_STREAM:
                c->base = (c->idx * OFFSET_STRIDE * 31) % PATTERN_LEN;
                c->tx = c->rx = 0;
                c->goal = b->o->requests ? b->o->requests * b->o->size : UINT64_MAX;
                break;
        case BENCH_HOLD:
                c->base = (c->idx * OFFSET_STRIDE) % PATTERN_LEN;
                c->tx = c->rx = 0;
                c->goal = b->o->size;
                break;
        case BENCH_NONE:
        case BENCH_UDP:
                break;
        }
        /* In one segment with the first data, as a balancer sends them
         * when the client's bytes are already there. */
        int r = proxy_header_send(b->o, c->fd, &b->addr, c->goal > c->tx);
        if (r < 0) {
                conn_fail_errno(b, c, "send (PROXY header)", -r);
                return;
        }
        conn_send(b, c);
}

/* Opens c's socket and starts connecting. Failures are counted and finish c. */
static void conn_open(struct bench *b, struct conn *c) {
        struct epoll_event ev;
        int one = 1;

        c->fd = socket(b->addr.sa.sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
        if (c->fd < 0) {
                int err = errno;
                c->state = CS_CONNECTING;       /* so hold accounting sees an attempt end */
                count_error(b, classify(err), "connection %" PRIu32 ": socket: %s", c->idx, strerror(err));
                c->fd = -1;
                conn_finish(b, c);
                return;
        }
        b->active++;
        c->state = CS_CONNECTING;
        c->shut = false;
        c->tx = c->rx = 0;

        if (b->o->mode == BENCH_LATENCY)
                (void) setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (b->source.sa.sa_family != 0) {
                /* Leave the port to connect(), which may share it across destinations. */
                (void) setsockopt(c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
                if (bind(c->fd, &b->source.sa, b->source.len) < 0) {
                        conn_fail_errno(b, c, "bind", errno);
                        return;
                }
        }

        ev = (struct epoll_event) {
                .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
                .data.u64 = (uint64_t) c->gen << 32 | c->idx,
        };
        if (epoll_ctl(b->epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0) {
                conn_fail_errno(b, c, "epoll_ctl", errno);
                return;
        }

        uint64_t now = now_nsec(CLOCK_MONOTONIC);
        c->deadline = now + b->timeout_ns;
        if (connect(c->fd, &b->addr.sa, b->addr.len) == 0)
                on_connected(b, c, now);
        else if (errno != EINPROGRESS)
                conn_fail_errno(b, c, "connect", errno);
}

static void conn_send(struct bench *b, struct conn *c) {
        uint64_t chunk = b->o->mode == BENCH_STREAM ? b->o->size : UINT64_MAX;
        bool sent = false;

        while (c->tx < c->goal) {
                uint64_t left = c->goal - c->tx;
                size_t n = (size_t) (left < chunk ? left : chunk);
                if (n > PATTERN_LEN)
                        n = PATTERN_LEN;
                ssize_t k = send(c->fd, b->pat + (c->base + c->tx) % PATTERN_LEN, n, MSG_NOSIGNAL);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN)
                                break;
                        conn_fail_errno(b, c, "send", errno);
                        return;
                }
                c->tx += (uint64_t) k;
                sent = true;
        }
        if (sent)
                c->deadline = now_nsec(CLOCK_MONOTONIC) + b->timeout_ns;

        /* rate half-closes after its payload, stream after --requests chunks. */
        if (c->tx == c->goal && !c->shut &&
            (b->o->mode == BENCH_RATE || (b->o->mode == BENCH_STREAM && c->goal != UINT64_MAX))) {
                if (shutdown(c->fd, SHUT_WR) < 0) {
                        conn_fail_errno(b, c, "shutdown", errno);
                        return;
                }
                c->shut = true;
        }
}

/* A whole request came back (latency) or the ping did (hold). */
static void on_echo_complete(struct bench *b, struct conn *c, uint64_t now) {
        switch (b->o->mode) {
        case BENCH_LATENCY:
                samples_add(b, now - c->start);
                b->completed++;
                b->bytes += c->goal;
                if (!may_start_request(b)) {
                        conn_close(b, c);
                        return;
                }
                request_begin(b, c, now);
                conn_send(b, c);
                break;
        case BENCH_HOLD:
                if (c->state == CS_ACTIVE) {
                        c->state = CS_HELD;
                        c->deadline = 0;        /* idle on purpose from now on */
                        b->inflight--;
                        b->held++;
                        if (b->held > b->held_max)
                                b->held_max = b->held;
                }
                break;
        default:
                break;
        }
}

static void on_eof(struct bench *b, struct conn *c, uint64_t now) {
        switch (b->o->mode) {
        case BENCH_RATE:
                if (c->shut && c->rx == c->goal) {
                        samples_add(b, now - c->start);
                        b->completed++;
                        b->bytes += c->goal;
                        conn_finish(b, c);
                        return;
                }
                break;
        case BENCH_STREAM:
                if (c->shut && c->rx == c->tx) {
                        conn_finish(b, c);
                        return;
                }
                break;
        default:
                break;
        }
        conn_fail(b, c, ERR_CLOSED, "server closed the connection after echoing %" PRIu64 " of %" PRIu64
                  " bytes sent", c->rx, c->tx);
}

static void conn_recv(struct bench *b, struct conn *c) {
        uint32_t gen = c->gen;
        bool got = false;

        for (;;) {
                ssize_t k = recv(c->fd, b->rbuf, RBUF_LEN, 0);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN)
                                break;
                        conn_fail_errno(b, c, "recv", errno);
                        return;
                }
                uint64_t now = now_nsec(CLOCK_MONOTONIC);
                if (k == 0) {
                        on_eof(b, c, now);
                        return;
                }

                size_t n = (size_t) k;
                got = true;
                if (c->rx + n > c->tx) {
                        conn_fail(b, c, ERR_MISMATCH, "received %" PRIu64 " bytes, more than the %" PRIu64
                                  " sent", c->rx + n, c->tx);
                        return;
                }
                size_t bad = pattern_check(b, c->base + c->rx, b->rbuf, n);
                if (bad < n) {
                        conn_fail(b, c, ERR_MISMATCH, "echo differs at byte %" PRIu64 ": sent 0x%02x, "
                                  "received 0x%02x", c->rx + bad + 1,
                                  b->pat[(c->base + c->rx + bad) % PATTERN_LEN], b->rbuf[bad]);
                        return;
                }
                c->rx += n;
                if (b->o->mode == BENCH_STREAM && b->counting)
                        b->bytes += n;

                if (c->rx == c->goal && b->o->mode != BENCH_RATE) {
                        on_echo_complete(b, c, now);
                        if (c->gen != gen || c->fd < 0)
                                return;
                }
        }
        if (got)
                c->deadline = c->state == CS_HELD ? 0 : now_nsec(CLOCK_MONOTONIC) + b->timeout_ns;
}

static void conn_event(struct bench *b, struct conn *c, uint32_t ev) {
        uint32_t gen = c->gen;

        if (c->state == CS_CONNECTING) {
                int err = 0;
                socklen_t len = sizeof(err);

                if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
                        err = errno;
                if (err == 0 && !(ev & EPOLLOUT))
                        return;
                if (err != 0) {
                        conn_fail_errno(b, c, "connect", err);
                        return;
                }
                on_connected(b, c, now_nsec(CLOCK_MONOTONIC));
                if (c->gen != gen || c->fd < 0)
                        return;
        }
        if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLERR | EPOLLHUP)) {
                conn_recv(b, c);
                if (c->gen != gen || c->fd < 0)
                        return;
        }
        if ((ev & EPOLLOUT) && c->state == CS_ACTIVE && c->tx < c->goal)
                conn_send(b, c);
}

static void hold_refill(struct bench *b) {
        while (!b->stopping && b->next_slot < b->nconns && b->inflight < HOLD_INFLIGHT) {
                struct conn *c = &b->conns[b->next_slot++];
                b->inflight++;
                conn_open(b, c);
        }
}

static void process_queue(struct bench *b) {
        if (b->o->mode == BENCH_HOLD) {
                hold_refill(b);
                return;
        }
        /* Slots that fail synchronously are pushed again: handle each once per round. */
        uint32_t n = b->nqueue;
        for (uint32_t i = 0; i < n; i++) {
                struct conn *c = &b->conns[b->queue[i]];
                c->queued = false;
                if (!may_start_request(b))
                        continue;
                if (b->o->mode == BENCH_RATE)
                        request_begin(b, c, now_nsec(CLOCK_MONOTONIC));
                conn_open(b, c);
        }
        memmove(b->queue, b->queue + n, (b->nqueue - n) * sizeof(*b->queue));
        b->nqueue -= n;
}

static void bench_stop(struct bench *b, uint64_t now) {
        b->stopping = true;
        b->t_stop = now;

        if (b->o->mode == BENCH_STREAM) {
                b->window_bytes = b->bytes;
                b->window_ns = now - b->t0;
                b->window_set = true;
                b->counting = false;
                /* Stop sending, then read back and verify what is still in flight. */
                for (uint32_t i = 0; i < b->nconns; i++) {
                        struct conn *c = &b->conns[i];
                        if (c->fd < 0)
                                continue;
                        if (c->state == CS_CONNECTING) {
                                conn_close(b, c);
                                c->state = CS_DONE;
                                continue;
                        }
                        c->goal = c->tx;
                        c->state = CS_DRAINING;
                        c->deadline = now + b->timeout_ns;
                        if (!c->shut) {
                                if (shutdown(c->fd, SHUT_WR) < 0) {
                                        conn_fail_errno(b, c, "shutdown", errno);
                                        continue;
                                }
                                c->shut = true;
                        }
                }
                return;
        }
        /* rate: the connections in flight are finished, not cut: each one the
         * server accepted is then counted here, as completed or as an error,
         * so a server's own count can be checked against ours exactly. The
         * rate is that of the window. */
        if (b->o->mode == BENCH_RATE) {
                b->window_completed = b->completed;
                b->nqueue = 0;
                return;
        }
        /* latency, hold: whatever is in flight at the end is not counted. */
        for (uint32_t i = 0; i < b->nconns; i++)
                if (b->conns[i].fd >= 0)
                        conn_close(b, &b->conns[i]);
        b->nqueue = 0;
}

static bool bench_done(const struct bench *b) {
        switch (b->o->mode) {
        case BENCH_RATE:
                return (b->stopping || !may_start_request(b)) && b->active == 0 && b->nqueue == 0;
        case BENCH_LATENCY:
                return b->stopping || (b->active == 0 && b->nqueue == 0 && !may_start_request(b));
        case BENCH_STREAM:
                return b->active == 0;
        case BENCH_HOLD:
                return b->stopping;
        default:
                return true;
        }
}

static void scan_timeouts(struct bench *b, uint64_t now) {
        for (uint32_t i = 0; i < b->nconns; i++) {
                struct conn *c = &b->conns[i];
                if (c->fd < 0 || c->deadline == 0 || now < c->deadline)
                        continue;
                conn_fail(b, c, ERR_TIMEOUT, "no progress for %.3g s while %s (%" PRIu64 " bytes sent, %"
                          PRIu64 " echoed)", (double) b->timeout_ns / 1e9,
                          c->state == CS_CONNECTING ? "connecting" : "waiting for the echo", c->tx, c->rx);
        }
}

static void hold_check_established(struct bench *b, uint64_t now) {
        if (b->holding)
                return;
        if (now >= b->t_establish_end && (b->next_slot < b->nconns || b->inflight > 0)) {
                /* Give up on what has not connected yet; hold what we have. */
                b->next_slot = b->nconns;
                scan_timeouts(b, UINT64_MAX);
        }
        if (b->next_slot < b->nconns || b->inflight > 0)
                return;
        b->holding = true;
        b->t_held = now;
        b->t_end = now + b->o->duration_usec * NSEC_PER_USEC;
        printf("holding %" PRIu64 " connections\n", b->held);
        fflush(stdout);
}

static int bench_loop(struct bench *b) {
        struct epoll_event evs[256];
        uint64_t last_scan = now_nsec(CLOCK_MONOTONIC);

        for (;;) {
                if (b->nqueue > 0 || b->o->mode == BENCH_HOLD)
                        process_queue(b);

                uint64_t now = now_nsec(CLOCK_MONOTONIC);
                if (b->o->mode == BENCH_HOLD && !b->stopping)
                        hold_check_established(b, now);
                if (!b->stopping && b->t_end != 0 && now >= b->t_end)
                        bench_stop(b, now);
                if (bench_done(b)) {
                        if (b->t_stop == 0)
                                b->t_stop = now;
                        return 0;
                }

                int ms = (int) (SCAN_NS / 1000000);
                if (b->nqueue > 0)
                        ms = 0;
                else if (b->t_end != 0 && !b->stopping) {
                        uint64_t left = (b->t_end - now + 999999) / 1000000;
                        if (left < (uint64_t) ms)
                                ms = (int) left;
                }

                int n = epoll_wait(b->epfd, evs, (int) (sizeof(evs) / sizeof(evs[0])), ms);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                for (int i = 0; i < n; i++) {
                        uint64_t d = evs[i].data.u64;
                        if (d == SIGNAL_TOKEN) {
                                struct signalfd_siginfo si;
                                while (read(b->sigfd, &si, sizeof(si)) == (ssize_t) sizeof(si))
                                        ;
                                b->interrupted = true;
                                if (!b->stopping)
                                        bench_stop(b, now_nsec(CLOCK_MONOTONIC));
                                else if (b->o->mode == BENCH_STREAM || b->o->mode == BENCH_RATE) {
                                        /* A second signal: abandon the drain. */
                                        for (uint32_t j = 0; j < b->nconns; j++)
                                                if (b->conns[j].fd >= 0)
                                                        conn_close(b, &b->conns[j]);
                                }
                                continue;
                        }
                        uint32_t idx = (uint32_t) d, gen = (uint32_t) (d >> 32);
                        if (idx >= b->nconns)
                                continue;
                        struct conn *c = &b->conns[idx];
                        if (c->gen != gen || c->fd < 0)
                                continue;       /* closed (and maybe reopened) since */
                        conn_event(b, c, evs[i].events);
                }

                now = now_nsec(CLOCK_MONOTONIC);
                if (now - last_scan >= SCAN_NS) {
                        scan_timeouts(b, now);
                        last_scan = now;
                }
        }
}

static uint64_t total_errors(const struct bench *b) {
        uint64_t t = 0;

        for (int k = 0; k < _ERR_MAX; k++)
                t += b->err[k];
        return t;
}

static void format_errors(const struct bench *b, char *buf, size_t size) {
        uint64_t t = total_errors(b);
        size_t off;

        off = (size_t) snprintf(buf, size, "errors %" PRIu64, t);
        if (t == 0 || off >= size)
                return;
        const char *sep = " (";
        for (int k = 0; k < _ERR_MAX && off < size; k++) {
                if (b->err[k] == 0)
                        continue;
                off += (size_t) snprintf(buf + off, size - off, "%s%s %" PRIu64, sep, err_names[k], b->err[k]);
                sep = ", ";
        }
        if (off < size)
                snprintf(buf + off, size - off, ")");
}

static void print_result(const struct bench *b) {
        const struct options *o = b->o;
        double elapsed = (double) (b->t_stop - b->t0) / 1e9;
        char errs[256];

        if (o->mode == BENCH_STREAM && b->window_set)
                elapsed = (double) b->window_ns / 1e9;
        if (elapsed <= 0)
                elapsed = 1e-9;
        uint64_t in_window = o->mode == BENCH_RATE && b->stopping ? b->window_completed : b->completed;
        double count_rate = (double) in_window / elapsed;
        uint64_t sbytes = o->mode == BENCH_STREAM ? (b->window_set ? b->window_bytes : b->bytes) : b->bytes;
        double mbps = (double) sbytes / elapsed / 1e6;
        double hold_s = b->holding ? (double) (b->t_stop - b->t_held) / 1e9 : 0.0;
        double est_s = b->holding ? (double) (b->t_held - b->t0) / 1e9 : elapsed;

        if (o->json) {
                printf("{\"mode\":\"%s\",\"target\":\"%s\",\"concurrency\":%" PRIu64 ",\"size\":%" PRIu64
                       ",\"duration_s\":%.6f,\"requests_limit\":%" PRIu64 ",\"timeout_s\":%.6f"
                       ",\"interrupted\":%s,\"elapsed_s\":%.6f,\"established\":%" PRIu64,
                       bench_mode_to_string(o->mode), b->target, o->concurrency, o->size,
                       (double) o->duration_usec / 1e6, o->requests, (double) o->timeout_usec / 1e6,
                       b->interrupted ? "true" : "false", elapsed, b->established);
                switch (o->mode) {
                case BENCH_RATE:
                case BENCH_LATENCY:
                        printf(",\"%s\":%" PRIu64 ",\"%s\":%.3f,\"bytes\":%" PRIu64,
                               o->mode == BENCH_RATE ? "connections" : "requests", b->completed,
                               o->mode == BENCH_RATE ? "conn_per_s" : "req_per_s", count_rate, b->bytes);
                        if (o->mode == BENCH_RATE)
                                printf(",\"finished_after_duration\":%" PRIu64, b->completed - in_window);
                        printf(",\"latency_us\":{\"count\":%zu,\"mean\":%.3f,\"p50\":%.3f,\"p90\":%.3f"
                               ",\"p99\":%.3f,\"p999\":%.3f,\"max\":%.3f}",
                               b->lat.n, mean_usec(&b->lat), pct_usec(&b->lat, 50), pct_usec(&b->lat, 90),
                               pct_usec(&b->lat, 99), pct_usec(&b->lat, 99.9), pct_usec(&b->lat, 100));
                        break;
                case BENCH_STREAM:
                        printf(",\"bytes\":%" PRIu64 ",\"mb_per_s\":%.3f,\"mib_per_s\":%.3f",
                               sbytes, mbps, (double) sbytes / elapsed / 1048576.0);
                        break;
                case BENCH_HOLD:
                        printf(",\"requested\":%" PRIu64 ",\"held\":%" PRIu64 ",\"held_at_end\":%" PRIu64
                               ",\"establish_s\":%.6f,\"hold_s\":%.6f",
                               o->concurrency, b->held_max, b->held, est_s, hold_s);
                        break;
                default:
                        break;
                }
                printf(",\"errors\":{\"total\":%" PRIu64, total_errors(b));
                for (int k = 0; k < _ERR_MAX; k++)
                        printf(",\"%s\":%" PRIu64, err_names[k], b->err[k]);
                printf("}}\n");
        } else {
                format_errors(b, errs, sizeof(errs));
                switch (o->mode) {
                case BENCH_RATE:
                case BENCH_LATENCY:
                        printf("%s %s: %" PRIu64 " %s of %" PRIu64 " B in %.2f s = %.0f %s (concurrency %" PRIu64
                               "); %s us p50 %.1f p90 %.1f p99 %.1f p99.9 %.1f max %.1f; %s\n",
                               bench_mode_to_string(o->mode), b->target, in_window,
                               o->mode == BENCH_RATE ? "connections" : "requests", o->size, elapsed, count_rate,
                               o->mode == BENCH_RATE ? "conn/s" : "req/s", o->concurrency,
                               o->mode == BENCH_RATE ? "cycle" : "round trip",
                               pct_usec(&b->lat, 50), pct_usec(&b->lat, 90), pct_usec(&b->lat, 99),
                               pct_usec(&b->lat, 99.9), pct_usec(&b->lat, 100), errs);
                        break;
                case BENCH_STREAM:
                        printf("stream %s: %.1f MB/s (%" PRIu64 " bytes echoed and verified in %.2f s over %" PRIu64
                               " connection%s, %" PRIu64 " B writes); %s\n",
                               b->target, mbps, sbytes, elapsed, o->concurrency, o->concurrency == 1 ? "" : "s",
                               o->size, errs);
                        break;
                case BENCH_HOLD:
                        printf("hold %s: held %" PRIu64 " of %" PRIu64 " connections for %.2f s (established in "
                               "%.2f s, %" PRIu64 " still open at the end); %s\n",
                               b->target, b->held_max, o->concurrency, hold_s, est_s, b->held, errs);
                        break;
                default:
                        break;
                }
        }
        fflush(stdout);

        /* Details go to stderr: never hide an error, never break the one-line stdout. */
        for (int k = 0; k < _ERR_MAX; k++)
                if (b->err[k] > 0)
                        log_msg("%" PRIu64 " %s error%s, the first: %s", b->err[k], err_names[k],
                                b->err[k] == 1 ? "" : "s", b->first_err[k]);
        if (b->nomem)
                log_msg("out of memory for latency samples: percentiles cover the first %zu", b->lat.n);
}

static int raise_nofile(uint64_t need) {
        struct rlimit rl;

        if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
                return -errno;
        if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur >= need)
                return 0;
        if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need)
                return -EMFILE;
        rl.rlim_cur = need;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
                return -errno;
        return 0;
}

static void bench_free(struct bench *b) {
        if (b->conns)
                for (uint32_t i = 0; i < b->nconns; i++)
                        closep(&b->conns[i].fd);
        free(b->conns);
        free(b->queue);
        free(b->pat);
        free(b->rbuf);
        free(b->lat.v);
        closep(&b->epfd);
        closep(&b->sigfd);
}

static void fill_pattern(unsigned char *p) {
        uint64_t x = now_nsec(CLOCK_MONOTONIC) ^ ((uint64_t) getpid() << 32) ^ UINT64_C(0x9e3779b97f4a7c15);

        for (size_t i = 0; i < PATTERN_LEN; i++) {
                /* xorshift64* */
                x ^= x >> 12;
                x ^= x << 25;
                x ^= x >> 27;
                p[i] = (unsigned char) ((x * UINT64_C(2685821657736338717)) >> 56);
        }
        memcpy(p + PATTERN_LEN, p, PATTERN_LEN);
}

int run_bench(const struct options *o) {
        _cleanup_(freeaddrinfop) struct addrinfo *ai = NULL;
        _cleanup_(bench_free) struct bench b = { .o = o, .epfd = -1, .sigfd = -1 };
        sigset_t mask;
        int r;

        signal(SIGPIPE, SIG_IGN);

        r = resolve_host(o->host, o->port, o->family, &ai);
        if (r != EXIT_OK)
                return r;
        /* One address for the whole run, so every connection measures the same path. */
        (void) sockaddr_set(&b.addr, ai->ai_addr, ai->ai_addrlen);     /* getaddrinfo()'s always fit */
        sockaddr_format(&b.addr, b.target, sizeof(b.target));

        if (o->source) {
                _cleanup_(freeaddrinfop) struct addrinfo *src = NULL;
                struct addrinfo hints = {
                        .ai_family = ai->ai_family,
                        .ai_socktype = SOCK_STREAM,
                        .ai_flags = AI_NUMERICHOST | AI_PASSIVE,
                };
                if (getaddrinfo(o->source, "0", &hints, &src) != 0) {
                        log_msg("--source: '%s' is not an %s address, as the target %s is", o->source,
                                ai->ai_family == AF_INET ? "IPv4" : "IPv6", b.target);
                        return EXIT_USAGE;
                }
                (void) sockaddr_set(&b.source, src->ai_addr, src->ai_addrlen);
        }

        r = raise_nofile(o->concurrency + 64);
        if (r < 0) {
                log_msg("%" PRIu64 " connections need %" PRIu64 " file descriptors: %s "
                        "(raise the hard limit, e.g. with ulimit -n)", o->concurrency, o->concurrency + 64,
                        strerror(-r));
                return EXIT_IO;
        }

        b.nconns = (uint32_t) o->concurrency;
        b.conns = calloc(b.nconns, sizeof(*b.conns));
        /* A slot can sit in the queue twice: handled this round and pushed again. */
        b.queue = calloc(2 * (size_t) b.nconns, sizeof(*b.queue));
        b.pat = malloc(2 * (size_t) PATTERN_LEN);
        b.rbuf = malloc(RBUF_LEN);
        if (!b.conns || !b.queue || !b.pat || !b.rbuf) {
                log_msg("out of memory");
                return EXIT_IO;
        }
        for (uint32_t i = 0; i < b.nconns; i++)
                b.conns[i] = (struct conn) { .fd = -1, .idx = i };
        fill_pattern(b.pat);
        b.timeout_ns = o->timeout_usec * NSEC_PER_USEC;

        b.epfd = epoll_create1(EPOLL_CLOEXEC);
        if (b.epfd < 0) {
                log_msg("epoll_create1: %m");
                return EXIT_IO;
        }
        sigemptyset(&mask);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGTERM);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0) {
                log_msg("sigprocmask: %m");
                return EXIT_IO;
        }
        b.sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
        if (b.sigfd < 0) {
                log_msg("signalfd: %m");
                return EXIT_IO;
        }
        struct epoll_event ev = { .events = EPOLLIN, .data.u64 = SIGNAL_TOKEN };
        if (epoll_ctl(b.epfd, EPOLL_CTL_ADD, b.sigfd, &ev) < 0) {
                log_msg("epoll_ctl: %m");
                return EXIT_IO;
        }

        b.t0 = now_nsec(CLOCK_MONOTONIC);
        b.counting = true;
        if (o->mode == BENCH_HOLD)
                b.t_establish_end = b.t0 + (o->duration_usec + o->timeout_usec) * NSEC_PER_USEC;
        else if (o->duration_usec > 0)
                b.t_end = b.t0 + o->duration_usec * NSEC_PER_USEC;

        switch (o->mode) {
        case BENCH_RATE:
        case BENCH_LATENCY:
                for (uint32_t i = 0; i < b.nconns; i++)
                        queue_push(&b, &b.conns[i]);
                break;
        case BENCH_STREAM:
                for (uint32_t i = 0; i < b.nconns; i++)
                        conn_open(&b, &b.conns[i]);
                break;
        default:
                break;
        }

        r = bench_loop(&b);
        if (r < 0) {
                errno = -r;
                log_msg("epoll_wait: %m");
                return EXIT_IO;
        }
        if (o->mode == BENCH_HOLD && !b.holding) {
                /* Interrupted while connecting: report what was held. */
                b.held_max = b.held;
        }
        if (b.lat.n > 0)
                qsort(b.lat.v, b.lat.n, sizeof(*b.lat.v), cmp_u64);
        print_result(&b);

        if (total_errors(&b) > 0)
                return b.established == 0 ? EXIT_CONNECT : EXIT_MISMATCH;
        return EXIT_OK;
}
