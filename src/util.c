/* SPDX-License-Identifier: MIT */
/* Descriptor helpers and strict parsers for numbers, durations and sizes. */
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "util.h"

int loop_write(int fd, const void *buf, size_t len) {
        const char *p = buf;

        while (len > 0) {
                ssize_t n = write(fd, p, len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        return -EIO;
                p += n;
                len -= (size_t) n;
        }
        return 0;
}

/* Sets or clears flag in the flags that get/set (F_GETFL/F_SETFL or F_GETFD/F_SETFD) manage. */
static int fd_update_flag(int fd, int get, int set, int flag, bool on) {
        int flags = fcntl(fd, get);
        if (flags < 0)
                return -errno;
        int nflags = on ? flags | flag : flags & ~flag;
        if (nflags != flags && fcntl(fd, set, nflags) < 0)
                return -errno;
        return 0;
}

int fd_set_nonblock(int fd, bool nonblock) {
        return fd_update_flag(fd, F_GETFL, F_SETFL, O_NONBLOCK, nonblock);
}

int fd_set_cloexec(int fd, bool cloexec) {
        return fd_update_flag(fd, F_GETFD, F_SETFD, FD_CLOEXEC, cloexec);
}

static bool kept(int fd, const int *keep, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (keep[i] == fd)
                        return true;
        return false;
}

int close_all_fds_except(const int *keep, size_t n) {
        unsigned from = 3;

        /* close_range() over the gaps between the kept descriptors, lowest first. */
        for (;;) {
                int next = -1;
                for (size_t i = 0; i < n; i++)
                        if (keep[i] >= (int) from && (next < 0 || keep[i] < next))
                                next = keep[i];
                unsigned to = next < 0 ? ~0U : (unsigned) next - 1;
                if (to >= from && close_range(from, to, 0) < 0)
                        goto fallback;
                if (next < 0)
                        return 0;
                from = (unsigned) next + 1;
        }

fallback:
        /* Kernels before 5.9: walk the open descriptors instead. */
        {
                DIR *d = opendir("/proc/self/fd");
                struct dirent *de;

                if (!d)
                        return -errno;
                while ((de = readdir(d))) {
                        int fd = atoi(de->d_name);
                        if (de->d_name[0] != '.' && fd >= 3 && fd != dirfd(d) && !kept(fd, keep, n))
                                (void) close(fd);
                }
                closedir(d);
        }
        return 0;
}

int parse_uint64_prefix(const char *s, const char **end, uint64_t *ret) {
        uint64_t v = 0;
        const char *p = s;

        if (*p < '0' || *p > '9')
                return -EINVAL;
        for (; *p >= '0' && *p <= '9'; p++) {
                unsigned d = (unsigned) (*p - '0');
                if (v > (UINT64_MAX - d) / 10)
                        return -ERANGE;
                v = v * 10 + d;
        }
        *end = p;
        *ret = v;
        return 0;
}

int parse_uint64(const char *s, uint64_t *ret) {
        const char *end;
        uint64_t v;
        int r;

        if (!s)
                return -EINVAL;
        r = parse_uint64_prefix(s, &end, &v);
        if (r < 0)
                return r;
        if (*end != '\0')
                return -EINVAL;
        *ret = v;
        return 0;
}

static int mul_add(uint64_t *acc, uint64_t v, uint64_t unit) {
        if (v > UINT64_MAX / unit)
                return -ERANGE;
        v *= unit;
        if (*acc > UINT64_MAX - v)
                return -ERANGE;
        *acc += v;
        return 0;
}

int parse_duration(const char *s, uint64_t *ret_usec) {
        static const struct { char suffix; uint64_t usec; } units[] = {
                { 's', USEC_PER_SEC },
                { 'm', 60 * USEC_PER_SEC },
                { 'h', 3600 * USEC_PER_SEC },
                { 'd', 86400 * USEC_PER_SEC },
        };
        uint64_t total = 0;
        const char *p = s;
        int r;

        if (!s || !*s)
                return -EINVAL;
        while (*p) {
                const char *end;
                uint64_t v, unit = 0;

                r = parse_uint64_prefix(p, &end, &v);
                if (r < 0)
                        return r;
                if (*end == '\0') {
                        /* A bare number is seconds, and only as the whole value or last part. */
                        unit = USEC_PER_SEC;
                        p = end;
                } else {
                        for (size_t i = 0; i < ARRAY_SIZE(units); i++)
                                if (*end == units[i].suffix)
                                        unit = units[i].usec;
                        if (unit == 0)
                                return -EINVAL;
                        p = end + 1;
                }
                r = mul_add(&total, v, unit);
                if (r < 0)
                        return r;
        }
        *ret_usec = total;
        return 0;
}

int parse_size(const char *s, uint64_t *ret) {
        const char *end;
        uint64_t v, unit = 1;
        int r;

        if (!s)
                return -EINVAL;
        r = parse_uint64_prefix(s, &end, &v);
        if (r < 0)
                return r;
        switch (*end) {
        case '\0': break;
        case 'K': unit = UINT64_C(1) << 10; end++; break;
        case 'M': unit = UINT64_C(1) << 20; end++; break;
        case 'G': unit = UINT64_C(1) << 30; end++; break;
        case 'T': unit = UINT64_C(1) << 40; end++; break;
        default: return -EINVAL;
        }
        if (*end != '\0')
                return -EINVAL;
        if (v > UINT64_MAX / unit)
                return -ERANGE;
        *ret = v * unit;
        return 0;
}

void format_duration(char *buf, size_t size, uint64_t usec) {
        uint64_t s = usec / USEC_PER_SEC;

        if (s > 0 && s % 86400 == 0)
                snprintf(buf, size, "%" PRIu64 "d", s / 86400);
        else if (s > 0 && s % 3600 == 0)
                snprintf(buf, size, "%" PRIu64 "h", s / 3600);
        else if (s > 0 && s % 60 == 0)
                snprintf(buf, size, "%" PRIu64 "m", s / 60);
        else
                snprintf(buf, size, "%" PRIu64 "s", s);
}

void strbuf_add(struct strbuf *sb, const char *s) {
        while (*s && sb->p < sb->end)
                *sb->p++ = *s++;
        *sb->p = '\0';
}

void strbuf_add_u64(struct strbuf *sb, uint64_t v) {
        char digits[21], *d = digits + sizeof digits - 1;

        *d = '\0';
        do
                *--d = (char) ('0' + v % 10);
        while ((v /= 10) > 0);
        strbuf_add(sb, d);
}

void strbuf_add_seconds(struct strbuf *sb, uint64_t usec) {
        uint64_t ms = usec % USEC_PER_SEC / 1000;
        char frac[5] = { '.', (char) ('0' + ms / 100), (char) ('0' + ms / 10 % 10), (char) ('0' + ms % 10), '\0' };

        strbuf_add_u64(sb, usec / USEC_PER_SEC);
        strbuf_add(sb, frac);
}
