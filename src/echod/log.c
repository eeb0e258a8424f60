/* SPDX-License-Identifier: MIT */
/* Where log records go (journal or stderr), level filtering and rate limits. */
#include <errno.h>
#include <printf.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <dirent.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <systemd/sd-journal.h>
#include <unistd.h>

#include "log.h"
#include "strbuf.h"

#define MAX_FIELDS 32

static enum log_target log_target = LOG_TARGET_STDERR;
static int log_max_level = LOG_INFO;
static int log_error_copy_fd = -1;
static int journal_fd = -1;             /* libsystemd's journal socket, once known */
static bool journal_used;               /* this process sent a record */

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

void log_open(enum log_target target) {
        if (target == LOG_TARGET_AUTO) {
                if (isatty(STDERR_FILENO) || access("/run/systemd/journal/socket", W_OK) < 0)
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

/* libsystemd keeps its journal socket to itself: it is the one unbound
 * AF_UNIX datagram socket among ours (notify sockets live only for a send). */
static int find_journal_fd(void) {
        DIR *d = opendir("/proc/self/fd");
        struct dirent *de;
        int found = -1;

        if (!d)
                return -1;
        while ((de = readdir(d))) {
                int fd = atoi(de->d_name), domain = 0, type = 0;
                socklen_t len = sizeof domain;
                struct sockaddr_storage ss;
                struct stat st;

                if (de->d_name[0] == '.' || fd == dirfd(d))
                        continue;
                if (fstat(fd, &st) < 0 || !S_ISSOCK(st.st_mode))
                        continue;
                if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) < 0 || domain != AF_UNIX)
                        continue;
                len = sizeof type;
                if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0 || type != SOCK_DGRAM)
                        continue;
                len = sizeof ss;
                if (getsockname(fd, (struct sockaddr *) &ss, &len) < 0 || len > sizeof(sa_family_t))
                        continue;       /* bound: not libsystemd's */
                found = fd;
                break;
        }
        closedir(d);
        return found;
}

int log_journal_fd(void) {
        return journal_fd;
}

void log_journal_fork_child(void) {
        int fd;

        /* Written only when logging to the journal: every page a worker
         * writes is one more page copied after fork(). */
        if (log_target != LOG_TARGET_JOURNAL || journal_fd < 0)
                return;
        journal_used = false;
        /* Same descriptor number, so libsystemd keeps using it, but a socket
         * of our own: its send queue holds only this worker's records. */
        fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return;
        if (fd != journal_fd) {
                (void) dup3(fd, journal_fd, O_CLOEXEC);
                (void) close(fd);
        }
}

void log_journal_sync(uint64_t timeout_usec) {
        uint64_t start = now_usec(CLOCK_MONOTONIC);
        long wait_ns = 20000;

        if (log_target != LOG_TARGET_JOURNAL || journal_fd < 0 || !journal_used)
                return;
        for (;;) {
                int queued = 0;

                /* For a datagram socket: bytes sent and not yet received. */
                if (ioctl(journal_fd, SIOCOUTQ, &queued) < 0 || queued <= 0)
                        return;
                if (now_usec(CLOCK_MONOTONIC) - start >= timeout_usec)
                        return;
                struct timespec ts = { .tv_nsec = wait_ns };
                (void) nanosleep(&ts, NULL);
                if (wait_ns < 2000000)
                        wait_ns *= 2;
        }
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
static void emit(int priority, const char *mid, const char *const *fields, char *msg_field, int saved_errno) {
        const char *msg = msg_field + MESSAGE_PREFIX_LEN;
        char prio_field[16], mid_field[48];
        struct iovec iov[MAX_FIELDS + 5];
        struct strbuf sb;
        size_t n = 0;

        if (log_error_copy_fd >= 0 && priority <= LOG_ERR)
                write_line(log_error_copy_fd, msg);

        if (log_target == LOG_TARGET_NONE) {
                errno = saved_errno;
                return;
        }
        if (log_target != LOG_TARGET_JOURNAL) {
                write_line(STDERR_FILENO, msg);
                errno = saved_errno;
                return;
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
        if (sd_journal_sendv(iov, (int) n) >= 0) {
                journal_used = true;
                if (journal_fd < 0)
                        journal_fd = find_journal_fd();
        }
        errno = saved_errno;
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

void log_struct_internal(int priority, const char *format, ...) {
        char msg_field[MESSAGE_PREFIX_LEN + MESSAGE_MAX] = MESSAGE_PREFIX, arena[LOG_STRUCT_FIELDS_MAX];
        const char *fields[MAX_FIELDS + 1];
        int saved_errno = errno;
        size_t used = 0, nf = 0;
        bool force = priority & LOG_FORCE;
        va_list ap;

        priority &= ~LOG_FORCE;
        if (!force && priority > log_max_level)
                return;

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
                if (is_message || n < 0 || nf == MAX_FIELDS)
                        continue;
                if ((size_t) n >= room)
                        n = (int) room - 1;     /* cut off, still NUL-terminated */
                fields[nf++] = out;
                used += (size_t) n + 1;
        }
        va_end(ap);
        fields[nf] = NULL;
        emit(priority, NULL, fields, msg_field, saved_errno);
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
