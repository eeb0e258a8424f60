/* SPDX-License-Identifier: MIT */
/* Non-blocking sd_notify(3) client (NOTIFY_SOCKET, path or abstract). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "notify.h"
#include "fd-util.h"

__attribute__((format(printf, 3, 0)))
static int notify_vsend(const int *fds, size_t n_fds, const char *format, va_list ap) {
        struct sockaddr_un sun = { .sun_family = AF_UNIX };
        const char *path = getenv("NOTIFY_SOCKET");
        _cleanup_close_ int fd = -1;
        char msg[1024];
        union {
                struct cmsghdr h;
                char buf[CMSG_SPACE(sizeof(int) * NOTIFY_FDS_MAX)];
        } control = {};
        struct iovec iov;
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
        int n;

        if (!path || !*path)
                return 0;
        if (n_fds > NOTIFY_FDS_MAX)
                return -E2BIG;
        size_t plen = strlen(path);
        if ((path[0] != '/' && path[0] != '@') || plen >= sizeof sun.sun_path)
                return -EAFNOSUPPORT;
        memcpy(sun.sun_path, path, plen);
        if (path[0] == '@')
                sun.sun_path[0] = '\0';
        mh.msg_name = &sun;
        mh.msg_namelen = (socklen_t) (offsetof(struct sockaddr_un, sun_path) + plen + (path[0] == '/'));

        n = vsnprintf(msg, sizeof msg, format, ap);
        if (n < 0 || (size_t) n >= sizeof msg)
                return -EMSGSIZE;
        iov = (struct iovec) { .iov_base = msg, .iov_len = (size_t) n };
        if (n_fds > 0) {
                mh.msg_control = control.buf;
                mh.msg_controllen = CMSG_SPACE(sizeof(int) * n_fds);
                struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
                c->cmsg_level = SOL_SOCKET;
                c->cmsg_type = SCM_RIGHTS;
                c->cmsg_len = CMSG_LEN(sizeof(int) * n_fds);
                memcpy(CMSG_DATA(c), fds, sizeof(int) * n_fds);
        }

        fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        if (sendmsg(fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
                return -errno;
        return 1;
}

int notify_send(const char *format, ...) {
        va_list ap;
        int r;

        va_start(ap, format);
        r = notify_vsend(NULL, 0, format, ap);
        va_end(ap);
        return r;
}

int notify_send_fds(const int *fds, size_t n_fds, const char *format, ...) {
        va_list ap;
        int r;

        va_start(ap, format);
        r = notify_vsend(fds, n_fds, format, ap);
        va_end(ap);
        return r;
}
