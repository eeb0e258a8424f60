/* SPDX-License-Identifier: MIT */
/*
 * The PROXY protocol header (HAProxy's doc/proxy-protocol.txt, versions 1
 * and 2) that a trusted load balancer sends before a client's bytes. Pure:
 * it parses what a caller peeked from the socket, with no I/O, and says how
 * long the header is, so that the caller reads exactly that many bytes and
 * leaves what follows (echo data) queued for the worker.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "addr.h"

#define PROXY_V1_MAX 107                /* "PROXY TCP6 <45> <45> 65535 65535\r\n" */
#define PROXY_V2_PREFIX 16
/* The longest v2 address block and TLVs accepted: room for the UNIX family's
 * 216 bytes and the TLVs that AWS, Azure, GCP and HAProxy's SSL send. */
#define PROXY_V2_MAX_PAYLOAD 1024
#define PROXY_HEADER_MAX (PROXY_V2_PREFIX + PROXY_V2_MAX_PAYLOAD)

struct proxy_header {
        unsigned version;               /* 1 or 2 */
        /* false for v2 LOCAL, v2 UNSPEC and v1 UNKNOWN (health checks): the
         * connection is the balancer's own, its address block is ignored. */
        bool has_addresses;
        struct sockaddr_any src;        /* the client (IPv4-mapped folded to IPv4) */
        struct sockaddr_any dst;        /* the address the client connected to */
};

/*
 * Looks at the first size bytes of a connection. Returns the header's
 * length (> 0, at most size) when they begin with a whole valid header,
 * and fills *ret; 0 when they are a valid beginning and more are needed;
 * -EBADMSG when they cannot begin a valid header, *ret_why says why. The
 * same bytes always give the same answer, so a caller may call it again
 * with more each time.
 */
ssize_t proxy_parse(const void *buf, size_t size, struct proxy_header *ret, const char **ret_why);
