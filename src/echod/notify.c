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

int notify_send(const char *format, ...) {
        struct sockaddr_un sun = { .sun_family = AF_UNIX };
        const char *path = getenv("NOTIFY_SOCKET");
        _cleanup_close_ int fd = -1;
        char msg[1024];
        socklen_t len;
        va_list ap;
        int n;

        if (!path || !*path)
                return 0;
        size_t plen = strlen(path);
        if ((path[0] != '/' && path[0] != '@') || plen >= sizeof sun.sun_path)
                return -EAFNOSUPPORT;
        memcpy(sun.sun_path, path, plen);
        if (path[0] == '@')
                sun.sun_path[0] = '\0';
        len = (socklen_t) (offsetof(struct sockaddr_un, sun_path) + plen + (path[0] == '/'));

        va_start(ap, format);
        n = vsnprintf(msg, sizeof msg, format, ap);
        va_end(ap);
        if (n < 0 || (size_t) n >= sizeof msg)
                return -EMSGSIZE;

        fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        if (sendto(fd, msg, (size_t) n, MSG_DONTWAIT | MSG_NOSIGNAL, (struct sockaddr *) &sun, len) < 0)
                return -errno;
        return 1;
}
