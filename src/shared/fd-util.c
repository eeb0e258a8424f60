/* SPDX-License-Identifier: MIT */
/* Descriptor helpers: write-all, flags, closing all but some. */
#include <dirent.h>
#include <fcntl.h>

#include "fd-util.h"

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
