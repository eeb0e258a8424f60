/* SPDX-License-Identifier: MIT */
/* Where log records go (journal or stderr), level filtering, rate limits,
 * and the form of a connection record. */
#include <errno.h>
#include <printf.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <endian.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdlib.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include "addr.h"
#include "log.h"
#include "macro.h"
#include "strbuf.h"

#define MAX_FIELDS 64
#define JOURNAL_SOCKET "/run/systemd/journal/socket"

static enum log_target log_target = LOG_TARGET_STDERR;
static int log_max_level = LOG_INFO;
static int log_error_copy_fd = -1;
static int journal_fd = -1;             /* our journal socket, once opened */
static uint64_t dropped;                /* records journald did not take */

/*
 * Records journald could not take at once (its socket's queue holds only
 * net.unix.max_dgram_qlen datagrams, 10 by default), in order, each one
 * datagram ready to send. Bounded: past the bound a record is dropped and
 * counted. The master sends them as the socket becomes writable.
 */
#define QUEUE_MAX_RECORDS 4096
#define QUEUE_MAX_BYTES (8U * 1024 * 1024)
struct queued {
        size_t size;
        char data[];
};
static struct queued *queue[QUEUE_MAX_RECORDS];
static size_t queue_head, queue_len, queue_bytes;
static bool queueing = true;

static const char *const level_names[] = {
        [LOG_EMERG] = "emerg",
        [LOG_ALERT] = "alert",
        [LOG_CRIT] = "crit",
        [LOG_ERR] = "err",
        [LOG_WARNING] = "warning",
        [LOG_NOTICE] = "notice",
        [LOG_INFO] = "info",
        [LOG_DEBUG] = "debug",
};

static const char *journal_path(void) {
        const char *p = getenv("ECHOD_JOURNAL_SOCKET");

        return p && p[0] ? p : JOURNAL_SOCKET;
}

void log_open(enum log_target target) {
        if (target == LOG_TARGET_AUTO) {
                if (isatty(STDERR_FILENO) || access(journal_path(), W_OK) < 0)
                        target = LOG_TARGET_STDERR;
                else
                        target = LOG_TARGET_JOURNAL;
        }
        log_target = target;
}

enum log_target log_get_target(void) {
        return log_target;
}

int log_target_from_string(const char *s) {
        if (strcmp(s, "auto") == 0)
                return LOG_TARGET_AUTO;
        if (strcmp(s, "journal") == 0)
                return LOG_TARGET_JOURNAL;
        if (strcmp(s, "stderr") == 0)
                return LOG_TARGET_STDERR;
        return -EINVAL;
}

void log_set_level(int level) {
        log_max_level = level;
}

int log_level_from_string(const char *s) {
        /* The levels an operator may choose; emerg..crit are never filtered. */
        for (int i = LOG_ERR; i <= LOG_DEBUG; i++)
                if (strcmp(s, level_names[i]) == 0)
                        return i;
        return -EINVAL;
}

const char *log_level_to_string(int level) {
        if (level < 0 || level >= (int) ARRAY_SIZE(level_names))
                return "unknown";
        return level_names[level];
}

void log_set_error_copy_fd(int fd) {
        log_error_copy_fd = fd;
}

int log_journal_fd(void) {
        return journal_fd;
}

uint64_t log_dropped(void) {
        return dropped;
}

/*
 * journald's native protocol: "KEY=value\n" per field, or, for a value
 * with a newline in it, "KEY\n", its length as 64-bit little endian, the
 * value and "\n". One datagram per record, sent without waiting.
 */
/* A connected socket, so that poll() and epoll can say when journald's
 * queue has room again. */
static int journal_connect(void) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        const char *path = journal_path();
        int fd;

        if (journal_fd >= 0)
                return 0;
        if (strlen(path) >= sizeof sa.sun_path)
                return -ENAMETOOLONG;
        strcpy(sa.sun_path, path);
        fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        if (connect(fd, (struct sockaddr *) &sa,
                    (socklen_t) (offsetof(struct sockaddr_un, sun_path) + strlen(path) + 1)) < 0) {
                int r = -errno;
                close(fd);
                return r;
        }
        journal_fd = fd;
        return 0;
}

/* 1 sent, 0 journald's queue is full, -errno gone or failed. */
static int journal_sendmsg(const struct msghdr *mh) {
        for (int attempt = 0; attempt < 2; attempt++) {
                if (journal_connect() < 0)
                        return -ENOTCONN;
                for (;;) {
                        if (sendmsg(journal_fd, mh, MSG_NOSIGNAL | MSG_DONTWAIT) >= 0)
                                return 1;
                        if (errno != EINTR)
                                break;
                }
                if (errno == EAGAIN)
                        return 0;
                if (errno != ECONNREFUSED && errno != ENOTCONN)
                        return -errno;
                /* journald restarted: its socket is a new one. The
                 * descriptor number changes; the master watches for that. */
                close(journal_fd);
                journal_fd = -1;
        }
        return -ECONNREFUSED;
}

static bool queue_push(const struct iovec *iov, size_t k) {
        struct queued *q;
        size_t size = 0, off = 0;

        for (size_t i = 0; i < k; i++)
                size += iov[i].iov_len;
        if (queue_len == QUEUE_MAX_RECORDS || queue_bytes + size > QUEUE_MAX_BYTES)
                return false;
        q = malloc(sizeof *q + size);
        if (!q)
                return false;
        q->size = size;
        for (size_t i = 0; i < k; i++) {
                memcpy(q->data + off, iov[i].iov_base, iov[i].iov_len);
                off += iov[i].iov_len;
        }
        queue[(queue_head + queue_len) % QUEUE_MAX_RECORDS] = q;
        queue_len++;
        queue_bytes += size;
        return true;
}

size_t log_journal_flush(void) {
        while (queue_len > 0) {
                struct queued *q = queue[queue_head];
                struct iovec iov = { q->data, q->size };
                int r = journal_sendmsg(&(struct msghdr) { .msg_iov = &iov, .msg_iovlen = 1 });

                if (r == 0)
                        break;
                if (r < 0)
                        dropped++;
                queue[queue_head] = NULL;
                queue_head = (queue_head + 1) % QUEUE_MAX_RECORDS;
                queue_len--;
                queue_bytes -= q->size;
                free(q);
        }
        return queue_len;
}

size_t log_journal_queued(void) {
        return queue_len;
}

void log_journal_drain(uint64_t timeout_usec) {
        uint64_t deadline = now_usec(CLOCK_MONOTONIC) + timeout_usec;

        while (log_journal_flush() > 0) {
                uint64_t now = now_usec(CLOCK_MONOTONIC);

                if (now >= deadline || journal_fd < 0)
                        break;
                (void) poll(&(struct pollfd) { .fd = journal_fd, .events = POLLOUT }, 1,
                            (int) ((deadline - now + USEC_PER_MSEC - 1) / USEC_PER_MSEC));
        }
        dropped += queue_len;
        log_journal_forget();
}

void log_journal_forget(void) {
        /* A worker's copy of the master's queue is the master's to send. */
        queue_head = queue_len = queue_bytes = 0;
        queueing = false;
}

/*
 * journald's native protocol: "KEY=value\n" per field, or, for a value
 * with a newline in it, "KEY\n", its length as 64-bit little endian, the
 * value and "\n". One datagram per record, sent without waiting; queued
 * when journald's socket is full.
 */
static bool journal_send(const struct iovec *fields, size_t n) {
        struct iovec iov[(MAX_FIELDS + 5) * 5];          /* at most five per field */
        uint64_t lens[MAX_FIELDS + 5];
        size_t k = 0;
        int r;

        for (size_t i = 0; i < n; i++) {
                const char *f = fields[i].iov_base, *eq = memchr(f, '=', fields[i].iov_len);

                if (!eq)
                        continue;
                if (!memchr(eq, '\n', fields[i].iov_len - (size_t) (eq - f))) {
                        iov[k++] = fields[i];
                        iov[k++] = (struct iovec) { (char *) "\n", 1 };
                        continue;
                }
                lens[i] = htole64((uint64_t) (fields[i].iov_len - (size_t) (eq - f) - 1));
                iov[k++] = (struct iovec) { (char *) f, (size_t) (eq - f) };
                iov[k++] = (struct iovec) { (char *) "\n", 1 };
                iov[k++] = (struct iovec) { &lens[i], sizeof lens[i] };
                iov[k++] = (struct iovec) { (char *) eq + 1, fields[i].iov_len - (size_t) (eq - f) - 1 };
                iov[k++] = (struct iovec) { (char *) "\n", 1 };
        }
        /* Behind queued records a record waits its turn: order is kept. */
        r = queueing && log_journal_flush() > 0 ? 0 :
                journal_sendmsg(&(struct msghdr) { .msg_iov = iov, .msg_iovlen = k });
        if (r > 0)
                return true;
        if (r == 0 && queueing && queue_push(iov, k))
                return true;
        dropped++;
        return false;
}

static void write_line(int fd, const char *msg) {
        struct iovec iov[3] = {
                { .iov_base = (char *) "echod: ", .iov_len = 7 },
                { .iov_base = (char *) msg, .iov_len = strlen(msg) },
                { .iov_base = (char *) "\n", .iov_len = 1 },
        };
        /* One writev keeps lines from concurrent workers whole. */
        (void) writev(fd, iov, 3);
}

#define MESSAGE_PREFIX "MESSAGE="
#define MESSAGE_PREFIX_LEN (sizeof MESSAGE_PREFIX - 1)
#define MESSAGE_MAX 2048

/* msg_field: "MESSAGE=" and the text, in one buffer: no copy for the journal.
 * No printf here: workers log through this right after fork(). */
static bool emit(int priority, const char *mid, const char *const *fields, char *msg_field, int saved_errno) {
        const char *msg = msg_field + MESSAGE_PREFIX_LEN;
        char prio_field[16], mid_field[48];
        struct iovec iov[MAX_FIELDS + 5];
        struct strbuf sb;
        size_t n = 0;

        if (log_error_copy_fd >= 0 && priority <= LOG_ERR)
                write_line(log_error_copy_fd, msg);

        if (log_target == LOG_TARGET_NONE) {
                errno = saved_errno;
                return true;
        }
        if (log_target != LOG_TARGET_JOURNAL) {
                write_line(STDERR_FILENO, msg);
                errno = saved_errno;
                return true;
        }

        memcpy(msg_field, MESSAGE_PREFIX, MESSAGE_PREFIX_LEN);
        strbuf_init(&sb, prio_field, sizeof prio_field);
        strbuf_add(&sb, "PRIORITY=");
        strbuf_add_u64(&sb, (uint64_t) priority);
        iov[n++] = (struct iovec) { msg_field, strlen(msg_field) };
        iov[n++] = (struct iovec) { prio_field, strlen(prio_field) };
        iov[n++] = (struct iovec) { (char *) "SYSLOG_IDENTIFIER=echod", 23 };
        if (mid) {
                strbuf_init(&sb, mid_field, sizeof mid_field);
                strbuf_add(&sb, "MESSAGE_ID=");
                strbuf_add(&sb, mid);
                iov[n++] = (struct iovec) { mid_field, strlen(mid_field) };
        }
        for (size_t i = 0; fields && fields[i] && i < MAX_FIELDS; i++)
                iov[n++] = (struct iovec) { (char *) fields[i], strlen(fields[i]) };

        /* No fallback to stderr: under --inetd it may be the client's socket,
         * and a detached daemon's stderr is /dev/null anyway. */
        bool sent = journal_send(iov, n);
        errno = saved_errno;
        return sent;
}

void log_record(int priority, bool force, const char *mid, const char *const *fields,
                const char *format, ...) {
        char msg_field[MESSAGE_PREFIX_LEN + MESSAGE_MAX];
        int saved_errno = errno;
        va_list ap;

        if (!force && priority > log_max_level)
                return;

        va_start(ap, format);
        errno = saved_errno;
        vsnprintf(msg_field + MESSAGE_PREFIX_LEN, MESSAGE_MAX, format, ap);
        va_end(ap);
        emit(priority, mid, fields, msg_field, saved_errno);
}

/* Skips the arguments that format consumes, as vsnprintf() did with a copy. */
static void va_format_advance(const char *format, va_list *ap) {
        int types[16];
        size_t n = parse_printf_format(format, ARRAY_SIZE(types), types);

        for (size_t i = 0; i < n && i < ARRAY_SIZE(types); i++) {
                if (types[i] & PA_FLAG_PTR) {
                        (void) va_arg(*ap, void *);
                        continue;
                }
                switch (types[i] & ~PA_FLAG_MASK) {
                case PA_INT:
                case PA_CHAR:
                case PA_WCHAR:
                        if (types[i] & PA_FLAG_LONG_LONG)
                                (void) va_arg(*ap, long long);
                        else if (types[i] & PA_FLAG_LONG)
                                (void) va_arg(*ap, long);
                        else
                                (void) va_arg(*ap, int);
                        break;
                case PA_STRING:
                case PA_WSTRING:
                case PA_POINTER:
                        (void) va_arg(*ap, void *);
                        break;
                case PA_FLOAT:
                case PA_DOUBLE:
                        if (types[i] & PA_FLAG_LONG_DOUBLE)
                                (void) va_arg(*ap, long double);
                        else
                                (void) va_arg(*ap, double);
                        break;
                default:
                        abort();        /* a format log_struct() callers never use */
                }
        }
}

bool log_struct_internal(int priority, const char *format, ...) {
        char msg_field[MESSAGE_PREFIX_LEN + MESSAGE_MAX] = MESSAGE_PREFIX, arena[LOG_STRUCT_FIELDS_MAX];
        const char *fields[MAX_FIELDS + 1];
        int saved_errno = errno;
        size_t used = 0, nf = 0;
        bool force = priority & LOG_FORCE;
        va_list ap;

        priority &= ~LOG_FORCE;
        if (!force && priority > log_max_level)
                return true;

        va_start(ap, format);
        for (const char *f = format; f; f = va_arg(ap, const char *)) {
                bool is_message = strncmp(f, MESSAGE_PREFIX, MESSAGE_PREFIX_LEN) == 0;
                char *out = is_message ? msg_field : arena + used;
                size_t room = is_message ? sizeof msg_field : sizeof arena - used;
                va_list aq;
                int n;

                va_copy(aq, ap);
                errno = saved_errno;            /* for %m */
                /* Each field is its caller's literal, as in systemd's log_struct(). */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
                n = room > 0 ? vsnprintf(out, room, f, aq) : -1;
#pragma GCC diagnostic pop
                va_end(aq);
                va_format_advance(f, &ap);
                if (is_message || n <= 0 || nf == MAX_FIELDS)
                        continue;               /* an empty one is no field */
                if ((size_t) n >= room)
                        n = (int) room - 1;     /* cut off, still NUL-terminated */
                fields[nf++] = out;
                used += (size_t) n + 1;
        }
        va_end(ap);
        fields[nf] = NULL;
        return emit(priority, NULL, fields, msg_field, saved_errno);
}

void log_record_text(int priority, bool force, const char *mid, const char *const *fields, const char *text) {
        char msg_field[MESSAGE_PREFIX_LEN + MESSAGE_MAX];
        struct strbuf sb;

        if (!force && priority > log_max_level)
                return;

        strbuf_init(&sb, msg_field + MESSAGE_PREFIX_LEN, MESSAGE_MAX);
        strbuf_add(&sb, text);
        emit(priority, mid, fields, msg_field, errno);
}

bool log_ratelimit_test(struct log_ratelimit *rl, uint64_t now, uint64_t *ret_suppressed) {
        if (!rl->used || now - rl->window_start >= rl->interval_usec) {
                *ret_suppressed = rl->suppressed;
                rl->suppressed = 0;
                rl->window_start = now;
                rl->used = true;
                return true;
        }
        rl->suppressed++;
        *ret_suppressed = 0;
        return false;
}

static const char *const log_connections_names[] = {
        [LOG_CONNECTIONS_OFF] = "off",
        [LOG_CONNECTIONS_CLOSE] = "close",
        [LOG_CONNECTIONS_ALL] = "all",
        [LOG_CONNECTIONS_ERRORS] = "errors",
};

const char *log_connections_to_string(enum log_connections mode) {
        return (size_t) mode < ARRAY_SIZE(log_connections_names) ? log_connections_names[mode] : "unknown";
}

bool log_conn_record(const struct conn_record *r) {
        char peer[ADDR_STR_MAX + 8], bytes[64] = "bytes unknown", how[96] = "";
        char f_bytes[32] = "", f_errno[32] = "", f_signal[32] = "";
        char f_proxy[ADDR_STR_MAX + 16] = "", f_proxy_port[32] = "", via[ADDR_STR_MAX + 16] = "";
        bool v6 = strchr(r->host, ':') != NULL;

        snprintf(peer, sizeof peer, "%s%s%s:%u", v6 ? "[" : "", r->host, v6 ? "]" : "", r->remote_port);
        if (r->proxy_host) {
                bool pv6 = strchr(r->proxy_host, ':') != NULL;
                snprintf(f_proxy, sizeof f_proxy, "PROXY_ADDR=%s", r->proxy_host);
                snprintf(f_proxy_port, sizeof f_proxy_port, "PROXY_PORT=%u", r->proxy_port);
                snprintf(via, sizeof via, " via %s%s%s:%u", pv6 ? "[" : "", r->proxy_host, pv6 ? "]" : "",
                         r->proxy_port);
        }
        if (r->open)
                return log_struct(LOG_INFO,
                                  LOG_MESSAGE_ID(ECHOD_MID_CONN_OPEN),
                                  "REMOTE_ADDR=%s", r->host,
                                  "REMOTE_PORT=%u", r->remote_port,
                                  "LOCAL_PORT=%u", r->local_port,
                                  "WORKER_PID=%d", r->pid,
                                  "%s", f_proxy,
                                  "%s", f_proxy_port,
                                  LOG_MESSAGE("connection from %s%s to port %u opened (worker %d)",
                                              peer, via, r->local_port, r->pid));

        /* Fields that are not known are left out, not written as 0. */
        if (r->bytes_known) {
                snprintf(bytes, sizeof bytes, "%" PRIu64 " bytes echoed", r->bytes);
                snprintf(f_bytes, sizeof f_bytes, "BYTES=%" PRIu64, r->bytes);
        }
        if (r->error) {
                snprintf(how, sizeof how, ": %s", strerror(r->error));
                snprintf(f_errno, sizeof f_errno, "ERRNO=%d", r->error);
        }
        if (r->signal) {
                snprintf(how, sizeof how, " by signal %d (%s)", r->signal, strsignal(r->signal));
                snprintf(f_signal, sizeof f_signal, "SIGNAL=%d", r->signal);
        }
        return log_struct(r->warning ? LOG_WARNING : LOG_INFO,
                          LOG_MESSAGE_ID(ECHOD_MID_CONN_CLOSE),
                          "REMOTE_ADDR=%s", r->host,
                          "REMOTE_PORT=%u", r->remote_port,
                          "LOCAL_PORT=%u", r->local_port,
                          "WORKER_PID=%d", r->pid,
                          "%s", f_bytes,
                          "DURATION_USEC=%" PRIu64, r->duration_usec,
                          "CLOSE_REASON=%s", r->reason,
                          "%s", f_errno,
                          "%s", f_signal,
                          "%s", f_proxy,
                          "%s", f_proxy_port,
                          LOG_MESSAGE("connection from %s%s closed: %s%s, %s in %" PRIu64 ".%03" PRIu64 " s",
                                      peer, via, r->reason, how, bytes, r->duration_usec / USEC_PER_SEC,
                                      r->duration_usec % USEC_PER_SEC / USEC_PER_MSEC));
}
