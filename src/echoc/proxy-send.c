/* SPDX-License-Identifier: MIT */
/*
 * echoc --proxy: the PROXY protocol header (HAProxy's doc/proxy-protocol.txt)
 * that a load balancer sends before its client's bytes, so that echoc can
 * stand in for a balancer in front of an echod proxy listener.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "echoc.h"

static const uint8_t v2_signature[12] = {
        0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A,
};

const char *proxy_mode_to_string(enum proxy_mode m) {
        static const char *const names[] = { [PROXY_NONE] = "none", [PROXY_V1] = "v1", [PROXY_V2] = "v2",
                                             [PROXY_LOCAL] = "local" };
        return (size_t) m < ARRAY_SIZE(names) ? names[m] : "?";
}

enum proxy_mode proxy_mode_from_string(const char *s) {
        for (enum proxy_mode m = PROXY_V1; m <= PROXY_LOCAL; m++)
                if (strcmp(s, proxy_mode_to_string(m)) == 0)
                        return m;
        return PROXY_NONE;
}

/* Both addresses in one family: an IPv4 one beside an IPv6 one is written
 * IPv4-mapped, as a dual-stack balancer would. */
static void to_mapped(struct sockaddr_any *a) {
        struct sockaddr_in in = a->in;

        if (a->sa.sa_family != AF_INET)
                return;
        memset(a, 0, sizeof *a);
        a->in6.sin6_family = AF_INET6;
        a->in6.sin6_port = in.sin_port;
        a->in6.sin6_addr.s6_addr[10] = 0xff;
        a->in6.sin6_addr.s6_addr[11] = 0xff;
        memcpy(&a->in6.sin6_addr.s6_addr[12], &in.sin_addr, 4);
        a->len = sizeof a->in6;
}

ssize_t proxy_header_format(enum proxy_mode mode, const struct sockaddr_any *src_in,
                            const struct sockaddr_any *dst_in, uint8_t *buf, size_t size) {
        struct sockaddr_any src = *src_in, dst = *dst_in;
        bool v6;

        if (mode == PROXY_LOCAL) {
                if (size < 16)
                        return -ENOBUFS;
                memcpy(buf, v2_signature, 12);
                buf[12] = 0x20;         /* version 2, LOCAL */
                buf[13] = 0x00;         /* UNSPEC */
                buf[14] = buf[15] = 0;
                return 16;
        }
        if (!sockaddr_is_inet(&src) || !sockaddr_is_inet(&dst))
                return -EAFNOSUPPORT;
        if (src.sa.sa_family != dst.sa.sa_family) {
                to_mapped(&src);
                to_mapped(&dst);
        }
        v6 = src.sa.sa_family == AF_INET6;

        if (mode == PROXY_V1) {
                char s[INET6_ADDRSTRLEN], d[INET6_ADDRSTRLEN];
                int n;

                if (!inet_ntop(src.sa.sa_family, v6 ? (const void *) &src.in6.sin6_addr : (const void *) &src.in.sin_addr, s, sizeof s) ||
                    !inet_ntop(dst.sa.sa_family, v6 ? (const void *) &dst.in6.sin6_addr : (const void *) &dst.in.sin_addr, d, sizeof d))
                        return -errno;
                n = snprintf((char *) buf, size, "PROXY %s %s %s %u %u\r\n", v6 ? "TCP6" : "TCP4", s, d,
                             sockaddr_port(&src), sockaddr_port(&dst));
                if (n < 0 || (size_t) n >= size)
                        return -ENOBUFS;
                return n;
        }

        size_t len = v6 ? 36 : 12;
        uint16_t sport = htons(sockaddr_port(&src)), dport = htons(sockaddr_port(&dst));
        uint8_t *p = buf + 16;

        if (size < 16 + len)
                return -ENOBUFS;
        memcpy(buf, v2_signature, 12);
        buf[12] = 0x21;                 /* version 2, PROXY */
        buf[13] = v6 ? 0x21 : 0x11;     /* TCP over IPv6 or IPv4 */
        buf[14] = 0;
        buf[15] = (uint8_t) len;
        if (v6) {
                memcpy(p, &src.in6.sin6_addr, 16);
                memcpy(p + 16, &dst.in6.sin6_addr, 16);
                p += 32;
        } else {
                memcpy(p, &src.in.sin_addr, 4);
                memcpy(p + 4, &dst.in.sin_addr, 4);
                p += 8;
        }
        memcpy(p, &sport, 2);
        memcpy(p + 2, &dport, 2);
        return (ssize_t) (16 + len);
}

int proxy_header_send(const struct options *o, int fd, const struct sockaddr_any *dst, bool more) {
        uint8_t buf[256];
        struct sockaddr_any local = { .len = sizeof local.storage };
        const struct sockaddr_any *src = &o->proxy_source;
        ssize_t n, k;

        if (o->proxy == PROXY_NONE)
                return 0;
        if (src->sa.sa_family == 0) {
                /* No --proxy-source: the connection's own address, as if echoc were the client. */
                if (getsockname(fd, &local.sa, &local.len) < 0)
                        return -errno;
                sockaddr_unmap(&local);
                src = &local;
        }
        n = proxy_header_format(o->proxy, src, dst, buf, sizeof buf);
        if (n < 0)
                return (int) n;
        /* A connection's first bytes, far below any send buffer: sent whole. */
        do
                k = send(fd, buf, (size_t) n, MSG_NOSIGNAL | (more ? MSG_MORE : 0));
        while (k < 0 && errno == EINTR);
        if (k < 0)
                return -errno;
        return k == n ? 0 : -EAGAIN;
}
