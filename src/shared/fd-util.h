/* SPDX-License-Identifier: MIT */
/* Descriptor helpers that keep errno where they promise to, and write-all loops. */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <unistd.h>

#include "macro.h"

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

#define _cleanup_close_ _cleanup_(closep)

/* Writes all of buf to a blocking descriptor; handles EINTR and short writes. */
int loop_write(int fd, const void *buf, size_t len);

/* Sets or clears O_NONBLOCK / FD_CLOEXEC. Return 0 or -errno. */
int fd_set_nonblock(int fd, bool nonblock);
int fd_set_cloexec(int fd, bool cloexec);

/* Closes every descriptor from 3 up, except those in keep (n of them). */
int close_all_fds_except(const int *keep, size_t n);
