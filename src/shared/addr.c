/* SPDX-License-Identifier: MIT */
/* Address parsing, formatting and prefix arithmetic. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "parse.h"
#include "strbuf.h"

static const uint8_t v4mapped_prefix[12] = { 0,0,0,0, 0,0,0,0, 0,0,0xff,0xff };

/* Strictly numeric: inet_pton() only, so that glibc's inet_aton() fallback
 * never reads "010.0.0.1" as octal or "127.1" as 127.0.0.1. A scoped IPv6
 * address ("fe80::1%eth0") goes through getaddrinfo() for the scope. */
static int parse_host(const char *host, struct sockaddr_any *ret) {
        memset(ret, 0, sizeof *ret);
        if (inet_pton(AF_INET, host, &ret->in.sin_addr) == 1) {
                ret->in.sin_family = AF_INET;
                ret->len = sizeof ret->in;
                return 0;
        }
        if (inet_pton(AF_INET6, host, &ret->in6.sin6_addr) == 1) {
                ret->in6.sin6_family = AF_INET6;
                ret->len = sizeof ret->in6;
                return 0;
        }

        const char *pct = strchr(host, '%');
        char addr[INET6_ADDRSTRLEN];
        struct in6_addr tmp;
        if (!pct || (size_t) (pct - host) >= sizeof addr)
                return -EINVAL;
        memcpy(addr, host, (size_t) (pct - host));
        addr[pct - host] = '\0';
        if (inet_pton(AF_INET6, addr, &tmp) != 1)
                return -EINVAL;

        struct addrinfo hints = {
                .ai_flags = AI_NUMERICHOST,
                .ai_family = AF_INET6,
                .ai_socktype = SOCK_STREAM,
        };
        struct addrinfo *res = NULL;
        if (getaddrinfo(host, NULL, &hints, &res) != 0 || !res)
                return -EINVAL;
        int r = sockaddr_set(ret, res->ai_addr, res->ai_addrlen);
        freeaddrinfo(res);
        return r;
}

int sockaddr_set(struct sockaddr_any *ret, const struct sockaddr *sa, socklen_t len) {
        if (len > sizeof ret->storage)
                return -EINVAL;
        memset(ret, 0, sizeof *ret);
        memcpy(&ret->storage, sa, len);
        ret->len = len;
        return 0;
}

int sockaddr_parse(const char *s, struct sockaddr_any *ret) {
        char host[INET6_ADDRSTRLEN + 32];
        const char *colon, *port_str;
        uint64_t port;
        size_t hlen;
        int r;

        if (!s || !*s)
                return -EINVAL;
        if (s[0] == '[') {
                const char *close = strchr(s, ']');
                if (!close || close[1] != ':')
                        return -EINVAL;
                hlen = (size_t) (close - s - 1);
                if (hlen == 0 || hlen >= sizeof host)
                        return -EINVAL;
                memcpy(host, s + 1, hlen);
                port_str = close + 2;
        } else {
                colon = strrchr(s, ':');
                if (!colon || memchr(s, ':', (size_t) (colon - s)))
                        return -EINVAL;         /* IPv6 needs brackets */
                hlen = (size_t) (colon - s);
                if (hlen == 0 || hlen >= sizeof host)
                        return -EINVAL;
                memcpy(host, s, hlen);
                port_str = colon + 1;
        }
        host[hlen] = '\0';

        if (parse_uint64(port_str, &port) < 0)
                return -EINVAL;
        if (port < 1 || port > 65535)
                return -ERANGE;

        r = parse_host(host, ret);
        if (r < 0)
                return r;
        /* "[1.2.3.4]:7" is not a form anyone means. */
        if ((s[0] == '[') != (ret->sa.sa_family == AF_INET6))
                return -EINVAL;
        if (ret->sa.sa_family == AF_INET)
                ret->in.sin_port = htons((uint16_t) port);
        else
                ret->in6.sin6_port = htons((uint16_t) port);
        return 0;
}

static void mask_bytes(uint8_t *bytes, unsigned total_bits, unsigned prefixlen) {
        for (unsigned i = 0; i < total_bits / 8; i++) {
                unsigned bit = i * 8;
                if (bit >= prefixlen)
                        bytes[i] = 0;
                else if (bit + 8 > prefixlen)
                        bytes[i] &= (uint8_t) (0xff << (8 - (prefixlen - bit)));
        }
}

int netaddr_parse_cidr(const char *s, struct netaddr *ret) {
        char host[INET6_ADDRSTRLEN + 1];
        const char *slash = strchr(s, '/');
        size_t hlen = slash ? (size_t) (slash - s) : strlen(s);
        struct netaddr n = {};
        unsigned maxlen;
        uint64_t plen;

        if (hlen == 0 || hlen >= sizeof host)
                return -EINVAL;
        memcpy(host, s, hlen);
        host[hlen] = '\0';

        if (inet_pton(AF_INET, host, n.bytes) == 1) {
                n.family = AF_INET;
                maxlen = 32;
        } else if (inet_pton(AF_INET6, host, n.bytes) == 1) {
                n.family = AF_INET6;
                maxlen = 128;
        } else
                return -EINVAL;

        if (slash) {
                if (parse_uint64(slash + 1, &plen) < 0 || plen > maxlen)
                        return -EINVAL;
        } else
                plen = maxlen;

        /* Treat ::ffff:a.b.c.d/N (N >= 96) as IPv4, like peers. */
        if (n.family == AF_INET6 && plen >= 96 && memcmp(n.bytes, v4mapped_prefix, 12) == 0) {
                memmove(n.bytes, n.bytes + 12, 4);
                memset(n.bytes + 4, 0, 12);
                n.family = AF_INET;
                plen -= 96;
                maxlen = 32;
        }

        n.prefixlen = (uint8_t) plen;
        struct netaddr masked = n;
        mask_bytes(masked.bytes, maxlen, (unsigned) plen);
        if (memcmp(masked.bytes, n.bytes, sizeof n.bytes) != 0)
                return -EADDRNOTAVAIL;
        *ret = n;
        return 0;
}

void sockaddr_unmap(struct sockaddr_any *a) {
        if (a->sa.sa_family != AF_INET6 ||
            memcmp(&a->in6.sin6_addr, v4mapped_prefix, sizeof v4mapped_prefix) != 0)
                return;
        struct sockaddr_in in = {
                .sin_family = AF_INET,
                .sin_port = a->in6.sin6_port,
        };
        memcpy(&in.sin_addr, a->in6.sin6_addr.s6_addr + 12, 4);
        memset(&a->storage, 0, sizeof a->storage);
        a->in = in;
        a->len = sizeof in;
}

bool sockaddr_equal(const struct sockaddr_any *a, const struct sockaddr_any *b) {
        if (a->sa.sa_family != b->sa.sa_family)
                return false;
        if (a->sa.sa_family == AF_INET)
                return a->in.sin_port == b->in.sin_port &&
                       a->in.sin_addr.s_addr == b->in.sin_addr.s_addr;
        if (a->sa.sa_family == AF_INET6)
                return a->in6.sin6_port == b->in6.sin6_port &&
                       a->in6.sin6_scope_id == b->in6.sin6_scope_id &&
                       memcmp(&a->in6.sin6_addr, &b->in6.sin6_addr, 16) == 0;
        return a->len == b->len && memcmp(&a->storage, &b->storage, a->len) == 0;
}

bool sockaddr_is_inet(const struct sockaddr_any *a) {
        return a->sa.sa_family == AF_INET || a->sa.sa_family == AF_INET6;
}

/* Formatted here rather than by inet_ntop(), which uses sprintf() for
 * IPv4: a worker formats its peer's address right after fork(). */
static void format_ipv4(struct strbuf *sb, const struct in_addr *a) {
        const uint8_t *b = (const uint8_t *) &a->s_addr;

        for (int i = 0; i < 4; i++) {
                if (i > 0)
                        strbuf_add(sb, ".");
                strbuf_add_u64(sb, b[i]);
        }
}

static void format_host(struct strbuf *sb, const struct sockaddr_any *a) {
        char buf[INET6_ADDRSTRLEN];

        if (a->sa.sa_family == AF_INET)
                format_ipv4(sb, &a->in.sin_addr);
        else if (a->sa.sa_family == AF_INET6) {
                if (inet_ntop(AF_INET6, &a->in6.sin6_addr, buf, sizeof buf))
                        strbuf_add(sb, buf);
                if (a->in6.sin6_scope_id != 0) {
                        strbuf_add(sb, "%");
                        strbuf_add_u64(sb, a->in6.sin6_scope_id);
                }
        } else {
                strbuf_add(sb, "(family ");
                strbuf_add_u64(sb, a->sa.sa_family);
                strbuf_add(sb, ")");
        }
}

void sockaddr_format_host(const struct sockaddr_any *a, char *buf, size_t size) {
        struct strbuf sb;

        strbuf_init(&sb, buf, size);
        format_host(&sb, a);
}

void sockaddr_format(const struct sockaddr_any *a, char *buf, size_t size) {
        struct strbuf sb;

        strbuf_init(&sb, buf, size);
        if (a->sa.sa_family == AF_INET6)
                strbuf_add(&sb, "[");
        format_host(&sb, a);
        if (a->sa.sa_family == AF_INET6)
                strbuf_add(&sb, "]");
        if (a->sa.sa_family == AF_INET || a->sa.sa_family == AF_INET6) {
                strbuf_add(&sb, ":");
                strbuf_add_u64(&sb, sockaddr_port(a));
        }
}

uint16_t sockaddr_port(const struct sockaddr_any *a) {
        if (a->sa.sa_family == AF_INET)
                return ntohs(a->in.sin_port);
        if (a->sa.sa_family == AF_INET6)
                return ntohs(a->in6.sin6_port);
        return 0;
}

void netaddr_from_sockaddr(struct netaddr *ret, const struct sockaddr_any *a,
                           unsigned prefix4, unsigned prefix6) {
        memset(ret, 0, sizeof *ret);
        if (a->sa.sa_family == AF_INET) {
                ret->family = AF_INET;
                memcpy(ret->bytes, &a->in.sin_addr, 4);
        } else if (a->sa.sa_family == AF_INET6) {
                ret->family = AF_INET6;
                memcpy(ret->bytes, &a->in6.sin6_addr, 16);
        } else
                ret->family = AF_UNSPEC;   /* e.g. AF_UNIX under --inetd: one shared key */
        netaddr_mask(ret, prefix4, prefix6);
}

void netaddr_mask(struct netaddr *n, unsigned prefix4, unsigned prefix6) {
        if (n->family == AF_INET) {
                n->prefixlen = (uint8_t) prefix4;
                mask_bytes(n->bytes, 32, prefix4);
        } else if (n->family == AF_INET6) {
                n->prefixlen = (uint8_t) prefix6;
                mask_bytes(n->bytes, 128, prefix6);
        }
}

bool netaddr_contains(const struct netaddr *net, const struct netaddr *addr) {
        unsigned full = net->prefixlen / 8, rest = net->prefixlen % 8;

        if (net->family != addr->family)
                return false;
        if (memcmp(net->bytes, addr->bytes, full) != 0)
                return false;
        if (rest == 0)
                return true;
        uint8_t mask = (uint8_t) (0xff << (8 - rest));
        return (net->bytes[full] & mask) == (addr->bytes[full] & mask);
}

void netaddr_format_host(const struct netaddr *n, char *buf, size_t size) {
        if (n->family != AF_INET && n->family != AF_INET6)
                snprintf(buf, size, "(local)");
        else
                inet_ntop(n->family, n->bytes, buf, (socklen_t) size);
}

void netaddr_format(const struct netaddr *n, char *buf, size_t size) {
        char host[INET6_ADDRSTRLEN + 8];

        netaddr_format_host(n, host, sizeof host);
        if (n->family != AF_INET && n->family != AF_INET6)
                snprintf(buf, size, "%s", host);
        else
                snprintf(buf, size, "%s/%u", host, n->prefixlen);
}
