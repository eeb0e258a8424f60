/* SPDX-License-Identifier: MIT */
/*
 * Logging: structured records to the systemd journal, or plain lines on
 * stderr. Only the code that decides what happens next logs; helpers return
 * -errno instead.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <syslog.h>

#include "log-ids.h"
#include "macro.h"

enum log_target {
        LOG_TARGET_AUTO,
        LOG_TARGET_JOURNAL,
        LOG_TARGET_STDERR,
        LOG_TARGET_NONE,        /* nowhere safe to write (stderr is a client's socket) */
};

/* Picks the journal or stderr. AUTO: stderr when it is a terminal or the
 * journal socket is missing, otherwise the journal. */
void log_open(enum log_target target);
enum log_target log_get_target(void);
int log_target_from_string(const char *s);

void log_set_level(int level);
int log_level_from_string(const char *s);
const char *log_level_to_string(int level);

/* While a detached daemon starts, errors are also copied to this descriptor
 * (the starter's stderr); -1 turns the copy off. */
void log_set_error_copy_fd(int fd);

/*
 * Logs one record. mid is a MESSAGE_ID (or NULL); fields is a NULL-terminated
 * list of "KEY=value" strings for the journal (or NULL). force skips the level
 * filter. Returns nothing: logging must never change what the caller does.
 */
void log_record(int priority, bool force, const char *mid, const char *const *fields,
                const char *format, ...) _printf_(5, 6);

/* The same with the message already formatted: no printf on this path. */
void log_record_text(int priority, bool force, const char *mid, const char *const *fields, const char *text);

/*
 * One structured record, fields as arguments, in the spirit of systemd's
 * log_struct():
 *     log_struct(LOG_WARNING,
 *                LOG_MESSAGE_ID(ECHOD_MID_CONN_REFUSED),
 *                "REMOTE_ADDR=%s", host,
 *                "SUPPRESSED=%" PRIu64, n,
 *                LOG_MESSAGE("refused connection from %s", peer));
 * Each argument is a printf format "KEY=..." followed by its values; the
 * MESSAGE= one is the text on stderr; one that prints nothing adds no field.
 * Or LOG_FORCE into the priority to skip the level filter. Fields are cut at LOG_STRUCT_FIELDS_MAX bytes in all.
 */
#define LOG_FORCE 0x100
#define LOG_STRUCT_FIELDS_MAX 8192
#define LOG_MESSAGE(...) "MESSAGE=" __VA_ARGS__
#define LOG_MESSAGE_ID(id) "MESSAGE_ID=" id
/* Returns false when the journal did not take the record. */
bool log_struct_internal(int priority, const char *format, ...);
#define log_struct(priority, ...) log_struct_internal((priority), __VA_ARGS__, NULL)

#define log_full(prio, ...) log_record((prio), false, NULL, NULL, __VA_ARGS__)
#define log_error(...)   log_full(LOG_ERR, __VA_ARGS__)
#define log_warning(...) log_full(LOG_WARNING, __VA_ARGS__)
#define log_notice(...)  log_full(LOG_NOTICE, __VA_ARGS__)
#define log_info(...)    log_full(LOG_INFO, __VA_ARGS__)
#define log_debug(...)   log_full(LOG_DEBUG, __VA_ARGS__)

/* Logs with errno set from r (so %m prints it) and returns -|r|. */
#define log_full_errno(prio, r, ...) ({                         \
        int _e = (r) < 0 ? -(r) : (r);                          \
        errno = _e;                                             \
        log_full((prio), __VA_ARGS__);                          \
        -_e;                                                    \
})
#define log_error_errno(r, ...)   log_full_errno(LOG_ERR, r, __VA_ARGS__)
#define log_warning_errno(r, ...) log_full_errno(LOG_WARNING, r, __VA_ARGS__)

/*
 * Records go to journald over a socket of our own, connected, non-blocking,
 * in the native protocol: a full journal socket never makes the master
 * wait. Records it cannot take at once are queued, bounded (4,096 records,
 * 8 MiB); only past that bound is a record dropped (and counted).
 * The socket is $ECHOD_JOURNAL_SOCKET when set (a test hook), else
 * journald's. A worker keeps the descriptor (-1 before the first record).
 * The descriptor changes when journald restarts.
 */
int log_journal_fd(void);
/* Sends what is queued while journald takes it; returns how many remain. */
size_t log_journal_flush(void);
size_t log_journal_queued(void);
/* At exit: waits up to timeout_usec for journald to take the queue; what
 * remains is counted as dropped. */
void log_journal_drain(uint64_t timeout_usec);
/* In a worker: the queue it inherited is the master's to send; its own
 * records are sent or dropped, never queued. */
void log_journal_forget(void);
/* Records that could not be handed to journald (full socket, journald gone). */
uint64_t log_dropped(void);

/* Which connection records are written (log_connections). */
enum log_connections {
        LOG_CONNECTIONS_OFF,
        LOG_CONNECTIONS_CLOSE,          /* one record per connection, at its end */
        LOG_CONNECTIONS_ALL,            /* an open record as well */
        LOG_CONNECTIONS_ERRORS,         /* only the ends that are not normal */
};
const char *log_connections_to_string(enum log_connections mode);

/* One connection, as its open or its end record tells it. */
struct conn_record {
        const char *host;               /* REMOTE_ADDR */
        uint16_t remote_port;
        uint16_t local_port;            /* the listener's */
        int pid;                        /* the worker */
        bool open;                      /* the open record, not the end */
        const char *reason;             /* CLOSE_REASON */
        bool warning;                   /* logged as a warning, not as info */
        int error;                      /* ERRNO, 0 = none */
        int signal;                     /* the worker was killed by it, 0 = not */
        bool bytes_known;               /* the worker reported them */
        uint64_t bytes;
        uint64_t duration_usec;
        const char *proxy_host;         /* PROXY_ADDR: the balancer, NULL = none */
        uint16_t proxy_port;
};

/* Writes r: the MESSAGE_ID and fields of ECHOD_MID_CONN_OPEN or
 * ECHOD_MID_CONN_CLOSE. Returns false when the journal did not take it. */
bool log_conn_record(const struct conn_record *r);

/* At most one record per interval; counts what was held back. */
struct log_ratelimit {
        uint64_t interval_usec;
        uint64_t window_start;
        uint64_t suppressed;
        bool used;
};

/* Returns true when a record may be logged now; *ret_suppressed is how many
 * were held back since the last one. */
bool log_ratelimit_test(struct log_ratelimit *rl, uint64_t now, uint64_t *ret_suppressed);
