/* SPDX-License-Identifier: MIT */
/*
 * Socket addresses: parsing "ADDR:PORT" and CIDR text, formatting for logs,
 * folding IPv4-mapped IPv6 into IPv4, and the per-source key (an address
 * masked to a prefix).
 */
#pragma once

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

/* Longest "[ffff:...:ffff%ifname]:65535" plus NUL. */
#define ADDR_STR_MAX (INET6_ADDRSTRLEN + 16 + 10)

struct sockaddr_any {
        union {
                struct sockaddr sa;
                struct sockaddr_in in;
                struct sockaddr_in6 in6;
                struct sockaddr_storage storage;
        };
        socklen_t len;
};

/* An address family and 16 bytes (IPv4 uses the first 4), masked to a prefix. */
struct netaddr {
        uint8_t family;         /* AF_INET or AF_INET6 */
        uint8_t prefixlen;
        uint8_t bytes[16];
};

/* "0.0.0.0:7", "127.0.0.1:7", "[::]:7", "[::1]:7", "[fe80::1%eth0]:7".
 * Port must be 1..65535. Returns 0 or -EINVAL / -ERANGE (port). */
int sockaddr_parse(const char *s, struct sockaddr_any *ret);

/* "10.0.0.0/8", "2001:db8::/32", a bare address (= /32 or /128).
 * Rejects host bits outside the prefix with -EADDRNOTAVAIL. */
int netaddr_parse_cidr(const char *s, struct netaddr *ret);

/* Copies an address that the kernel or getaddrinfo() returned (len bytes).
 * Returns 0, or -EINVAL when it does not fit. */
int sockaddr_set(struct sockaddr_any *ret, const struct sockaddr *sa, socklen_t len);

/* Rewrites an IPv4-mapped IPv6 address (::ffff:a.b.c.d) as plain IPv4. */
void sockaddr_unmap(struct sockaddr_any *a);

bool sockaddr_equal(const struct sockaddr_any *a, const struct sockaddr_any *b);

/* The address only ("192.0.2.1", "2001:db8::1"). */
void sockaddr_format_host(const struct sockaddr_any *a, char *buf, size_t size);
/* "192.0.2.1:7" or "[2001:db8::1]:7". */
void sockaddr_format(const struct sockaddr_any *a, char *buf, size_t size);
uint16_t sockaddr_port(const struct sockaddr_any *a);
bool sockaddr_is_inet(const struct sockaddr_any *a);

/* The source key of a peer: its address masked to prefix4 or prefix6. */
void netaddr_from_sockaddr(struct netaddr *ret, const struct sockaddr_any *a,
                           unsigned prefix4, unsigned prefix6);

/* Masks n (a full address) down to the source prefix of its family. */
void netaddr_mask(struct netaddr *n, unsigned prefix4, unsigned prefix6);

/* True when addr (prefixlen = full length) lies inside net. */
bool netaddr_contains(const struct netaddr *net, const struct netaddr *addr);

/* "10.0.0.1" (no prefix) */
void netaddr_format_host(const struct netaddr *n, char *buf, size_t size);
/* "10.0.0.0/8" */
void netaddr_format(const struct netaddr *n, char *buf, size_t size);
