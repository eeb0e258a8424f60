/* SPDX-License-Identifier: MIT */
/*
 * The accept path of a proxy listener, up to the PROXY header: a trusted
 * balancer's connection waits in a small table, counted under the
 * balancer's source key, until its header (proxy.c) is whole; the master
 * then reads exactly the header, never a byte beyond it, and the connection
 * goes on as a plain one from the client the header names (accept.c). All
 * without blocking: the connection is in the master's epoll set
 * (edge-triggered, so a partial header does not wake the loop again until
 * more arrives), and each has a deadline of proxy_timeout.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "addr.h"
#include "listen.h"

struct master;

/* The epoll tags of waiting connections: PROXY_TAG_BASE + slot. */
#define PROXY_TAG_BASE (UINT64_C(1) << 48)
#define PROXY_TAG_IS(t) ((t) >> 32 == PROXY_TAG_BASE >> 32)

/* At most this many connections wait for their header, whatever
 * max_connections says (0 = unlimited). */
#define PROXY_PENDING_MAX 65536

struct proxy_pending {
        int fd;                         /* -1: a free slot */
        bool watched;                   /* in the epoll set */
        struct sockaddr_any peer;       /* the balancer */
        struct netaddr key;             /* the balancer's source key it counts under */
        struct listener listener;       /* a copy: a reload may replace the listeners */
        uint64_t start;
        uint32_t prev, next;            /* oldest first; the free list uses next */
};

struct proxy_table {
        struct proxy_pending *slots;
        uint32_t cap;
        uint32_t n;                     /* waiting */
        uint32_t head, tail;            /* the oldest and newest waiting */
        uint32_t free;                  /* the first free slot */
};

/* fd is a new connection from peer on l, a proxy listener. */
void proxy_accept(struct master *m, int fd, const struct sockaddr_any *peer, const struct listener *l, uint64_t now);
/* The loop's epoll event for a waiting connection. */
void proxy_event(struct master *m, uint64_t tag, uint32_t events);
/* Refuses those whose proxy_timeout is over. */
void proxy_timers(struct master *m, uint64_t now);
/* When the oldest one's proxy_timeout ends, or USEC_INFINITY. */
uint64_t proxy_next_deadline(const struct master *m);
/* Closes every waiting connection (stop, or failing out of the loop). */
void proxy_close_all(struct master *m);
void proxy_table_done(struct proxy_table *t);
