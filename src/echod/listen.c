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
#include "fdstore.h"
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

/* For logs: "UDP " before a UDP listener's address. */
static const char *listener_kind_prefix(enum listener_kind k) {
        return k == LISTENER_UDP ? "UDP " : "";
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

int listener_open(struct listener *l, enum listener_kind kind, const struct sockaddr_any *addr, unsigned backlog,
                  bool reuse_port) {
        _cleanup_close_ int fd = -1;
        bool udp = kind == LISTENER_UDP;
        int one = 1, r;

        fd = socket(addr->sa.sa_family, (udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (!udp && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0)
                return -errno;
        if (reuse_port && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0)
                return -errno;
        if (addr->sa.sa_family == AF_INET6) {
                /* "[::]:P" serves IPv4 too, whatever net.ipv6.bindv6only says. */
                int v6only = is_any6(addr) ? 0 : 1;
                if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only) < 0)
                        return -errno;
        }
        if (udp) {
                r = listener_udp_options(fd, addr->sa.sa_family);
                if (r < 0)
                        return r;
        }
        if (bind(fd, &addr->sa, addr->len) < 0)
                return -errno;
        if (!udp && listen(fd, (int) backlog) < 0)
                return -errno;

        memset(l, 0, sizeof *l);
        l->kind = udp ? LISTENER_UDP : LISTENER_TCP;
        l->addr = *addr;
        sockaddr_format(addr, l->name, sizeof l->name);
        l->fd = TAKE_FD(fd);
        listener_set_kind(l, kind);
        return 0;
}

int listeners_from_systemd(struct listener **ret, size_t *ret_n, int *ret_bad_fd) {
        _cleanup_free_ struct listener *ls = NULL;
        char **names = NULL;
        int n, r = 0;

        n = sd_listen_fds_with_names(1, &names);
        if (n <= 0) {
                *ret = NULL;
                *ret_n = 0;
                return n;
        }
        ls = calloc((size_t) n, sizeof *ls);
        if (!ls)
                r = -ENOMEM;
        for (int i = 0; r >= 0 && i < n; i++) {
                int fd = SD_LISTEN_FDS_START + i;
                struct listener *l = &ls[i];
                int kind = names ? fdstore_kind_from_name(names[i]) : -EINVAL;

                l->fd = fd;
                l->stored = kind >= 0;
                /* A socket unit's FileDescriptorName= may say the kind too;
                 * otherwise a datagram socket (ListenDatagram=) is UDP. */
                for (int k = 0; kind < 0 && names && k < _LISTENER_KIND_MAX; k++)
                        if (strcmp(names[i], listener_kind_name((enum listener_kind) k)) == 0)
                                kind = k;
                if (kind < 0 && sd_is_socket_inet(fd, AF_UNSPEC, SOCK_DGRAM, -1, 0) > 0)
                        kind = LISTENER_UDP;
                l->kind = kind >= 0 ? (enum listener_kind) kind : LISTENER_TCP;
                if (l->kind == LISTENER_UDP)
                        r = sd_is_socket_inet(fd, AF_UNSPEC, SOCK_DGRAM, -1, 0);
                else
                        r = sd_is_socket(fd, AF_UNSPEC, SOCK_STREAM, 1);
                if (r == 0)
                        r = -EBADMSG;
                if (r >= 0)
                        r = fd_set_nonblock(fd, true);
                if (r >= 0)
                        r = fd_set_cloexec(fd, true);
                if (r < 0) {
                        *ret_bad_fd = fd;
                        break;
                }
                l->addr.len = sizeof l->addr.storage;
                if (getsockname(fd, &l->addr.sa, &l->addr.len) < 0)
                        l->addr.len = 0;
                if (l->kind == LISTENER_UDP && (r = listener_udp_options(fd, l->addr.sa.sa_family)) < 0) {
                        *ret_bad_fd = fd;
                        break;
                }
                sockaddr_format(&l->addr, l->name, sizeof l->name);
        }
        for (int i = 0; names && i < n; i++)
                free(names[i]);
        free(names);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(ls);
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

/* The stored listener of this kind and address, taken out of passed. */
static bool take_stored(struct listener *passed, size_t n_passed, enum listener_kind kind,
                        const struct sockaddr_any *addr, struct listener *ret) {
        for (size_t i = 0; i < n_passed; i++)
                /* A TCP listener may come back as a proxy one or the other way. */
                if (passed[i].fd >= 0 && passed[i].stored &&
                    (passed[i].kind == LISTENER_UDP) == (kind == LISTENER_UDP) &&
                    sockaddr_equal(&passed[i].addr, addr)) {
                        *ret = passed[i];
                        passed[i].fd = -1;
                        return true;
                }
        return false;
}

/* The stored listeners nobody took: the configuration no longer has them. */
static void drop_stored(struct listener *passed, size_t n_passed, const char *why) {
        for (size_t i = 0; i < n_passed; i++) {
                if (passed[i].fd < 0 || !passed[i].stored)
                        continue;
                log_info("closing %s listener %s kept by systemd: %s", listener_kind_name(passed[i].kind),
                         passed[i].name, why);
                (void) fdstore_remove(&passed[i]);
                listener_close(&passed[i]);
        }
}

static void close_passed(struct listener *passed, size_t n_passed) {
        for (size_t i = 0; i < n_passed; i++)
                listener_close(&passed[i]);
}

/* One configured listener: the stored one where systemd kept it, else bound
 * here and stored. */
static int setup_own(struct listener *l, enum listener_kind kind, const struct sockaddr_any *addr, const char *text,
                     unsigned backlog, bool reuse_port, struct listener *passed, size_t n_passed) {
        int r;

        if (take_stored(passed, n_passed, kind, addr, l)) {
                /* The configuration's backlog, which may have changed. */
                if (kind != LISTENER_UDP)
                        (void) listen(l->fd, (int) backlog);
                if (l->kind != kind) {
                        /* Its name in the store says its kind. */
                        (void) fdstore_remove(l);
                        listener_set_kind(l, kind);
                        (void) fdstore_add(l);
                } else
                        listener_set_kind(l, kind);     /* TCP_DEFER_ACCEPT for a proxy one */
                log_info("listening on %s%s (kept open across the restart)%s", listener_kind_prefix(kind), l->name,
                         kind == LISTENER_PROXY ? ", for connections behind a PROXY header" : "");
                return 0;
        }
        r = listener_open(l, kind, addr, backlog, reuse_port);
        if (r < 0)
                return log_error_errno(r, "cannot listen on %s%s: %m", listener_kind_prefix(kind), text);
        r = fdstore_add(l);
        if (r < 0)
                log_warning_errno(r, "cannot hand listener %s to systemd's fd store (%m): a restart will refuse "
                                  "connections to it until echod listens again", l->name);
        log_info("listening on %s%s%s", listener_kind_prefix(kind), l->name,
                 kind == LISTENER_PROXY ? " for connections behind a PROXY header" : "");
        return 0;
}

int listeners_setup(const struct config *c, struct listener **ret, size_t *ret_n, bool *ret_activated) {
        _cleanup_free_ struct listener *passed = NULL;
        size_t n_passed = 0, n_activated = 0;
        int bad_fd = -1, r;

        *ret_activated = false;
        *ret_n = 0;
        r = listeners_from_systemd(&passed, &n_passed, &bad_fd);
        if (r == -EBADMSG)
                return log_error_errno(EINVAL, "descriptor %d passed by systemd is not a socket of its kind (a listening "
                                       "stream socket, or an IP datagram socket for UDP); refusing to start", bad_fd);
        if (r < 0)
                return log_error_errno(r, "cannot use the sockets passed by systemd: %m");
        for (size_t i = 0; i < n_passed; i++)
                n_activated += !passed[i].stored;

        if (n_activated > 0) {
                *ret = calloc(n_activated, sizeof **ret);
                if (!*ret) {
                        close_passed(passed, n_passed);
                        return log_error_errno(ENOMEM, "out of memory");
                }
                *ret_activated = true;
                for (size_t i = 0; i < n_passed; i++)
                        if (!passed[i].stored) {
                                (*ret)[(*ret_n)++] = passed[i];
                                passed[i].fd = -1;
                                log_info("using %ssocket %s passed by systemd%s",
                                         passed[i].kind == LISTENER_UDP ? "UDP " : "", passed[i].name,
                                         passed[i].kind == LISTENER_PROXY ? " (PROXY protocol)" : "");
                        }
                drop_stored(passed, n_passed, "socket activated");
                log_info("socket activated: the 'listen' setting in %s is ignored", c->path);
                if (c->n_listen_udp > 0)
                        log_info("socket activated: the 'listen_udp' setting in %s is ignored", c->path);
                for (size_t i = 0; i < *ret_n; i++)
                        if ((*ret)[i].kind == LISTENER_PROXY && c->n_proxy_trusted == 0) {
                                log_warning("socket %s is named 'proxy', but proxy_trusted in %s is empty: "
                                            "every connection to it is refused", (*ret)[i].name, c->path);
                                break;
                        }
                return 0;
        }

        *ret = calloc(c->n_listen + c->n_proxy_listen + c->n_listen_udp + 1, sizeof **ret);
        if (!*ret) {
                close_passed(passed, n_passed);
                return log_error_errno(ENOMEM, "out of memory");
        }
        for (size_t i = 0; i < c->n_listen + c->n_proxy_listen + c->n_listen_udp; i++) {
                const struct listen_entry *e;
                enum listener_kind kind;

                if (i < c->n_listen) {
                        kind = LISTENER_TCP;
                        e = &c->listen[i];
                } else if (i < c->n_listen + c->n_proxy_listen) {
                        kind = LISTENER_PROXY;
                        e = &c->proxy_listen[i - c->n_listen];
                } else {
                        kind = LISTENER_UDP;
                        e = &c->listen_udp[i - c->n_listen - c->n_proxy_listen];
                }
                r = setup_own(&(*ret)[i], kind, &e->addr, e->text, c->backlog, c->reuse_port, passed, n_passed);
                if (r < 0) {
                        /* Not removed from the store: Restart= may bring
                         * back an echod that can use them. */
                        close_passed(passed, n_passed);
                        return r;
                }
                *ret_n = i + 1;
        }
        drop_stored(passed, n_passed, "no longer in the configuration");
        return 0;
}
