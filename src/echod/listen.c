/* SPDX-License-Identifier: MIT */
/* Opening our own listeners or adopting systemd's. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
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

static void strv_freep(char ***p) {
        if (*p)
                for (char **s = *p; *s; s++)
                        free(*s);
        free(*p);
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

int listeners_from_systemd(struct listener **ret, size_t *ret_n, int *ret_bad_fd) {
        _cleanup_(strv_freep) char **names = NULL;
        struct listener *ls;
        int n, r;

        n = sd_listen_fds_with_names(1, &names);
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

                r = sd_is_socket(fd, AF_UNSPEC, SOCK_STREAM, 1);
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
                /* FileDescriptorName=proxy: connections begin with a PROXY header. */
                l->kind = names && names[i] && strcmp(names[i], listener_kind_name(LISTENER_PROXY)) == 0 ?
                        LISTENER_PROXY : LISTENER_TCP;
                l->addr.len = sizeof l->addr.storage;
                if (getsockname(fd, &l->addr.sa, &l->addr.len) < 0)
                        l->addr.len = 0;
                sockaddr_format(&l->addr, l->name, sizeof l->name);
        }
        *ret = ls;
        *ret_n = (size_t) n;
        return n;
}

void listener_set_kind(struct listener *l, enum listener_kind k) {
        /* A balancer sends its header at once: with TCP_DEFER_ACCEPT the
         * kernel hands the connection over with it (for up to a few seconds),
         * so the master finds it whole at accept() and never needs to
         * watch the connection. What does not come in time is accepted
         * anyway, and proxy_timeout still applies. */
        int defer = k == LISTENER_PROXY ? 3 : 0;

        if (k != LISTENER_UDP && (l->kind == LISTENER_PROXY || k == LISTENER_PROXY))
                (void) setsockopt(l->fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &defer, sizeof defer);
        l->kind = k;
}

void listener_close(struct listener *l) {
        l->fd = safe_close(l->fd);
}

int listeners_setup(const struct config *c, struct listener **ret, size_t *ret_n, bool *ret_activated) {
        int bad_fd = -1, r;

        *ret_activated = false;
        r = listeners_from_systemd(ret, ret_n, &bad_fd);
        if (r == -EBADMSG)
                return log_error_errno(EINVAL, "descriptor %d passed by systemd is not a listening stream socket; refusing to start", bad_fd);
        if (r < 0)
                return log_error_errno(r, "cannot use the sockets passed by systemd: %m");
        if (r > 0) {
                *ret_activated = true;
                for (size_t i = 0; i < *ret_n; i++)
                        log_info("using socket %s passed by systemd%s", (*ret)[i].name,
                                 (*ret)[i].kind == LISTENER_PROXY ? " (PROXY protocol)" : "");
                log_info("socket activated: the 'listen' setting in %s is ignored", c->path);
                for (size_t i = 0; i < *ret_n; i++)
                        if ((*ret)[i].kind == LISTENER_PROXY && c->n_proxy_trusted == 0) {
                                log_warning("socket %s is named 'proxy', but proxy_trusted in %s is empty: "
                                            "every connection to it is refused", (*ret)[i].name, c->path);
                                break;
                        }
                return 0;
        }

        *ret = calloc(c->n_listen + c->n_proxy_listen + 1, sizeof **ret);
        if (!*ret)
                return log_error_errno(ENOMEM, "out of memory");
        for (size_t i = 0; i < c->n_listen; i++) {
                r = listener_open(&(*ret)[i], &c->listen[i].addr, c->backlog);
                if (r < 0)
                        return log_error_errno(r, "cannot listen on %s: %m", c->listen[i].text);
                *ret_n = i + 1;
                log_info("listening on %s", (*ret)[i].name);
        }
        for (size_t i = 0; i < c->n_proxy_listen; i++) {
                struct listener *l = &(*ret)[*ret_n];
                r = listener_open(l, &c->proxy_listen[i].addr, c->backlog);
                if (r < 0)
                        return log_error_errno(r, "cannot listen on %s: %m", c->proxy_listen[i].text);
                listener_set_kind(l, LISTENER_PROXY);
                (*ret_n)++;
                log_info("listening on %s for connections behind a PROXY header", l->name);
        }
        return 0;
}
