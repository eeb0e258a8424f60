/* SPDX-License-Identifier: MIT */
/* Unit tests for the echo loop in worker.c, over a non-blocking AF_UNIX
 * socketpair (and pipes, as under --inetd), and the exit-code mapping of
 * close reasons. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "unit.h"
#include "fd-util.h"
#include "worker.h"

#define MSEC(n) ((uint64_t) (n) * USEC_PER_MSEC)
/* A bound on any wait of a helper thread; far above what a test takes. */
#define PEER_TIMEOUT_MSEC 5000

/* The byte at offset i of the test stream: no short period, so a lost or
 * repeated chunk shows. */
static uint8_t pattern(uint64_t i) {
        return (uint8_t) (i * 131 + (i >> 9) + (i >> 17));
}

static void fill_pattern(uint8_t *buf, size_t len, uint64_t offset) {
        for (size_t i = 0; i < len; i++)
                buf[i] = pattern(offset + i);
}

/* sv[0] is echod's end, sv[1] the client's; both non-blocking. */
static void make_pair(int sv[2]) {
        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
}

static void close_pair(int sv[2]) {
        sv[0] = safe_close(sv[0]);
        sv[1] = safe_close(sv[1]);
}

/* Waits for events on fd; returns revents, 0 on timeout. */
static short wait_fd(int fd, short events, int timeout_msec) {
        struct pollfd p = { .fd = fd, .events = events };
        int r;

        do
                r = poll(&p, 1, timeout_msec);
        while (r < 0 && errno == EINTR);
        return r > 0 ? p.revents : 0;
}

/* Writes all of buf to a non-blocking fd. Returns 0 or -errno. */
static int peer_write_all(int fd, const void *buf, size_t len) {
        const char *p = buf;

        while (len > 0) {
                ssize_t n = write(fd, p, len);
                if (n < 0 && errno == EAGAIN) {
                        if (!wait_fd(fd, POLLOUT, PEER_TIMEOUT_MSEC))
                                return -ETIMEDOUT;
                        continue;
                }
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                p += n;
                len -= (size_t) n;
        }
        return 0;
}

/* Reads from a non-blocking fd until EOF; checks the bytes against the
 * pattern. Returns the count, or -errno / -EBADMSG (wrong byte). */
static int64_t peer_read_to_eof(int fd, size_t chunk) {
        uint8_t buf[65536];
        uint64_t total = 0;

        if (chunk > sizeof buf)
                chunk = sizeof buf;
        for (;;) {
                ssize_t n = read(fd, buf, chunk);
                if (n < 0 && errno == EAGAIN) {
                        if (!wait_fd(fd, POLLIN, PEER_TIMEOUT_MSEC))
                                return -ETIMEDOUT;
                        continue;
                }
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                if (n == 0)
                        return (int64_t) total;
                for (ssize_t i = 0; i < n; i++)
                        if (buf[i] != pattern(total + (uint64_t) i))
                                return -EBADMSG;
                total += (uint64_t) n;
        }
}

/* Writes the pattern without blocking until the socket is full; returns the count. */
static size_t fill_socket(int fd, uint64_t offset) {
        uint8_t buf[4096];
        size_t total = 0;

        for (;;) {
                fill_pattern(buf, sizeof buf, offset + total);
                ssize_t n = write(fd, buf, sizeof buf);
                if (n < 0) {
                        ck_assert_int_eq(errno, EAGAIN);
                        return total;
                }
                total += (size_t) n;
        }
}

static uint64_t elapsed_usec(uint64_t since) {
        return now_usec(CLOCK_MONOTONIC) - since;
}

static const struct echo_limits no_limits = {};

/* ---- round trip and EOF ---- */

START_TEST(test_round_trip_eof)
{
        static const char msg[] = "hello, echo\r\n\0binary\xff";
        struct echo_result res;
        char buf[64];
        int sv[2];

        make_pair(sv);
        ck_assert_int_eq(write(sv[1], msg, sizeof msg), (ssize_t) sizeof msg);
        ck_assert_int_eq(shutdown(sv[1], SHUT_WR), 0);

        echo_loop(sv[0], sv[0], &no_limits, NULL, &res);
        ck_assert_int_eq(res.reason, CLOSE_EOF);
        ck_assert_int_eq(res.error, 0);
        ck_assert_uint_eq(res.bytes, sizeof msg);

        /* Everything came back, and then EOF: echod shut its write side. */
        ck_assert_int_eq(read(sv[1], buf, sizeof buf), (ssize_t) sizeof msg);
        ck_assert_mem_eq(buf, msg, sizeof msg);
        ck_assert_int_eq(read(sv[1], buf, sizeof buf), 0);
        close_pair(sv);
}
END_TEST

START_TEST(test_empty_eof)
{
        struct echo_result res;
        char buf[8];
        int sv[2];

        make_pair(sv);
        ck_assert_int_eq(shutdown(sv[1], SHUT_WR), 0);
        echo_loop(sv[0], sv[0], &no_limits, NULL, &res);
        ck_assert_int_eq(res.reason, CLOSE_EOF);
        ck_assert_uint_eq(res.bytes, 0);
        ck_assert_int_eq(read(sv[1], buf, sizeof buf), 0);
        close_pair(sv);
}
END_TEST

/* A client that talks, waits for the answer, talks again: echod answers
 * each piece without waiting for more (no framing, no buffering). */
struct chat {
        int fd;
        int rounds;
        int result;             /* 0, or what went wrong */
};

static void *chat_thread(void *arg) {
        struct chat *c = arg;
        char out[128], in[128];

        for (int i = 0; i < c->rounds; i++) {
                int len = snprintf(out, sizeof out, "line %d of the chat\n", i);
                size_t got = 0;

                if (peer_write_all(c->fd, out, (size_t) len) < 0) {
                        c->result = 1;
                        return NULL;
                }
                while (got < (size_t) len) {
                        if (!wait_fd(c->fd, POLLIN, PEER_TIMEOUT_MSEC)) {
                                c->result = 2;          /* the echo never came */
                                return NULL;
                        }
                        ssize_t n = read(c->fd, in + got, sizeof in - got);
                        if (n <= 0 && !(n < 0 && errno == EAGAIN)) {
                                c->result = 3;
                                return NULL;
                        }
                        if (n > 0)
                                got += (size_t) n;
                }
                if (got != (size_t) len || memcmp(in, out, got) != 0) {
                        c->result = 4;
                        return NULL;
                }
        }
        shutdown(c->fd, SHUT_WR);
        return NULL;
}

START_TEST(test_interactive)
{
        struct echo_result res;
        struct chat c = { .rounds = 50 };
        pthread_t t;
        char buf[8];
        int sv[2];

        make_pair(sv);
        c.fd = sv[1];
        ck_assert_int_eq(pthread_create(&t, NULL, chat_thread, &c), 0);
        echo_loop(sv[0], sv[0], &no_limits, NULL, &res);
        ck_assert_int_eq(pthread_join(t, NULL), 0);
        ck_assert_int_eq(c.result, 0);
        ck_assert_int_eq(res.reason, CLOSE_EOF);
        ck_assert_int_eq(read(sv[1], buf, sizeof buf), 0);
        close_pair(sv);
}
END_TEST

/* ---- a large payload against a slow reader ---- */

struct bulk {
        int fd;
        size_t total;                   /* bytes the writer sends */
        size_t chunk;                   /* the reader's read size */
        pthread_mutex_t lock;
        pthread_cond_t cond;
        bool writer_blocked;            /* the writer met a full socket */
        int write_result;
        int64_t read_result;
};

static void *bulk_writer(void *arg) {
        struct bulk *b = arg;
        uint8_t buf[16384];
        size_t sent = 0;

        while (sent < b->total) {
                size_t want = b->total - sent < sizeof buf ? b->total - sent : sizeof buf;
                fill_pattern(buf, want, sent);
                ssize_t n = write(b->fd, buf, want);
                if (n < 0 && errno == EAGAIN) {
                        /* echod stopped reading: its writes back must have
                         * met a full socket too. Let the reader start. */
                        pthread_mutex_lock(&b->lock);
                        b->writer_blocked = true;
                        pthread_cond_signal(&b->cond);
                        pthread_mutex_unlock(&b->lock);
                        if (!wait_fd(b->fd, POLLOUT, PEER_TIMEOUT_MSEC)) {
                                b->write_result = -ETIMEDOUT;
                                return NULL;
                        }
                        continue;
                }
                if (n < 0) {
                        b->write_result = -errno;
                        return NULL;
                }
                sent += (size_t) n;
        }
        shutdown(b->fd, SHUT_WR);
        return NULL;
}

static void *bulk_reader(void *arg) {
        struct bulk *b = arg;

        pthread_mutex_lock(&b->lock);
        while (!b->writer_blocked)
                pthread_cond_wait(&b->cond, &b->lock);
        pthread_mutex_unlock(&b->lock);
        b->read_result = peer_read_to_eof(b->fd, b->chunk);
        return NULL;
}

static void run_bulk(size_t total, size_t chunk) {
        struct bulk b = {
                .total = total,
                .chunk = chunk,
                .lock = PTHREAD_MUTEX_INITIALIZER,
                .cond = PTHREAD_COND_INITIALIZER,
        };
        struct echo_result res;
        pthread_t w, r;
        int sv[2];

        make_pair(sv);
        b.fd = sv[1];
        ck_assert_int_eq(pthread_create(&w, NULL, bulk_writer, &b), 0);
        ck_assert_int_eq(pthread_create(&r, NULL, bulk_reader, &b), 0);
        echo_loop(sv[0], sv[0], &(struct echo_limits) { .idle_usec = 5 * USEC_PER_SEC }, NULL, &res);
        ck_assert_int_eq(pthread_join(w, NULL), 0);
        ck_assert_int_eq(pthread_join(r, NULL), 0);

        ck_assert_int_eq(b.write_result, 0);
        ck_assert(b.writer_blocked);
        ck_assert_int_eq(res.reason, CLOSE_EOF);
        ck_assert_uint_eq(res.bytes, total);
        ck_assert_msg(b.read_result == (int64_t) total, "reader got %lld of %zu bytes",
                      (long long) b.read_result, total);
        close_pair(sv);
}

START_TEST(test_large_slow_reader)
{
        /* Small reads make echod's sends short or EAGAIN again and again. */
        run_bulk(4 * 1024 * 1024, 1000);
}
END_TEST

START_TEST(test_large_fast_reader)
{
        run_bulk(16 * 1024 * 1024, 65536);
}
END_TEST

/* Different descriptors for input and output, neither a socket: the
 * --inetd case under a pipe-based super-server. */
START_TEST(test_pipes)
{
        int in[2], out[2];
        struct echo_result res;
        uint8_t buf[100000];

        ck_assert_int_eq(pipe2(in, O_NONBLOCK | O_CLOEXEC), 0);
        ck_assert_int_eq(pipe2(out, O_NONBLOCK | O_CLOEXEC), 0);
        ck_assert_int_eq(fcntl(in[0], F_SETPIPE_SZ, 1 << 17) >= (int) sizeof buf, 1);
        ck_assert_int_eq(fcntl(out[1], F_SETPIPE_SZ, 1 << 17) >= (int) sizeof buf, 1);
        fill_pattern(buf, sizeof buf, 0);
        ck_assert_int_eq(write(in[1], buf, sizeof buf), (ssize_t) sizeof buf);
        close(in[1]);

        echo_loop(in[0], out[1], &no_limits, NULL, &res);
        ck_assert_int_eq(res.reason, CLOSE_EOF);
        ck_assert_uint_eq(res.bytes, sizeof buf);
        close(out[1]);
        ck_assert_int_eq(peer_read_to_eof(out[0], sizeof buf), (int64_t) sizeof buf);
        close(in[0]);
        close(out[0]);
}
END_TEST

/* ---- timeouts ---- */

START_TEST(test_idle_timeout)
{
        struct echo_limits lim = { .idle_usec = MSEC(50) };
        struct echo_result res;
        uint64_t start = now_usec(CLOCK_MONOTONIC), took;
        int sv[2];

        make_pair(sv);
        echo_loop(sv[0], sv[0], &lim, NULL, &res);
        took = elapsed_usec(start);
        ck_assert_int_eq(res.reason, CLOSE_IDLE_TIMEOUT);
        ck_assert_uint_eq(res.bytes, 0);
        ck_assert_uint_ge(took, MSEC(50));
        ck_assert_uint_lt(took, MSEC(900));
        close_pair(sv);
}
END_TEST

/* A client that sends but never reads stalls the echo: no progress either
 * way is idle too. */
START_TEST(test_idle_timeout_blocked_writer)
{
        struct echo_limits lim = { .idle_usec = MSEC(50) };
        struct echo_result res;
        size_t sent;
        int sv[2];

        make_pair(sv);
        sent = fill_socket(sv[1], 0);
        ck_assert_uint_gt(sent, 0);
        echo_loop(sv[0], sv[0], &lim, NULL, &res);
        ck_assert_int_eq(res.reason, CLOSE_IDLE_TIMEOUT);
        ck_assert_uint_gt(res.bytes, 0);
        ck_assert_uint_le(res.bytes, sent);
        close_pair(sv);
}
END_TEST

/* Sends one byte every few milliseconds and reads the echoes, until told to stop. */
struct trickle {
        int fd;
        int stop[2];
        uint64_t sent;
};

static void *trickle_thread(void *arg) {
        struct trickle *t = arg;
        uint8_t b, in[64];

        for (;;) {
                /* Pace on the stop pipe: returns at once when told to stop. */
                if (wait_fd(t->stop[0], POLLIN, 5))
                        return NULL;
                b = pattern(t->sent);
                if (write(t->fd, &b, 1) == 1)
                        t->sent++;
                while (read(t->fd, in, sizeof in) > 0)
                        ;
        }
}

START_TEST(test_session_timeout)
{
        struct echo_limits lim = { .idle_usec = 10 * USEC_PER_SEC, .session_usec = MSEC(150) };
        struct trickle t = {};
        struct echo_result res;
        uint64_t start, took;
        pthread_t th;
        int sv[2];

        /* Busy all along, so never idle, yet the session ends: progress
         * does not extend it. */
        make_pair(sv);
        t.fd = sv[1];
        ck_assert_int_eq(pipe2(t.stop, O_CLOEXEC), 0);
        ck_assert_int_eq(pthread_create(&th, NULL, trickle_thread, &t), 0);
        start = now_usec(CLOCK_MONOTONIC);
        echo_loop(sv[0], sv[0], &lim, NULL, &res);
        took = elapsed_usec(start);
        ck_assert_int_eq(write(t.stop[1], "x", 1), 1);
        ck_assert_int_eq(pthread_join(th, NULL), 0);

        ck_assert_int_eq(res.reason, CLOSE_SESSION_TIMEOUT);
        ck_assert_uint_ge(took, MSEC(150));
        ck_assert_uint_lt(took, MSEC(900));
        ck_assert_uint_gt(res.bytes, 0);
        close(t.stop[0]);
        close(t.stop[1]);
        close_pair(sv);
}
END_TEST

START_TEST(test_timeout_first_wins)
{
        struct echo_result res;
        int sv[2];

        make_pair(sv);
        echo_loop(sv[0], sv[0], &(struct echo_limits) { .idle_usec = 10 * USEC_PER_SEC, .session_usec = MSEC(30) },
                  NULL, &res);
        ck_assert_int_eq(res.reason, CLOSE_SESSION_TIMEOUT);
        echo_loop(sv[0], sv[0], &(struct echo_limits) { .idle_usec = MSEC(30), .session_usec = 10 * USEC_PER_SEC },
                  NULL, &res);
        ck_assert_int_eq(res.reason, CLOSE_IDLE_TIMEOUT);
        echo_loop(sv[0], sv[0], &(struct echo_limits) { .session_usec = MSEC(30) }, NULL, &res);
        ck_assert_int_eq(res.reason, CLOSE_SESSION_TIMEOUT);
        close_pair(sv);
}
END_TEST

/* ---- max_bytes ---- */

struct flood {
        int fd;
        int stop[2];
        int64_t read_result;
};

static void *flood_writer(void *arg) {
        struct flood *f = arg;
        uint8_t buf[8192];
        uint64_t sent = 0;

        /* Writes until told to stop; echod stops reading at max_bytes. */
        for (;;) {
                struct pollfd p[2] = { { .fd = f->stop[0], .events = POLLIN }, { .fd = f->fd, .events = POLLOUT } };
                if (poll(p, 2, PEER_TIMEOUT_MSEC) <= 0 || p[0].revents)
                        return NULL;
                fill_pattern(buf, sizeof buf, sent);
                ssize_t n = write(f->fd, buf, sizeof buf);
                if (n > 0)
                        sent += (uint64_t) n;
                else if (n < 0 && errno != EAGAIN)
                        return NULL;
        }
}

static void *flood_reader(void *arg) {
        struct flood *f = arg;

        f->read_result = peer_read_to_eof(f->fd, 4096);
        return NULL;
}

static void run_max_bytes(uint64_t max) {
        struct echo_limits lim = { .max_bytes = max, .idle_usec = 5 * USEC_PER_SEC };
        struct flood f = {};
        struct echo_result res;
        pthread_t w, r;
        int sv[2];

        make_pair(sv);
        f.fd = sv[1];
        ck_assert_int_eq(pipe2(f.stop, O_CLOEXEC), 0);
        ck_assert_int_eq(pthread_create(&w, NULL, flood_writer, &f), 0);
        ck_assert_int_eq(pthread_create(&r, NULL, flood_reader, &f), 0);
        echo_loop(sv[0], sv[0], &lim, NULL, &res);
        ck_assert_int_eq(write(f.stop[1], "x", 1), 1);
        ck_assert_int_eq(pthread_join(w, NULL), 0);
        ck_assert_int_eq(pthread_join(r, NULL), 0);

        ck_assert_int_eq(res.reason, CLOSE_MAX_BYTES);
        ck_assert_uint_eq(res.bytes, max);
        /* Exactly max_bytes came back, then EOF. */
        ck_assert_msg(f.read_result == (int64_t) max, "client read %lld, max_bytes %llu",
                      (long long) f.read_result, (unsigned long long) max);
        close(f.stop[0]);
        close(f.stop[1]);
        close_pair(sv);
}

START_TEST(test_max_bytes)
{
        run_max_bytes(1);
        run_max_bytes(4096);
        run_max_bytes(65536);           /* exactly the buffer */
        run_max_bytes(200001);          /* several buffers and a bit */
}
END_TEST

START_TEST(test_max_bytes_not_reached)
{
        static const char msg[] = "short";
        struct echo_result res;
        int sv[2];

        make_pair(sv);
        ck_assert_int_eq(write(sv[1], msg, 5), 5);
        ck_assert_int_eq(shutdown(sv[1], SHUT_WR), 0);
        echo_loop(sv[0], sv[0], &(struct echo_limits) { .max_bytes = 6 }, NULL, &res);
        ck_assert_int_eq(res.reason, CLOSE_EOF);
        ck_assert_uint_eq(res.bytes, 5);
        close_pair(sv);
}
END_TEST

/* ---- the client goes away ---- */

START_TEST(test_peer_closed_with_data_pending)
{
        struct echo_result res;
        uint8_t buf[1000];
        int sv[2];

        /* The client sends and leaves before reading the echo. */
        make_pair(sv);
        fill_pattern(buf, sizeof buf, 0);
        ck_assert_int_eq(write(sv[1], buf, sizeof buf), (ssize_t) sizeof buf);
        sv[1] = safe_close(sv[1]);
        echo_loop(sv[0], sv[0], &(struct echo_limits) { .idle_usec = 5 * USEC_PER_SEC }, NULL, &res);
        ck_assert_msg(res.reason == CLOSE_RESET || res.reason == CLOSE_ERROR, "reason %s",
                      close_reason_to_string(res.reason));
        ck_assert_int_ne(res.error, 0);
        ck_assert_uint_lt(res.bytes, sizeof buf);
        close_pair(sv);
}
END_TEST

/* Closes the client's end once echoes are waiting in it, unread: echod's
 * next read or write fails. */
static void *close_when_echoed(void *arg) {
        int *fd = arg;

        if (wait_fd(*fd, POLLIN, PEER_TIMEOUT_MSEC))
                *fd = safe_close(*fd);
        return NULL;
}

START_TEST(test_peer_reset_midway)
{
        struct echo_result res;
        pthread_t t;
        size_t sent;
        int sv[2];

        make_pair(sv);
        sent = fill_socket(sv[1], 0);
        ck_assert_int_eq(pthread_create(&t, NULL, close_when_echoed, &sv[1]), 0);
        echo_loop(sv[0], sv[0], &(struct echo_limits) { .idle_usec = 5 * USEC_PER_SEC }, NULL, &res);
        ck_assert_int_eq(pthread_join(t, NULL), 0);
        ck_assert_int_eq(sv[1], -1);
        ck_assert_msg(res.reason == CLOSE_RESET || res.reason == CLOSE_ERROR, "reason %s",
                      close_reason_to_string(res.reason));
        ck_assert_msg(res.error == EPIPE || res.error == ECONNRESET, "error %d", res.error);
        ck_assert_uint_le(res.bytes, sent);
        close_pair(sv);
}
END_TEST

START_TEST(test_bad_descriptor)
{
        struct echo_result res;
        int sv[2];

        make_pair(sv);
        close_pair(sv);
        echo_loop(sv[0], sv[0], &no_limits, NULL, &res);
        ck_assert_int_eq(res.reason, CLOSE_ERROR);
        ck_assert_int_eq(res.error, EBADF);
}
END_TEST

/* ---- stop requests ---- */

START_TEST(test_stop_when_idle)
{
        struct echo_result res;
        char buf[8];
        int sv[2];

        make_pair(sv);
        worker_stop = 1;
        echo_loop(sv[0], sv[0], &no_limits, NULL, &res);
        worker_stop = 0;
        ck_assert_int_eq(res.reason, CLOSE_SHUTDOWN);
        ck_assert_uint_eq(res.bytes, 0);
        ck_assert_int_eq(read(sv[1], buf, sizeof buf), 0);     /* write side shut down */
        close_pair(sv);
}
END_TEST

/* A stop while the client keeps sending: echod writes back all it has
 * read, then closes; it reads nothing more. */
struct stopper {
        int fd;
        int stop[2];                    /* tells the writer to end */
        pthread_mutex_t lock;
        pthread_cond_t cond;
        bool writer_blocked;
        uint64_t sent;
        int64_t read_result;
};

static void *stop_writer(void *arg) {
        struct stopper *s = arg;
        uint8_t buf[8192];

        for (;;) {
                struct pollfd p[2] = { { .fd = s->stop[0], .events = POLLIN }, { .fd = s->fd, .events = POLLOUT } };
                fill_pattern(buf, sizeof buf, s->sent);
                ssize_t n = write(s->fd, buf, sizeof buf);
                if (n > 0) {
                        s->sent += (uint64_t) n;
                        continue;
                }
                if (n < 0 && errno != EAGAIN)
                        return NULL;
                /* echod's input queue is full: from now on it never waits
                 * for input, so a stop request cannot go unnoticed. */
                pthread_mutex_lock(&s->lock);
                s->writer_blocked = true;
                pthread_cond_signal(&s->cond);
                pthread_mutex_unlock(&s->lock);
                if (poll(p, 2, PEER_TIMEOUT_MSEC) <= 0 || p[0].revents)
                        return NULL;
        }
}

static void *stop_then_drain(void *arg) {
        struct stopper *s = arg;

        pthread_mutex_lock(&s->lock);
        while (!s->writer_blocked)
                pthread_cond_wait(&s->cond, &s->lock);
        pthread_mutex_unlock(&s->lock);
        /* And echod has begun to answer. */
        if (!wait_fd(s->fd, POLLIN, PEER_TIMEOUT_MSEC)) {
                s->read_result = -ETIMEDOUT;
                return NULL;
        }
        worker_stop = 1;
        s->read_result = peer_read_to_eof(s->fd, 1000);
        return NULL;
}

START_TEST(test_stop_flushes)
{
        struct stopper s = {
                .lock = PTHREAD_MUTEX_INITIALIZER,
                .cond = PTHREAD_COND_INITIALIZER,
        };
        struct echo_result res;
        pthread_t w, r;
        int sv[2];

        make_pair(sv);
        s.fd = sv[1];
        ck_assert_int_eq(pipe2(s.stop, O_CLOEXEC), 0);
        ck_assert_int_eq(pthread_create(&w, NULL, stop_writer, &s), 0);
        ck_assert_int_eq(pthread_create(&r, NULL, stop_then_drain, &s), 0);
        echo_loop(sv[0], sv[0], &(struct echo_limits) { .idle_usec = 5 * USEC_PER_SEC }, NULL, &res);
        ck_assert_int_eq(pthread_join(r, NULL), 0);
        ck_assert_int_eq(write(s.stop[1], "x", 1), 1);
        ck_assert_int_eq(pthread_join(w, NULL), 0);
        worker_stop = 0;

        ck_assert_int_eq(res.reason, CLOSE_SHUTDOWN);
        ck_assert_uint_gt(res.bytes, 0);
        ck_assert_uint_le(res.bytes, s.sent);
        /* Everything echod read went back, in order, then EOF. */
        ck_assert_msg(s.read_result == (int64_t) res.bytes, "client got %lld, echod echoed %llu",
                      (long long) s.read_result, (unsigned long long) res.bytes);
        close(s.stop[0]);
        close(s.stop[1]);
        close_pair(sv);
}
END_TEST

/* The worker's way: the stop signal is blocked except while waiting in
 * ppoll, and its handler only sets worker_stop. */
static void on_stop(int sig) {
        (void) sig;
        worker_stop = 1;
}

START_TEST(test_stop_signal_wakes_poll)
{
        struct sigaction sa = { .sa_handler = on_stop };
        struct echo_result res;
        sigset_t block, poll_mask;
        uint64_t start;
        int sv[2];

        sigemptyset(&sa.sa_mask);
        ck_assert_int_eq(sigaction(SIGUSR2, &sa, NULL), 0);
        sigemptyset(&block);
        sigaddset(&block, SIGUSR2);
        ck_assert_int_eq(sigprocmask(SIG_BLOCK, &block, NULL), 0);
        sigemptyset(&poll_mask);

        make_pair(sv);
        /* Pending before the loop starts; delivered once it waits. */
        ck_assert_int_eq(kill(getpid(), SIGUSR2), 0);
        ck_assert_int_eq(worker_stop, 0);
        start = now_usec(CLOCK_MONOTONIC);
        echo_loop(sv[0], sv[0], &(struct echo_limits) { .idle_usec = 5 * USEC_PER_SEC }, &poll_mask, &res);
        ck_assert_int_eq(res.reason, CLOSE_SHUTDOWN);
        ck_assert_uint_lt(elapsed_usec(start), MSEC(900));
        worker_stop = 0;
        close_pair(sv);
}
END_TEST

/* ---- the close echod starts, over loopback TCP ---- */

/* A connected loopback TCP pair: sv[0] is echod's end, sv[1] the client's,
 * with a small receive buffer, so that most of an echo waits in echod's send
 * queue; both non-blocking. TCP, because only TCP turns a close() with
 * unread bytes into a reset, and a reset drops that send queue. */
static void make_tcp_pair(int sv[2]) {
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof a;
        int l, small = 4096;

        l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        ck_assert_int_ge(l, 0);
        ck_assert_int_eq(bind(l, (struct sockaddr *) &a, sizeof a), 0);
        ck_assert_int_eq(listen(l, 1), 0);
        ck_assert_int_eq(getsockname(l, (struct sockaddr *) &a, &len), 0);
        sv[1] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        ck_assert_int_ge(sv[1], 0);
        ck_assert_int_eq(setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &small, sizeof small), 0);
        ck_assert_int_eq(connect(sv[1], (struct sockaddr *) &a, sizeof a), 0);
        sv[0] = accept4(l, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        ck_assert_int_ge(sv[0], 0);
        ck_assert_int_eq(fd_set_nonblock(sv[1], true), 0);
        close(l);
}

/* max_bytes with more of the client's bytes unread: echod's close after the
 * limit reads them away, so the client gets the whole limit (most of it
 * still in echod's send queue when echo_loop() returns) and EOF, never a
 * reset that would drop it. */
START_TEST(test_close_after_max_bytes_is_clean)
{
        struct echo_limits lim = { .max_bytes = 32768, .linger_usec = 5 * USEC_PER_SEC };
        struct echo_result res;
        size_t sent;
        int sv[2];

        make_tcp_pair(sv);
        sent = fill_socket(sv[1], 0);
        ck_assert_uint_gt(sent, lim.max_bytes);
        ck_assert_int_eq(shutdown(sv[1], SHUT_WR), 0);

        echo_loop(sv[0], sv[0], &lim, NULL, &res);
        ck_assert_int_eq(res.reason, CLOSE_MAX_BYTES);
        ck_assert_uint_eq(res.bytes, lim.max_bytes);
        /* The worker's exit. */
        sv[0] = safe_close(sv[0]);

        ck_assert_int_eq(peer_read_to_eof(sv[1], 4096), (int64_t) lim.max_bytes);
        close_pair(sv);
}
END_TEST

/* A client that never closes holds the close for linger_usec, no longer;
 * after a stop, no longer than stop_usec. */
START_TEST(test_close_linger_is_bounded)
{
        struct echo_limits lim = { .max_bytes = 1, .linger_usec = MSEC(100) };
        struct echo_result res;
        uint64_t start;
        int sv[2];

        make_tcp_pair(sv);
        ck_assert_int_eq(write(sv[1], "ab", 2), 2);
        start = now_usec(CLOCK_MONOTONIC);
        echo_loop(sv[0], sv[0], &lim, NULL, &res);
        ck_assert_int_eq(res.reason, CLOSE_MAX_BYTES);
        ck_assert_uint_ge(elapsed_usec(start), MSEC(100));
        ck_assert_uint_lt(elapsed_usec(start), MSEC(900));
        close_pair(sv);

        lim = (struct echo_limits) { .linger_usec = 10 * USEC_PER_SEC, .stop_usec = MSEC(100) };
        make_tcp_pair(sv);
        worker_stop = 1;
        start = now_usec(CLOCK_MONOTONIC);
        echo_loop(sv[0], sv[0], &lim, NULL, &res);
        worker_stop = 0;
        ck_assert_int_eq(res.reason, CLOSE_SHUTDOWN);
        ck_assert_uint_ge(elapsed_usec(start), MSEC(100));
        ck_assert_uint_lt(elapsed_usec(start), MSEC(900));
        close_pair(sv);
}
END_TEST

/* ---- close reasons ---- */

START_TEST(test_close_reason_codes)
{
        bool seen[256] = {};

        ck_assert_int_eq(close_reason_to_exit_code(CLOSE_EOF), 0);
        for (int r = 0; r < _CLOSE_REASON_WORKER_MAX; r++) {
                int code = close_reason_to_exit_code((enum close_reason) r);
                ck_assert_msg(code == 0 || (code >= 10 && code <= 15), "reason %d -> code %d", r, code);
                ck_assert_msg(!seen[code], "exit code %d used twice", code);
                seen[code] = true;
                ck_assert_int_eq(close_reason_from_exit_code(code), r);
        }
        /* Codes that are not ours: failures, signals, usage, config errors. */
        static const int other[] = { -1, 1, 2, 6, 9, 16, 17, 100, 111, 126, 127, 128, 137, 255, 256, 266 };
        for (size_t i = 0; i < ARRAY_SIZE(other); i++)
                ck_assert_msg(close_reason_from_exit_code(other[i]) == -1, "code %d mapped to %d",
                              other[i], close_reason_from_exit_code(other[i]));
}
END_TEST

START_TEST(test_close_reason_names)
{
        static const char *const names[_CLOSE_REASON_MAX] = {
                "eof", "idle-timeout", "session-timeout", "max-bytes", "reset", "error", "shutdown",
                "killed", "failed",
        };

        for (int r = 0; r < _CLOSE_REASON_MAX; r++)
                ck_assert_str_eq(close_reason_to_string((enum close_reason) r), names[r]);
        ck_assert_str_eq(close_reason_to_string(_CLOSE_REASON_MAX), "unknown");
        ck_assert_str_eq(close_reason_to_string((enum close_reason) 1000), "unknown");
}
END_TEST

/* Which record each mode writes: the open record only with all; errors
 * keeps resets, errors, dead workers and timeouts; warnings always. */
START_TEST(test_conn_record_wanted)
{
        static const bool abnormal[_CLOSE_REASON_MAX] = {
                [CLOSE_IDLE_TIMEOUT] = true, [CLOSE_SESSION_TIMEOUT] = true, [CLOSE_RESET] = true,
                [CLOSE_ERROR] = true, [CLOSE_KILLED] = true, [CLOSE_FAILED] = true,
        };
        static const bool warning[_CLOSE_REASON_MAX] = {
                [CLOSE_ERROR] = true, [CLOSE_KILLED] = true, [CLOSE_FAILED] = true,
        };

        for (int r = 0; r < _CLOSE_REASON_MAX; r++) {
                ck_assert_int_eq(close_reason_abnormal((enum close_reason) r), abnormal[r]);
                ck_assert_int_eq(close_reason_warning((enum close_reason) r), warning[r]);
                ck_assert(conn_record_wanted(LOG_CONNECTIONS_ALL, false, (enum close_reason) r));
                ck_assert(conn_record_wanted(LOG_CONNECTIONS_CLOSE, false, (enum close_reason) r));
                ck_assert_int_eq(conn_record_wanted(LOG_CONNECTIONS_ERRORS, false, (enum close_reason) r), abnormal[r]);
                ck_assert_int_eq(conn_record_wanted(LOG_CONNECTIONS_OFF, false, (enum close_reason) r), warning[r]);
        }
        ck_assert(conn_record_wanted(LOG_CONNECTIONS_ALL, true, CLOSE_EOF));
        ck_assert(!conn_record_wanted(LOG_CONNECTIONS_CLOSE, true, CLOSE_EOF));
        ck_assert(!conn_record_wanted(LOG_CONNECTIONS_ERRORS, true, CLOSE_EOF));
        ck_assert(!conn_record_wanted(LOG_CONNECTIONS_OFF, true, CLOSE_EOF));
}
END_TEST

/* ---- known bugs (see unit.h) ---- */

/*
 * BUG: echo_loop() checks session_timeout (and idle_timeout) only when it is
 * about to wait in ppoll. A client that keeps both directions moving never
 * makes it wait, so session_timeout never ends the session. Shown with an
 * input that is always readable and an output that is always writable;
 * max_bytes only bounds the test.
 */
START_TEST(test_regression_session_timeout_busy_stream)
{
        int in = open("/dev/zero", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
        int out = open("/dev/null", O_WRONLY | O_NONBLOCK | O_CLOEXEC);
        struct echo_limits lim = { .session_usec = MSEC(1), .max_bytes = UINT64_C(2) << 30 };
        struct echo_result res;
        uint64_t start = now_usec(CLOCK_MONOTONIC), took;

        ck_assert_int_ge(in, 0);
        ck_assert_int_ge(out, 0);
        echo_loop(in, out, &lim, NULL, &res);
        took = elapsed_usec(start);
        ck_assert_msg(res.reason == CLOSE_SESSION_TIMEOUT && took < MSEC(50),
                      "session_timeout 1 ms: ran %llu ms and ended with %s after %llu bytes",
                      (unsigned long long) (took / 1000), close_reason_to_string(res.reason),
                      (unsigned long long) res.bytes);
        close(in);
        close(out);
}
END_TEST

static Suite *echo_suite(void) {
        Suite *s = suite_create("echo");
        TCase *tc;

        tc = tcase_create("stream");
        tcase_add_test(tc, test_round_trip_eof);
        tcase_add_test(tc, test_empty_eof);
        tcase_add_test(tc, test_interactive);
        tcase_add_test(tc, test_large_slow_reader);
        tcase_add_test(tc, test_large_fast_reader);
        tcase_add_test(tc, test_pipes);
        suite_add_tcase(s, tc);

        tc = tcase_create("limits");
        tcase_add_test(tc, test_idle_timeout);
        tcase_add_test(tc, test_idle_timeout_blocked_writer);
        tcase_add_test(tc, test_session_timeout);
        tcase_add_test(tc, test_timeout_first_wins);
        tcase_add_test(tc, test_max_bytes);
        tcase_add_test(tc, test_max_bytes_not_reached);
        suite_add_tcase(s, tc);

        tc = tcase_create("errors");
        tcase_add_test(tc, test_peer_closed_with_data_pending);
        tcase_add_test(tc, test_peer_reset_midway);
        tcase_add_test(tc, test_bad_descriptor);
        suite_add_tcase(s, tc);

        tc = tcase_create("stop");
        tcase_add_test(tc, test_stop_when_idle);
        tcase_add_test(tc, test_stop_flushes);
        tcase_add_test(tc, test_stop_signal_wakes_poll);
        suite_add_tcase(s, tc);

        tc = tcase_create("close");
        tcase_add_test(tc, test_close_after_max_bytes_is_clean);
        tcase_add_test(tc, test_close_linger_is_bounded);
        suite_add_tcase(s, tc);

        tc = tcase_create("close_reason");
        tcase_add_test(tc, test_close_reason_codes);
        tcase_add_test(tc, test_close_reason_names);
        tcase_add_test(tc, test_conn_record_wanted);
        suite_add_tcase(s, tc);

        {
                /* Bugs this suite found, fixed since; kept as regressions. */
                tc = tcase_create("regressions");
                tcase_set_timeout(tc, 30);
                tcase_add_test(tc, test_regression_session_timeout_busy_stream);
                suite_add_tcase(s, tc);
        }
        return s;
}

int main(void) {
        return unit_run(echo_suite());
}
