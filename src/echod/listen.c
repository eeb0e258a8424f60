/* SPDX-License-Identifier: MIT */
/* Opening our own listeners or adopting systemd's. */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <systemd/sd-daemon.h>

#include "fd-util.h"
#include "listen.h"
#include "log.h"

static bool is_any6(const struct sockaddr_any *a) {
        return a->sa.sa_family == AF_INET6 && IN6_IS_ADDR_UNSPECIFIED(&a->in6.sin6_addr);
}

const char *listener_kind_name(enum listener_kind k) {
        static const char *const names[_LISTENER_KIND_MAX] = {
                [LISTENER_TCP] = "tcp",
                [LISTENER_PROXY] = "proxy",
                [LISTENER_UDP] = "udp",
        };
        return k < _LISTENER_KIND_MAX ? names[k] : "?";
}

int listener_open(struct listener *l, const struct sockaddr_any *addr, unsigned backlog) {
        _cleanup_close_ int fd = -1;
        int one = 1;

        fd = socket(addr->sa.sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0)
                return -errno;
        if (addr->sa.sa_family == AF_INET6) {
                /* "[::]:P" serves IPv4 too, whatever net.ipv6.bindv6only says. */
                int v6only = is_any6(addr) ? 0 : 1;
                if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only) < 0)
                        return -errno;
        }
        if (bind(fd, &addr->sa, addr->len) < 0)
                return -errno;
        if (listen(fd, (int) backlog) < 0)
                return -errno;

        memset(l, 0, sizeof *l);
        l->kind = LISTENER_TCP;
        l->addr = *addr;
        sockaddr_format(addr, l->name, sizeof l->name);
        l->fd = TAKE_FD(fd);
        return 0;
}

int listener_udp_options(int fd, int family) {
        int one = 1;

        /* The address each datagram was sent to: the reply is sent from it,
         * and broadcasts are told apart by it (see udp.c). A dual-stack
         * socket gets IP_PKTINFO for its IPv4 datagrams too. */
        if (family == AF_INET)
                return setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof one) < 0 ? -errno : 0;
        if (setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof one) < 0)
                return -errno;
        (void) setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof one);
        return 0;
}

int listener_open_udp(struct listener *l, const struct sockaddr_any *addr) {
        _cleanup_close_ int fd = -1;
        int r;

        fd = socket(addr->sa.sa_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (addr->sa.sa_family == AF_INET6) {
                int v6only = is_any6(addr) ? 0 : 1;
                if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only) < 0)
                        return -errno;
        }
        r = listener_udp_options(fd, addr->sa.sa_family);
        if (r < 0)
                return r;
        if (bind(fd, &addr->sa, addr->len) < 0)
                return -errno;

        memset(l, 0, sizeof *l);
        l->kind = LISTENER_UDP;
        l->addr = *addr;
        sockaddr_format(addr, l->name, sizeof l->name);
        l->fd = TAKE_FD(fd);
        return 0;
}

int listeners_from_systemd(struct listener **ret, size_t *ret_n, int *ret_bad_fd) {
        struct listener *ls;
        int n, r;

        n = sd_listen_fds(1);
        if (n <= 0) {
                *ret = NULL;
                *ret_n = 0;
                return n;
        }
        ls = calloc((size_t) n, sizeof *ls);
        if (!ls)
                return -ENOMEM;
        for (int i = 0; i < n; i++) {
                int fd = SD_LISTEN_FDS_START + i;
                struct listener *l = &ls[i];

                bool udp = false;

                r = sd_is_socket(fd, AF_UNSPEC, SOCK_STREAM, 1);
                if (r == 0 && sd_is_socket_inet(fd, AF_UNSPEC, SOCK_DGRAM, -1, 0) > 0)
                        udp = true, r = 1;
                if (r <= 0) {
                        free(ls);
                        *ret_bad_fd = fd;
                        return r < 0 ? r : -EBADMSG;
                }
                r = fd_set_nonblock(fd, true);
                if (r >= 0)
                        r = fd_set_cloexec(fd, true);
                if (r < 0) {
                        free(ls);
                        *ret_bad_fd = fd;
                        return r;
                }
                l->fd = fd;
                l->kind = udp ? LISTENER_UDP : LISTENER_TCP;
                l->addr.len = sizeof l->addr.storage;
                if (getsockname(fd, &l->addr.sa, &l->addr.len) < 0)
                        l->addr.len = 0;
                if (l->kind == LISTENER_UDP && (r = listener_udp_options(fd, l->addr.sa.sa_family)) < 0) {
                        free(ls);
                        *ret_bad_fd = fd;
                        return r;
                }
                sockaddr_format(&l->addr, l->name, sizeof l->name);
        }
        *ret = ls;
        *ret_n = (size_t) n;
        return n;
}

void listener_close(struct listener *l) {
        l->fd = safe_close(l->fd);
}

int listeners_setup(const struct config *c, struct listener **ret, size_t *ret_n, bool *ret_activated) {
        int bad_fd = -1, r;

        *ret_activated = false;
        r = listeners_from_systemd(ret, ret_n, &bad_fd);
        if (r == -EBADMSG)
                return log_error_errno(EINVAL, "descriptor %d passed by systemd is neither a listening stream socket nor an IP datagram socket; refusing to start", bad_fd);
        if (r < 0)
                return log_error_errno(r, "cannot use the sockets passed by systemd: %m");
        if (r > 0) {
                *ret_activated = true;
                for (size_t i = 0; i < *ret_n; i++)
                        log_info("using %ssocket %s passed by systemd",
                                 (*ret)[i].kind == LISTENER_UDP ? "UDP " : "", (*ret)[i].name);
                log_info("socket activated: the 'listen' setting in %s is ignored", c->path);
                if (c->n_listen_udp > 0)
                        log_info("socket activated: the 'listen_udp' setting in %s is ignored", c->path);
                return 0;
        }

        *ret = calloc(c->n_listen + c->n_listen_udp, sizeof **ret);
        if (!*ret)
                return log_error_errno(ENOMEM, "out of memory");
        for (size_t i = 0; i < c->n_listen; i++) {
                r = listener_open(&(*ret)[i], &c->listen[i].addr, c->backlog);
                if (r < 0)
                        return log_error_errno(r, "cannot listen on %s: %m", c->listen[i].text);
                *ret_n = i + 1;
                log_info("listening on %s", (*ret)[i].name);
        }
        for (size_t i = 0; i < c->n_listen_udp; i++) {
                r = listener_open_udp(&(*ret)[c->n_listen + i], &c->listen_udp[i].addr);
                if (r < 0)
                        return log_error_errno(r, "cannot listen on UDP %s: %m", c->listen_udp[i].text);
                *ret_n = c->n_listen + i + 1;
                log_info("listening on UDP %s", (*ret)[c->n_listen + i].name);
        }
        return 0;
}
