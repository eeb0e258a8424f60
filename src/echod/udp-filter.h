/* SPDX-License-Identifier: MIT */
/*
 * Whether one UDP datagram is echoed, or why it is dropped. Pure policy, as
 * admit.c is for connections: it reads the configuration and the rate
 * buckets and charges them when the datagram is echoed, but does no I/O and
 * reads no clock. The UDP worker (udp.c) gathers the inputs from recvmmsg()
 * and its IP_PKTINFO / IPV6_PKTINFO and carries the verdict out.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "config.h"
#include "sources.h"

/* UDP_ECHO first; the drops in the order they are checked. */
enum udp_verdict {
        UDP_ECHO,
        UDP_DROP_TRUNCATED,             /* larger than the receive buffer (MSG_TRUNC) */
        UDP_DROP_DESTINATION,           /* sent to a broadcast or multicast address */
        UDP_DROP_SOURCE_ADDRESS,        /* a source no real client can have */
        UDP_DROP_SOURCE_PORT,           /* in udp_deny_source_ports */
        UDP_DROP_ACCESS,                /* allow / deny */
        UDP_DROP_SOURCES,               /* source table full (max_sources) or out of memory */
        UDP_DROP_RATE_PER_SOURCE,       /* udp_rate_limit_per_source */
        UDP_DROP_RATE,                  /* udp_rate_limit */
        UDP_DROP_BYTES,                 /* udp_max_bytes_per_second */
        _UDP_VERDICT_MAX,
};

/* "echoed", "truncated", "destination", ...: the word in records. */
const char *udp_verdict_to_string(enum udp_verdict v);
/* "UDP_ECHOED", "UDP_DROPPED_TRUNCATED", ...: the field in records. */
const char *udp_verdict_to_field(enum udp_verdict v);

/* What the worker knows of one datagram. */
struct udp_datagram {
        struct netaddr source;          /* full address, IPv4-mapped folded to IPv4 */
        uint16_t source_port;
        struct netaddr destination;     /* where it was sent (pktinfo), folded likewise */
        bool destination_broadcast;     /* the kernel delivered it as broadcast (see udp.c) */
        size_t size;                    /* payload bytes = the reply's */
        bool truncated;
};

/* The state the decision reads, and on echo charges. */
struct udp_filter_state {
        struct source_table sources;    /* per-source buckets; source prefixes and max_sources from the config */
        uint64_t rate_tat;              /* udp_rate_limit */
        uint64_t bytes_tat_nsec;        /* udp_max_bytes_per_second, in nanoseconds */
};

int udp_filter_init(struct udp_filter_state *st, const struct config *c);
void udp_filter_done(struct udp_filter_state *st);

/* a's address as the filter sees it: IPv4-mapped IPv6 folded to IPv4. */
void udp_fold_address(struct netaddr *ret, const struct sockaddr_any *a);

/* A source address that no real client can send from, for a datagram sent
 * to dst: 0.0.0.0/8, 127.0.0.0/8 and ::1 (unless dst is a loopback address
 * too), 224.0.0.0/4, 240.0.0.0/4 (with 255.255.255.255), ::, ff00::/8.
 * Both are folded (IPv4-mapped as IPv4). */
bool udp_source_is_bogus(const struct netaddr *src, const struct netaddr *dst);
/* A multicast or limited-broadcast address. */
bool udp_destination_is_group(const struct netaddr *dst);
bool udp_port_denied(const struct config *c, uint16_t port);

/*
 * Decides for d at time now (CLOCK_MONOTONIC, µs). The checks in the order
 * of enum udp_verdict; all three buckets are checked before any is charged,
 * so that a datagram dropped by one limit costs nothing from the others.
 */
enum udp_verdict udp_filter(const struct config *c, struct udp_filter_state *st,
                            const struct udp_datagram *d, uint64_t now);
