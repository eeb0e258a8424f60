/* SPDX-License-Identifier: MIT */
/* The echo loop, its lossless close, and the worker process around one connection. */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "proctitle.h"
#include "macro.h"
#include "strbuf.h"
#include "worker.h"

#define ECHO_BUFFER_SIZE (64 * 1024)
#define PAYLOAD_LOG_BYTES 256
#define BUSY_CHECK_USEC (100 * USEC_PER_MSEC)

volatile sig_atomic_t worker_stop;

/* In BSS: pages a worker never touches cost it nothing. */
static char echo_buffer[ECHO_BUFFER_SIZE];

static const char *const reason_names[_CLOSE_REASON_MAX] = {
        [CLOSE_EOF] = "eof",
        [CLOSE_IDLE_TIMEOUT] = "idle-timeout",
        [CLOSE_SESSION_TIMEOUT] = "session-timeout",
        [CLOSE_MAX_BYTES] = "max-bytes",
        [CLOSE_RESET] = "reset",
        [CLOSE_ERROR] = "error",
        [CLOSE_SHUTDOWN] = "shutdown",
        [CLOSE_KILLED] = "killed",
        [CLOSE_FAILED] = "failed",
};

/* Exit codes 0 and 10..15; anything else from a worker is abnormal. */
#define EXIT_CODE_BASE 10

const char *close_reason_to_string(enum close_reason r) {
        return r < _CLOSE_REASON_MAX ? reason_names[r] : "unknown";
}

int close_reason_to_exit_code(enum close_reason r) {
        return r == CLOSE_EOF ? 0 : EXIT_CODE_BASE + (int) r - 1;
}

int close_reason_from_exit_code(int code) {
        if (code == 0)
                return CLOSE_EOF;
        if (code >= EXIT_CODE_BASE && code < EXIT_CODE_BASE + _CLOSE_REASON_WORKER_MAX - 1)
                return code - EXIT_CODE_BASE + 1;
        return -1;
}

bool close_reason_abnormal(enum close_reason r) {
        switch (r) {
        case CLOSE_EOF:
        case CLOSE_MAX_BYTES:
        case CLOSE_SHUTDOWN:
                return false;
        default:
                return true;
        }
}

bool close_reason_warning(enum close_reason r) {
        return r == CLOSE_ERROR || r == CLOSE_KILLED || r == CLOSE_FAILED;
}

bool conn_record_wanted(enum log_connections mode, bool open, enum close_reason r) {
        switch (mode) {
        case LOG_CONNECTIONS_ALL:
                return true;
        case LOG_CONNECTIONS_CLOSE:
                return !open;
        case LOG_CONNECTIONS_ERRORS:
                return !open && close_reason_abnormal(r);
        default:
                return !open && close_reason_warning(r);
        }
}

static void log_payload(const char *data, size_t n) {
        char out[PAYLOAD_LOG_BYTES * 4 + 1], *p = out;
        size_t shown = n < PAYLOAD_LOG_BYTES ? n : PAYLOAD_LOG_BYTES;

        for (size_t i = 0; i < shown; i++) {
                unsigned char c = (unsigned char) data[i];
                if (c == '\\')
                        p += sprintf(p, "\\\\");
                else if (c >= 0x20 && c < 0x7f)
                        *p++ = (char) c;
                else
                        p += sprintf(p, "\\x%02x", c);
        }
        *p = '\0';
        log_record(LOG_DEBUG, true, ECHOD_MID_PAYLOAD, NULL, "received %zu bytes%s: \"%s\"",
                   n, n > shown ? " (first 256 shown)" : "", out);
}

static bool is_reset(int err) {
        return err == ECONNRESET || err == EPIPE || err == ECONNABORTED || err == ETIMEDOUT;
}

/* SIGTERM/SIGINT stay blocked outside ppoll(): see whether one waits. */
static bool stop_pending(void) {
        sigset_t pending;

        if (sigpending(&pending) < 0)
                return false;
        return sigismember(&pending, SIGTERM) == 1 || sigismember(&pending, SIGINT) == 1;
}

static void finish(struct echo_result *ret, enum close_reason reason, int err) {
        ret->reason = reason;
        ret->error = err;
}

/* One non-blocking write: to the socket, or to a pipe under --inetd. */
static ssize_t write_some(int fd, const char *buf, size_t len) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);

        if (n < 0 && errno == ENOTSOCK)
                n = write(fd, buf, len);
        return n;
}

static struct timespec timespec_from_usec(uint64_t usec) {
        return (struct timespec) {
                .tv_sec = (time_t) (usec / USEC_PER_SEC),
                .tv_nsec = (long) (usec % USEC_PER_SEC) * 1000,
        };
}

/* Waits up to deadline for pfd; false when the deadline has passed or the
 * wait failed. A signal (a stop request) only ends the wait early. */
static bool wait_until(struct pollfd *pfd, uint64_t deadline, const sigset_t *poll_mask) {
        uint64_t now = now_usec(CLOCK_MONOTONIC);
        struct timespec ts;

        if (now >= deadline)
                return false;
        ts = timespec_from_usec(deadline - now);
        return ppoll(pfd, 1, &ts, poll_mask) >= 0 || errno == EINTR;
}

/* When a close that echod starts must be over: linger_usec from now, and
 * after a stop request no later than the master allows (it kills what is
 * still running shutdown_timeout after it asked). */
static uint64_t close_deadline(const struct echo_limits *limits, bool stop_seen, uint64_t stop_time) {
        uint64_t deadline = now_usec(CLOCK_MONOTONIC) + limits->linger_usec;

        if (stop_seen && stop_time + limits->stop_usec < deadline)
                deadline = stop_time + limits->stop_usec;
        return deadline;
}

/*
 * Ends a connection that echod closes: writes back the len bytes still held,
 * sends FIN after the last of them, then reads and discards until the
 * client's FIN, all before deadline. A close() while unread bytes sit in
 * the receive queue sends RST instead of FIN, and the kernel then drops the
 * send queue, i.e. echoed bytes the client has not read yet. Past the
 * deadline the caller's close() happens anyway: the client has stopped
 * reading or never closes.
 */
static void close_lingering(int in_fd, int out_fd, size_t off, size_t len, uint64_t deadline,
                            const sigset_t *poll_mask, struct echo_result *ret) {
        bool shut = false;

        for (;;) {
                struct pollfd pfd;
                ssize_t n;

                if (len > 0) {
                        n = write_some(out_fd, echo_buffer + off, len);
                        if (n > 0) {
                                off += (size_t) n;
                                len -= (size_t) n;
                                ret->bytes += (uint64_t) n;
                                continue;
                        }
                        if (n < 0 && errno != EINTR && errno != EAGAIN)
                                return;         /* the client is gone: nothing left to protect */
                        pfd = (struct pollfd) { .fd = out_fd, .events = POLLOUT };
                } else if (!shut) {
                        (void) shutdown(out_fd, SHUT_WR);
                        shut = true;
                        continue;
                } else {
                        n = read(in_fd, echo_buffer, sizeof echo_buffer);
                        if (n == 0)
                                return;         /* the client's FIN: nothing unread is left */
                        if (n > 0) {
                                /* A client that keeps sending never lets us wait. */
                                if (now_usec(CLOCK_MONOTONIC) >= deadline)
                                        return;
                                continue;
                        }
                        if (errno != EINTR && errno != EAGAIN)
                                return;
                        pfd = (struct pollfd) { .fd = in_fd, .events = POLLIN };
                }
                if (!wait_until(&pfd, deadline, poll_mask))
                        return;
        }
}

void echo_loop(int in_fd, int out_fd, const struct echo_limits *limits,
               const sigset_t *poll_mask, struct echo_result *ret) {
        uint64_t start = now_usec(CLOCK_MONOTONIC), last_progress = start;
        uint64_t last_check = start, stop_time = 0;
        size_t off = 0, len = 0;
        bool eof = false, stop_seen = false;
        enum close_reason why;

        memset(ret, 0, sizeof *ret);
        for (;;) {
                struct pollfd pfd;
                ssize_t n;

                /* A client that keeps us busy never lets us wait in ppoll(),
                 * where stop signals arrive and deadlines are checked: look
                 * at both every 100 ms of busy echoing as well. */
                if (limits->session_usec > 0 && last_progress - start >= limits->session_usec) {
                        why = CLOSE_SESSION_TIMEOUT;
                        break;
                }
                if (poll_mask && last_progress - last_check >= BUSY_CHECK_USEC) {
                        last_check = last_progress;
                        if (stop_pending())
                                worker_stop = 1;
                }
                if (worker_stop && !stop_seen) {
                        stop_seen = true;
                        stop_time = now_usec(CLOCK_MONOTONIC);
                }

                if (len > 0) {
                        n = write_some(out_fd, echo_buffer + off, len);
                        if (n > 0) {
                                off += (size_t) n;
                                len -= (size_t) n;
                                ret->bytes += (uint64_t) n;
                                last_progress = now_usec(CLOCK_MONOTONIC);
                                continue;
                        }
                        if (n < 0 && errno == EINTR)
                                continue;
                        if (n < 0 && errno != EAGAIN) {
                                finish(ret, is_reset(errno) ? CLOSE_RESET : CLOSE_ERROR, errno);
                                return;
                        }
                        pfd = (struct pollfd) { .fd = out_fd, .events = POLLOUT };
                } else if (limits->max_bytes > 0 && ret->bytes >= limits->max_bytes) {
                        why = CLOSE_MAX_BYTES;
                        break;
                } else if (eof) {
                        /* Nothing can be left unread: a plain FIN is clean. */
                        finish(ret, CLOSE_EOF, 0);
                        if (limits->on_clean_end)
                                limits->on_clean_end(ret, limits->userdata);
                        (void) shutdown(out_fd, SHUT_WR);
                        return;
                } else if (worker_stop) {
                        /* Everything read has been written back; echo no more. */
                        why = CLOSE_SHUTDOWN;
                        break;
                } else {
                        size_t want = sizeof echo_buffer;
                        if (limits->max_bytes > 0 && limits->max_bytes - ret->bytes < want)
                                want = (size_t) (limits->max_bytes - ret->bytes);
                        n = read(in_fd, echo_buffer, want);
                        if (n > 0) {
                                off = 0;
                                len = (size_t) n;
                                last_progress = now_usec(CLOCK_MONOTONIC);
                                if (limits->log_payload)
                                        log_payload(echo_buffer, len);
                                continue;
                        }
                        if (n == 0) {
                                eof = true;
                                continue;
                        }
                        if (errno == EINTR)
                                continue;
                        if (errno != EAGAIN) {
                                finish(ret, is_reset(errno) ? CLOSE_RESET : CLOSE_ERROR, errno);
                                return;
                        }
                        pfd = (struct pollfd) { .fd = in_fd, .events = POLLIN };
                }

                /* Nothing to do until the socket is ready: wait, bounded by the timeouts. */
                uint64_t now = now_usec(CLOCK_MONOTONIC), deadline = USEC_INFINITY;
                why = CLOSE_IDLE_TIMEOUT;
                if (limits->idle_usec > 0)
                        deadline = last_progress + limits->idle_usec;
                if (limits->session_usec > 0 && start + limits->session_usec < deadline) {
                        deadline = start + limits->session_usec;
                        why = CLOSE_SESSION_TIMEOUT;
                }
                if (deadline != USEC_INFINITY && now >= deadline)
                        break;
                struct timespec ts, *tsp = NULL;
                if (deadline != USEC_INFINITY) {
                        ts = timespec_from_usec(deadline - now);
                        tsp = &ts;
                }
                int r = ppoll(&pfd, 1, tsp, poll_mask);
                if (r < 0 && errno != EINTR) {
                        finish(ret, CLOSE_ERROR, errno);
                        return;
                }
                /* Timeouts and stop requests are checked at the top of the loop. */
        }

        finish(ret, why, 0);
        close_lingering(in_fd, out_fd, off, len, close_deadline(limits, stop_seen, stop_time), poll_mask, ret);
}

static void on_stop_signal(int sig) {
        (void) sig;
        worker_stop = 1;
}

void worker_signals_install(void) {
        struct sigaction stop = { .sa_handler = on_stop_signal };

        sigemptyset(&stop.sa_mask);
        (void) sigaction(SIGTERM, &stop, NULL);
        (void) sigaction(SIGINT, &stop, NULL);
}

/* Signals as a worker on its own (--inetd) wants them: SIGTERM/SIGINT set a
 * flag and are only delivered while waiting in ppoll; SIGHUP, SIGUSR1 and
 * SIGUSR2 are ignored; SIGPIPE cannot happen (MSG_NOSIGNAL) but is ignored. The
 * master's workers inherit the equivalent from the master. */
static void worker_setup_signals(sigset_t *ret_poll_mask) {
        struct sigaction ign = { .sa_handler = SIG_IGN };
        sigset_t block;

        worker_signals_install();
        (void) sigaction(SIGHUP, &ign, NULL);
        (void) sigaction(SIGUSR1, &ign, NULL);
        (void) sigaction(SIGUSR2, &ign, NULL);
        (void) sigaction(SIGPIPE, &ign, NULL);

        sigemptyset(&block);
        sigaddset(&block, SIGTERM);
        sigaddset(&block, SIGINT);
        (void) sigprocmask(SIG_SETMASK, &block, NULL);
        sigemptyset(ret_poll_mask);
}

/* One datagram, sent once: the master gives the client's slot back when it
 * takes it (or, without it, when it reaps the worker). */
static void send_report(int fd, const struct echo_result *res) {
        struct worker_report rep = {
                .magic = WORKER_REPORT_MAGIC,
                .pid = (int32_t) getpid(),
                .reason = (uint32_t) res->reason,
                .error = res->error,
                .bytes = res->bytes,
        };

        while (send(fd, &rep, sizeof rep, MSG_NOSIGNAL) < 0 && errno == EINTR)
                ;
}

struct reporter {
        int fd;
        bool sent;
};

/* A clean end is reported before the FIN, so that the master has given
 * the slot back before the client, seeing the FIN, can connect again. */
static void report_clean_end(const struct echo_result *res, void *userdata) {
        struct reporter *rp = userdata;

        send_report(rp->fd, res);
        rp->sent = true;
}

/* --inetd: no master, so the worker writes its own record. */
static void log_own_record(const struct config *cfg, int fd, const struct sockaddr_any *peer, const char *host,
                           bool open, const struct echo_result *res, uint64_t duration) {
        struct sockaddr_any local = { .len = sizeof local.storage };

        if (!conn_record_wanted(cfg->log_connections, open, res ? res->reason : CLOSE_EOF))
                return;
        if (getsockname(fd, &local.sa, &local.len) < 0)
                local.len = 0;
        (void) log_conn_record(&(struct conn_record) {
                .host = host,
                .remote_port = sockaddr_port(peer),
                .local_port = local.len > 0 ? sockaddr_port(&local) : 0,
                .pid = (int) getpid(),
                .open = open,
                .reason = res ? close_reason_to_string(res->reason) : NULL,
                .warning = res && close_reason_warning(res->reason),
                .error = res ? res->error : 0,
                .bytes_known = true,
                .bytes = res ? res->bytes : 0,
                .duration_usec = duration,
        });
}

int worker_main(int in_fd, int out_fd, const struct config *cfg, const struct worker_args *args) {
        struct sockaddr_any peer = {};
        char peer_host[ADDR_STR_MAX], title[ADDR_STR_MAX + 32];
        struct echo_limits limits = {
                .idle_usec = cfg->idle_timeout_usec,
                .session_usec = cfg->session_timeout_usec,
                .max_bytes = cfg->max_bytes,
                .linger_usec = ECHO_LINGER_USEC,
                .stop_usec = cfg->shutdown_timeout_usec,
                .log_payload = cfg->log_payload,
        };
        struct echo_result res;
        struct reporter rp = { .fd = -1 };
        struct strbuf sb;
        const sigset_t *poll_mask;
        sigset_t own_mask;
        uint64_t start = now_usec(CLOCK_MONOTONIC);

        if (args) {
                poll_mask = args->poll_mask;
                peer = *args->remote;
                rp.fd = args->report_fd;
                limits.on_clean_end = report_clean_end;
                limits.userdata = &rp;
        } else {
                worker_setup_signals(&own_mask);
                poll_mask = &own_mask;
                peer.len = sizeof peer.storage;
                if (getpeername(in_fd, &peer.sa, &peer.len) < 0)
                        memset(&peer, 0, sizeof peer);
                sockaddr_unmap(&peer);
        }
        sockaddr_format_host(&peer, peer_host, sizeof peer_host);
        strbuf_init(&sb, title, sizeof title);
        strbuf_add(&sb, "echod: worker [");
        strbuf_add(&sb, peer_host);
        strbuf_add(&sb, "]:");
        strbuf_add_u64(&sb, sockaddr_port(&peer));
        proctitle_set_text(title);
        (void) prctl(PR_SET_NAME, (unsigned long) "echod: worker", 0, 0, 0);

        if (!args)
                log_own_record(cfg, in_fd, &peer, peer_host, true, NULL, 0);

        echo_loop(in_fd, out_fd, &limits, poll_mask, &res);

        if (args) {
                if (!rp.sent)
                        send_report(args->report_fd, &res);
        } else
                log_own_record(cfg, in_fd, &peer, peer_host, false, &res, now_usec(CLOCK_MONOTONIC) - start);
        return close_reason_to_exit_code(res.reason);
}
