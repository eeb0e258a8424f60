/* SPDX-License-Identifier: MIT */
/* Waiting for a PROXY header without blocking (see proxy-accept.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "accept.h"
#include "fd-util.h"
#include "master.h"
#include "proxy-accept.h"
#include "proxy.h"
#include "status.h"

#define NONE UINT32_MAX

static struct proxy_pending *slot_new(struct proxy_table *t) {
        struct proxy_pending *p;
        uint32_t i;

        if (t->cap == 0 || t->free == NONE) {
                uint32_t cap = t->cap ? t->cap * 2 : 16;
                if (cap > PROXY_PENDING_MAX)
                        cap = PROXY_PENDING_MAX;
                if (cap <= t->cap)
                        return NULL;
                p = realloc(t->slots, cap * sizeof *p);
                if (!p)
                        return NULL;
                t->slots = p;
                if (t->cap == 0)
                        t->head = t->tail = NONE;
                for (uint32_t k = t->cap; k < cap; k++)
                        t->slots[k] = (struct proxy_pending) { .fd = -1, .next = k + 1 < cap ? k + 1 : NONE };
                t->free = t->cap;
                t->cap = cap;
        }
        i = t->free;
        p = &t->slots[i];
        t->free = p->next;
        p->prev = t->tail;
        p->next = NONE;
        if (t->tail != NONE)
                t->slots[t->tail].next = i;
        else
                t->head = i;
        t->tail = i;
        t->n++;
        return p;
}

static void slot_free(struct proxy_table *t, struct proxy_pending *p) {
        uint32_t i = (uint32_t) (p - t->slots);

        if (p->prev != NONE)
                t->slots[p->prev].next = p->next;
        else
                t->head = p->next;
        if (p->next != NONE)
                t->slots[p->next].prev = p->prev;
        else
                t->tail = p->prev;
        p->fd = -1;
        p->next = t->free;
        t->free = i;
        t->n--;
}

/* Takes p out of the table and gives the balancer's count back. */
static int take(struct master *m, struct proxy_pending *p, uint64_t now) {
        int fd = p->fd;

        /* The worker keeps the same open socket: it must not stay in the
         * master's epoll set, which a close() here would not undo. */
        if (p->watched)
                (void) epoll_ctl(m->epoll_fd, EPOLL_CTL_DEL, fd, NULL);
        sources_put(&m->sources, &p->key, now);
        slot_free(&m->proxy, p);
        status_changed(m);
        return fd;
}

static void refuse(struct master *m, struct proxy_pending *p, enum refusal why, const char *what, uint64_t now) {
        const struct verdict v = { .reason = why, .key = p->key, .what = what };
        const struct sockaddr_any peer = p->peer;
        const struct listener l = p->listener;

        safe_close(take(m, p, now));
        status_refused(m, &peer, &l, &v, now);
}

/* Looks at what the balancer sent so far; serves, refuses, or waits for more. */
static void try_header(struct master *m, struct proxy_pending *p, bool hup, uint64_t now) {
        uint8_t buf[PROXY_HEADER_MAX];
        struct proxy_header h;
        const struct sockaddr_any peer = p->peer;
        const struct listener l = p->listener;
        const char *why;
        ssize_t n, len;
        int fd;

        do
                n = recv(p->fd, buf, sizeof buf, MSG_PEEK | MSG_DONTWAIT);
        while (n < 0 && errno == EINTR);
        if (n < 0 && errno == EAGAIN && !hup)
                return;
        if (n < 0) {
                refuse(m, p, REFUSED_PROXY_HEADER, errno == EAGAIN ? "the balancer closed the connection" :
                       "the connection failed before its header", now);
                return;
        }
        if (n == 0) {
                refuse(m, p, REFUSED_PROXY_HEADER, "the balancer closed the connection before its header", now);
                return;
        }
        len = proxy_parse(buf, (size_t) n, &h, &why);
        if (len < 0) {
                refuse(m, p, REFUSED_PROXY_HEADER, why, now);
                return;
        }
        if (len == 0) {
                /* Half a header, and the balancer closed or reset: no more comes. */
                if (hup)
                        refuse(m, p, REFUSED_PROXY_HEADER, "the balancer closed the connection within its header", now);
                return;
        }
        /* Exactly the header: what follows stays queued, for the worker to echo. */
        do
                n = recv(p->fd, buf, (size_t) len, MSG_DONTWAIT);
        while (n < 0 && errno == EINTR);
        if (n != len) {
                refuse(m, p, REFUSED_PROXY_HEADER, "the header could not be read", now);
                return;
        }
        fd = take(m, p, now);
        /* LOCAL, UNSPEC, UNKNOWN: the balancer's own connection (a health
         * check), never an address it made up. */
        accept_serve(m, fd, h.has_addresses ? &h.src : &peer, &peer, &l, now);
}

void proxy_accept(struct master *m, int fd, const struct sockaddr_any *peer, const struct listener *l, uint64_t now) {
        const struct admit_tables tables = {
                .active = master_active(m),
                .sources = &m->sources,
                .rate_tat = &m->rate_tat,
        };
        struct proxy_pending *p;
        struct netaddr balancer;
        struct verdict v;

        netaddr_from_sockaddr(&balancer, peer, 32, 128);
        if (!admit_balancer(m->cfg, &tables, &balancer, now, &v)) {
                safe_close(fd);
                status_refused(m, peer, l, &v, now);
                return;
        }
        p = slot_new(&m->proxy);
        if (!p) {
                sources_put(&m->sources, &v.key, now);
                safe_close(fd);
                v = (struct verdict) { .reason = REFUSED_RESOURCES, .key = v.key,
                                       .what = "too many connections waiting for their PROXY header" };
                status_refused(m, peer, l, &v, now);
                return;
        }
        p->fd = fd;
        p->watched = false;
        p->peer = *peer;
        p->key = v.key;
        p->listener = *l;
        p->start = now;
        status_changed(m);

        /* The header often came with the handshake: no need to wait for it. */
        try_header(m, p, false, now);
        if (p->fd != fd || p->watched)
                return;
        /* Edge-triggered: a partial header wakes the loop again only when
         * more arrives. Adding reports what came since the peek. */
        if (epoll_ctl(m->epoll_fd, EPOLL_CTL_ADD, fd, &(struct epoll_event) {
                        .events = EPOLLIN | EPOLLRDHUP | EPOLLET,
                        .data.u64 = PROXY_TAG_BASE + (uint64_t) (p - m->proxy.slots) }) < 0) {
                status_resource_problem(m, now, errno, "cannot watch a connection for its PROXY header");
                refuse(m, p, REFUSED_RESOURCES, "cannot watch the connection", now);
                return;
        }
        p->watched = true;
}

void proxy_event(struct master *m, uint64_t tag, uint32_t events) {
        uint64_t i = tag - PROXY_TAG_BASE;
        struct proxy_pending *p;

        /* A slot freed earlier in the same batch of events has fd -1; one
         * reused since is only looked at once more, which does no harm. */
        if (i >= m->proxy.cap)
                return;
        p = &m->proxy.slots[i];
        if (p->fd < 0 || !p->watched)
                return;
        try_header(m, p, events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR), now_usec(CLOCK_MONOTONIC));
}

void proxy_timers(struct master *m, uint64_t now) {
        /* Every deadline is start + the current proxy_timeout, so the oldest
         * ends first. */
        while (m->proxy.n > 0) {
                struct proxy_pending *p = &m->proxy.slots[m->proxy.head];
                if (now < p->start + m->cfg->proxy_timeout_usec)
                        return;
                refuse(m, p, REFUSED_PROXY_TIMEOUT, NULL, now);
        }
}

uint64_t proxy_next_deadline(const struct master *m) {
        if (m->proxy.n == 0)
                return USEC_INFINITY;
        return m->proxy.slots[m->proxy.head].start + m->cfg->proxy_timeout_usec;
}

void proxy_close_all(struct master *m) {
        uint64_t now = now_usec(CLOCK_MONOTONIC);

        while (m->proxy.n > 0)
                safe_close(take(m, &m->proxy.slots[m->proxy.head], now));
}

void proxy_table_done(struct proxy_table *t) {
        free(t->slots);
        *t = (struct proxy_table) {};
}
