/* SPDX-License-Identifier: MIT */
/*
 * Logging: structured records to the systemd journal, or plain lines on
 * stderr. Only the code that decides what happens next logs; helpers return
 * -errno instead.
 */
#pragma once

#include <stdbool.h>
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
 * MESSAGE= one is the text on stderr. Or LOG_FORCE into the priority to skip
 * the level filter. Fields are cut at LOG_STRUCT_FIELDS_MAX bytes in all.
 * The worker does not use this: it logs through log_record_text(), without printf.
 */
#define LOG_FORCE 0x100
#define LOG_STRUCT_FIELDS_MAX 4096
#define LOG_MESSAGE(...) "MESSAGE=" __VA_ARGS__
#define LOG_MESSAGE_ID(id) "MESSAGE_ID=" id
void log_struct_internal(int priority, const char *format, ...);
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
 * journald learns a record's unit (_SYSTEMD_UNIT, what `journalctl -u`
 * matches) from /proc/PID of the sender, and records of a process that is
 * gone by the time journald reads them lose it. Short-lived workers
 * therefore give themselves a journal socket of their own after fork()
 * and, before they exit, wait until journald has taken every record they
 * sent (bounded by timeout_usec).
 */
void log_journal_fork_child(void);
/* libsystemd's journal socket once known (-1 before): a worker keeps it. */
int log_journal_fd(void);
void log_journal_sync(uint64_t timeout_usec);

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
