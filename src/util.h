/* SPDX-License-Identifier: MIT */
/*
 * Small helpers shared by every module: cleanup attributes, descriptor
 * helpers that keep errno, monotonic time, and write-all loops.
 */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _noreturn_ __attribute__((noreturn))
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#define USEC_PER_SEC  UINT64_C(1000000)
#define USEC_PER_MSEC UINT64_C(1000)
#define USEC_INFINITY UINT64_MAX

/* Closes fd if valid, keeps errno, returns -1 so callers can write fd = safe_close(fd). */
static inline int safe_close(int fd) {
        if (fd >= 0) {
                int saved = errno;
                (void) close(fd);
                errno = saved;
        }
        return -1;
}

static inline void closep(int *fd) {
        safe_close(*fd);
}

static inline void freep(void *p) {
        free(*(void **) p);
}

#define _cleanup_close_ _cleanup_(closep)
#define _cleanup_free_ _cleanup_(freep)

/* Hands a pointer or descriptor over to the caller, disarming the cleanup. */
#define TAKE_PTR(p) ({ __typeof__(p) _p = (p); (p) = NULL; _p; })
#define TAKE_FD(fd) ({ int _fd = (fd); (fd) = -1; _fd; })

static inline uint64_t now_usec(clockid_t clock) {
        struct timespec ts;

        (void) clock_gettime(clock, &ts);
        return (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / 1000;
}

static inline int negative_errno(void) {
        return errno > 0 ? -errno : -EIO;
}

/* Writes all of buf to a blocking descriptor; handles EINTR and short writes. */
int loop_write(int fd, const void *buf, size_t len);

/* Sets or clears O_NONBLOCK / FD_CLOEXEC. Return 0 or -errno. */
int fd_set_nonblock(int fd, bool nonblock);
int fd_set_cloexec(int fd, bool cloexec);

/* Closes every descriptor from 3 up, except those in keep (n of them). */
int close_all_fds_except(const int *keep, size_t n);

/* Parses the leading decimal digits of s (at least one); *end points past
 * them. Returns 0, -EINVAL or -ERANGE. */
int parse_uint64_prefix(const char *s, const char **end, uint64_t *ret);

/* Parses a decimal unsigned integer with no sign, no spaces and no base
 * prefix; the whole string must be digits. Returns 0, -EINVAL or -ERANGE. */
int parse_uint64(const char *s, uint64_t *ret);

/* "300", "30s", "5m", "2h", "1d", optionally combined ("1h30m").
 * Returns 0, -EINVAL or -ERANGE. */
int parse_duration(const char *s, uint64_t *ret_usec);

/* "1048576", "512K", "64M", "1G" (powers of 1024). */
int parse_size(const char *s, uint64_t *ret);

/*
 * Builds a string by appending pieces, without printf: workers format
 * their process title and connection records with it, so that a forked
 * worker does not fault in stdio's formatting code. Always NUL-terminated;
 * what does not fit is cut off.
 */
struct strbuf {
        char *p, *end;          /* next byte to write; the last byte (for the NUL) */
};

/* size must be at least 1. */
static inline void strbuf_init(struct strbuf *sb, char *buf, size_t size) {
        sb->p = buf;
        sb->end = buf + size - 1;
        *buf = '\0';
}

void strbuf_add(struct strbuf *sb, const char *s);
void strbuf_add_u64(struct strbuf *sb, uint64_t v);
/* usec as seconds with three decimals: "1.250". */
void strbuf_add_seconds(struct strbuf *sb, uint64_t usec);

/* Formats a duration in the shortest exact form parse_duration accepts. */
void format_duration(char *buf, size_t size, uint64_t usec);
