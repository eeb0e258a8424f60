/* SPDX-License-Identifier: MIT */
/* The accept path (see accept.h). */
#include <errno.h>
#include <sys/socket.h>

#include "accept.h"
#include "children.h"
#include "fd-util.h"
#include "proxy-accept.h"
#include "status.h"

#define ACCEPT_BATCH 32                         /* per listener per wake-up */

void accept_serve(struct master *m, int fd, const struct sockaddr_any *peer, const struct sockaddr_any *balancer,
                  const struct listener *l, uint64_t now) {
        const struct admit_tables tables = {
                .active = master_active(m),
                .sources = &m->sources,
                .rate_tat = &m->rate_tat,
        };
        struct netaddr remote;
        struct verdict v;
        int r;

        netaddr_from_sockaddr(&remote, peer, 32, 128);
        /* A worker's report gives its source slot back: one may be waiting
         * from a worker that ended while this batch ran. */
        if (!admit(m->cfg, &tables, &remote, now, &v) && v.reason == REFUSED_PER_SOURCE &&
            children_take_reports(m) > 0)
                (void) admit(m->cfg, &tables, &remote, now, &v);
        if (!v.accepted) {
                safe_close(fd);
                status_refused_via(m, peer, balancer, l, &v, now);
                return;
        }
        r = children_spawn_proxied(m, fd, peer, balancer, l, &v.key, now);
        if (r < 0) {
                sources_put(&m->sources, &v.key, now);
                status_resource_problem(m, now, -r, "cannot fork a worker, closing the connection");
                master_pause_accepting(m, now);
                v = (struct verdict) { .reason = REFUSED_RESOURCES, .key = v.key, .what = "cannot fork a worker" };
                status_refused_via(m, peer, balancer, l, &v, now);
                return;
        }
        m->served++;
        status_changed(m);
}

void accept_batch(struct master *m, size_t idx) {
        const struct listener *l = &m->listeners[idx];

        for (int i = 0; i < ACCEPT_BATCH && m->watching; i++) {
                struct sockaddr_any peer = { .len = sizeof peer.storage };
                uint64_t now;
                int fd;

                fd = accept4(l->fd, &peer.sa, &peer.len, SOCK_NONBLOCK | SOCK_CLOEXEC);
                now = now_usec(CLOCK_MONOTONIC);
                if (fd < 0) {
                        switch (errno) {
                        case EAGAIN:
                                return;
                        case EINTR:
                        case ECONNABORTED:
                        case EPROTO:
                        case EPERM:             /* firewall */
                                continue;
                        case EMFILE:
                        case ENFILE:
                        case ENOBUFS:
                        case ENOMEM:
                                status_resource_problem(m, now, errno, "cannot accept connections");
                                break;
                        default:
                                status_resource_problem(m, now, errno, "accept() failed");
                                break;
                        }
                        master_pause_accepting(m, now);
                        return;
                }
                sockaddr_unmap(&peer);
                if (l->kind == LISTENER_PROXY)
                        proxy_accept(m, fd, &peer, l, now);
                else
                        accept_serve(m, fd, &peer, NULL, l, now);
        }
}
