/* SPDX-License-Identifier: MIT */
/* The UDP worker and the master's side of it (see udp.h). */
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "children.h"
#include "fd-util.h"
#include "log.h"
#include "master.h"
#include "privs.h"
#include "proctitle.h"
#include "status.h"
#include "udp.h"

#define UDP_BATCH 32                    /* datagrams per recvmmsg() */
#define UDP_BATCHES_PER_WAKE 8          /* per socket, before the next socket's turn */
/* Larger than any datagram without IPv6 jumbograms (65,527 bytes of
 * payload), so that MSG_TRUNC means a datagram that cannot be echoed whole. */
#define UDP_BUFFER 65536
#define BACKOFF_MIN_USEC (1 * USEC_PER_SEC)
#define BACKOFF_MAX_USEC (30 * USEC_PER_SEC)
#define SUMMARY_INTERVAL_USEC (60 * USEC_PER_SEC)

static bool have_udp_listeners(const struct master *m) {
        for (size_t i = 0; i < m->n_listeners; i++)
                if (m->listeners[i].kind == LISTENER_UDP)
                        return true;
        return false;
}

/* ---- the worker ---- */

/* Room for an IP_PKTINFO and an IPV6_PKTINFO message. */
#define CONTROL_SPACE 96
_Static_assert(CONTROL_SPACE >= 2 * sizeof(struct cmsghdr) + sizeof(struct in6_pktinfo) + sizeof(struct in_pktinfo) + 16,
               "CONTROL_SPACE too small");

struct slot {
        struct sockaddr_any peer;
        struct {
                _Alignas(struct cmsghdr) char buf[CONTROL_SPACE];
        } control, reply_control;
        struct iovec iov;
};

#define COUNT(field, n) __atomic_store_n(&(field), (field) + (n), __ATOMIC_RELAXED)

/*
 * Where the datagram was sent and whether as a broadcast. IP_PKTINFO gives
 * both the header's destination (ipi_addr) and the local address the
 * kernel would answer from (ipi_spec_dst): they are equal exactly when the
 * datagram was delivered as local unicast; for a subnet or limited
 * broadcast and for multicast, ipi_spec_dst is the interface's address.
 * IPv6 has no broadcast; its multicast shows in the address itself.
 * Without pktinfo (never on sockets echod opened), the listener's own
 * address stands in.
 */
static void datagram_destination(struct msghdr *mh, const struct listener *l, struct udp_datagram *d,
                                 int *ret_ifindex) {
        bool have4 = false;
        struct sockaddr_any dst = l->addr;

        *ret_ifindex = 0;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
                if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
                        struct in_pktinfo pi;
                        memcpy(&pi, CMSG_DATA(c), sizeof pi);
                        dst = (struct sockaddr_any) { .in = { .sin_family = AF_INET, .sin_addr = pi.ipi_addr },
                                                      .len = sizeof(struct sockaddr_in) };
                        /* 0: the datagram was queued before IP_PKTINFO was
                         * set (socket activation without PassPacketInfo=):
                         * the kernel did not record it. */
                        d->destination_broadcast = pi.ipi_spec_dst.s_addr != 0 &&
                                                   pi.ipi_addr.s_addr != pi.ipi_spec_dst.s_addr;
                        *ret_ifindex = pi.ipi_ifindex;
                        have4 = true;
                } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO && !have4) {
                        struct in6_pktinfo pi;
                        memcpy(&pi, CMSG_DATA(c), sizeof pi);
                        dst = (struct sockaddr_any) { .in6 = { .sin6_family = AF_INET6, .sin6_addr = pi.ipi6_addr },
                                                      .len = sizeof(struct sockaddr_in6) };
                        *ret_ifindex = (int) pi.ipi6_ifindex;
                }
        }
        udp_fold_address(&d->destination, &dst);
}

/* The reply goes out from the address the datagram was sent to. */
static void reply_source(struct slot *s, struct msghdr *mh, const struct udp_datagram *d, int ifindex) {
        struct cmsghdr *c;

        mh->msg_control = s->reply_control.buf;
        if (d->destination.family == AF_INET) {
                struct in_pktinfo pi = {};
                memcpy(&pi.ipi_spec_dst, d->destination.bytes, 4);
                mh->msg_controllen = CMSG_SPACE(sizeof pi);
                c = CMSG_FIRSTHDR(mh);
                *c = (struct cmsghdr) { .cmsg_len = CMSG_LEN(sizeof pi), .cmsg_level = IPPROTO_IP, .cmsg_type = IP_PKTINFO };
                memcpy(CMSG_DATA(c), &pi, sizeof pi);
        } else {
                struct in6_pktinfo pi = {};
                memcpy(&pi.ipi6_addr, d->destination.bytes, 16);
                /* A link-local address is only unique with its interface. */
                if (IN6_IS_ADDR_LINKLOCAL(&pi.ipi6_addr))
                        pi.ipi6_ifindex = (unsigned) ifindex;
                mh->msg_controllen = CMSG_SPACE(sizeof pi);
                c = CMSG_FIRSTHDR(mh);
                *c = (struct cmsghdr) { .cmsg_len = CMSG_LEN(sizeof pi), .cmsg_level = IPPROTO_IPV6, .cmsg_type = IPV6_PKTINFO };
                memcpy(CMSG_DATA(c), &pi, sizeof pi);
        }
}

struct udp_loop {
        const struct config *cfg;
        struct udp_stats *stats;
        struct udp_filter_state filter;
        struct slot slots[UDP_BATCH];
        struct mmsghdr in[UDP_BATCH], out[UDP_BATCH];
        char *buffers;
};

static void send_replies(int fd, struct udp_loop *u, unsigned n) {
        unsigned off = 0;

        while (off < n) {
                int r = sendmmsg(fd, u->out + off, n - off, MSG_DONTWAIT | MSG_NOSIGNAL);
                if (r < 0) {
                        if (errno == EINTR)
                                continue;
                        /* This one cannot go (a full send buffer, no route): the rest may. */
                        COUNT(u->stats->send_failed, 1);
                        off++;
                        continue;
                }
                for (unsigned i = off; i < off + (unsigned) r; i++) {
                        COUNT(u->stats->echoed, 1);
                        COUNT(u->stats->bytes_echoed, u->out[i].msg_len);
                }
                off += (unsigned) r;
        }
}

/* Returns true when the socket may have more waiting. */
static bool serve_batch(const struct listener *l, struct udp_loop *u) {
        unsigned n_out = 0;
        uint64_t now;
        int n;

        for (unsigned i = 0; i < UDP_BATCH; i++) {
                struct slot *s = &u->slots[i];
                s->iov = (struct iovec) { u->buffers + (size_t) i * UDP_BUFFER, UDP_BUFFER };
                u->in[i].msg_hdr = (struct msghdr) {
                        .msg_name = &s->peer.storage,
                        .msg_namelen = sizeof s->peer.storage,
                        .msg_iov = &s->iov,
                        .msg_iovlen = 1,
                        .msg_control = s->control.buf,
                        .msg_controllen = sizeof s->control.buf,
                };
        }
        n = recvmmsg(l->fd, u->in, UDP_BATCH, MSG_DONTWAIT, NULL);
        if (n <= 0)
                return false;   /* EAGAIN; EINTR and errors queued by ICMP come round again */
        now = now_usec(CLOCK_MONOTONIC);
        for (int i = 0; i < n; i++) {
                struct slot *s = &u->slots[i];
                struct msghdr *mh = &u->in[i].msg_hdr;
                struct udp_datagram d = {
                        .size = u->in[i].msg_len,
                        .truncated = mh->msg_flags & MSG_TRUNC,
                };
                enum udp_verdict v;
                int ifindex;

                s->peer.len = mh->msg_namelen;
                udp_fold_address(&d.source, &s->peer);
                d.source_port = sockaddr_port(&s->peer);
                datagram_destination(mh, l, &d, &ifindex);
                COUNT(u->stats->received, 1);
                COUNT(u->stats->bytes_received, d.size);
                v = udp_filter(u->cfg, &u->filter, &d, now);
                if (v != UDP_ECHO) {
                        COUNT(u->stats->dropped[v], 1);
                        continue;
                }
                /* The payload as it came, never more: iov_len is what was received. */
                s->iov.iov_len = d.size;
                u->out[n_out].msg_hdr = (struct msghdr) {
                        .msg_name = &s->peer.storage,
                        .msg_namelen = s->peer.len,
                        .msg_iov = &s->iov,
                        .msg_iovlen = 1,
                };
                reply_source(s, &u->out[n_out].msg_hdr, &d, ifindex);
                n_out++;
        }
        if (n_out > 0)
                send_replies(l->fd, u, n_out);
        return n == UDP_BATCH;
}

static _noreturn_ void udp_worker_main(struct master *m, pid_t master_pid) {
        struct sigaction dfl = { .sa_handler = SIG_DFL };
        struct udp_loop *u;
        char title[256] = "echod: udp";
        int *keep, epfd, r;
        size_t n = 0;

        log_journal_forget();
        /* Only the UDP sockets and stdio: not the TCP listeners, the epoll
         * set, the signalfds or the report socket. */
        keep = calloc(m->n_listeners + 1, sizeof *keep);
        if (!keep)
                _exit(EXIT_FAILURE);
        for (size_t i = 0; i < m->n_listeners; i++)
                if (m->listeners[i].kind == LISTENER_UDP)
                        keep[n++] = m->listeners[i].fd;
        (void) close_all_fds_except(keep, n);
        free(keep);
        if (m->have_caps && privs_drop_caps() < 0)
                _exit(EXIT_FAILURE);    /* never serve with the master's capabilities */
        /* Never outlive the master, even one that died before this line. */
        (void) prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
        if (getppid() != master_pid)
                _exit(EXIT_FAILURE);

        for (size_t i = 0, off = strlen(title); i < m->n_listeners && off < sizeof title; i++)
                if (m->listeners[i].kind == LISTENER_UDP)
                        off += (size_t) snprintf(title + off, sizeof title - off, " %s", m->listeners[i].name);
        proctitle_set_text(title);
        (void) prctl(PR_SET_NAME, (unsigned long) "echod: udp", 0, 0, 0);

        /* SIGTERM and SIGINT end it at once, but only while it waits (they
         * stay blocked while it serves a batch), so no datagram it has read
         * is lost unanswered. */
        (void) sigaction(SIGTERM, &dfl, NULL);
        (void) sigaction(SIGINT, &dfl, NULL);

        u = calloc(1, sizeof *u);
        if (!u || !(u->buffers = malloc((size_t) UDP_BATCH * UDP_BUFFER)))
                _exit(EXIT_FAILURE);
        u->cfg = m->cfg;
        u->stats = m->udp.stats;
        if (udp_filter_init(&u->filter, m->cfg) < 0)
                _exit(EXIT_FAILURE);

        epfd = epoll_create1(EPOLL_CLOEXEC);
        if (epfd < 0)
                _exit(EXIT_FAILURE);
        for (size_t i = 0; i < m->n_listeners; i++)
                if (m->listeners[i].kind == LISTENER_UDP &&
                    epoll_ctl(epfd, EPOLL_CTL_ADD, m->listeners[i].fd,
                              &(struct epoll_event) { .events = EPOLLIN, .data.u64 = i }) < 0)
                        _exit(EXIT_FAILURE);

        for (;;) {
                struct epoll_event ev[16];

                r = epoll_pwait(epfd, ev, (int) ARRAY_SIZE(ev), -1, &m->worker_poll_mask);
                if (r < 0) {
                        if (errno == EINTR)
                                continue;
                        _exit(EXIT_FAILURE);
                }
                for (int i = 0; i < r; i++) {
                        const struct listener *l = &m->listeners[ev[i].data.u64];
                        for (int b = 0; b < UDP_BATCHES_PER_WAKE && serve_batch(l, u); b++)
                                ;
                }
        }
}

/* ---- the master's side ---- */

int udp_init(struct master *m) {
        void *p = mmap(NULL, sizeof(struct udp_stats), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

        if (p == MAP_FAILED)
                return -errno;
        m->udp.stats = p;
        m->udp.backoff_usec = BACKOFF_MIN_USEC;
        return 0;
}

void udp_done(struct master *m) {
        udp_stop(m);
        if (m->udp.stats)
                (void) munmap(m->udp.stats, sizeof(struct udp_stats));
        m->udp.stats = NULL;
}

void udp_stats_read(const struct master *m, struct udp_stats *ret) {
        const uint64_t *src = (const uint64_t *) m->udp.stats;
        uint64_t *dst = (uint64_t *) ret;

        if (!src) {
                memset(ret, 0, sizeof *ret);
                return;
        }
        for (size_t i = 0; i < sizeof *ret / sizeof(uint64_t); i++)
                dst[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
}

void udp_start(struct master *m, uint64_t now) {
        pid_t pid, master_pid = getpid();

        if (m->udp.pid > 0 || m->stopping || !m->udp.stats || !have_udp_listeners(m))
                return;
        m->udp.restart_at = 0;
        pid = children_clone(m->exit_signal);
        if (pid < 0) {
                log_struct(LOG_ERR, LOG_MESSAGE_ID(ECHOD_MID_UDP_WORKER),
                           LOG_MESSAGE("cannot fork the UDP worker: %m; trying again in %" PRIu64 "s",
                                       m->udp.backoff_usec / USEC_PER_SEC));
                m->udp.restart_at = now + m->udp.backoff_usec;
                return;
        }
        if (pid == 0)
                udp_worker_main(m, master_pid);
        m->udp.pid = pid;
        m->udp.started = now;
        m->udp.next_check = now + USEC_PER_SEC;
        if (m->udp.summary_due == 0)
                m->udp.summary_due = now + SUMMARY_INTERVAL_USEC;
        log_debug("UDP worker %d started", (int) pid);
}

void udp_exited(struct master *m, const siginfo_t *si, uint64_t now) {
        bool expected = m->udp.replacing || m->stopping;
        uint64_t delay;

        m->udp.pid = 0;
        if (expected)
                return;
        /* A worker that served a while before it died starts again soon. */
        if (now - m->udp.started >= BACKOFF_MAX_USEC)
                m->udp.backoff_usec = BACKOFF_MIN_USEC;
        delay = m->udp.backoff_usec;
        m->udp.backoff_usec = delay * 2 > BACKOFF_MAX_USEC ? BACKOFF_MAX_USEC : delay * 2;
        m->udp.restart_at = now + delay;
        m->udp.restarts++;
        if (si->si_code == CLD_EXITED)
                log_struct(LOG_WARNING, LOG_MESSAGE_ID(ECHOD_MID_UDP_WORKER),
                           "WORKER_PID=%d", (int) si->si_pid,
                           "EXIT_STATUS=%d", si->si_status,
                           "UDP_RESTARTS=%" PRIu64, m->udp.restarts,
                           LOG_MESSAGE("UDP worker %d exited with status %d; restarting it in %" PRIu64 "s",
                                       (int) si->si_pid, si->si_status, delay / USEC_PER_SEC));
        else
                log_struct(LOG_WARNING, LOG_MESSAGE_ID(ECHOD_MID_UDP_WORKER),
                           "WORKER_PID=%d", (int) si->si_pid,
                           "SIGNAL=%d", si->si_status,
                           "UDP_RESTARTS=%" PRIu64, m->udp.restarts,
                           LOG_MESSAGE("UDP worker %d was killed by signal %d (%s); restarting it in %" PRIu64 "s",
                                       (int) si->si_pid, si->si_status, strsignal(si->si_status), delay / USEC_PER_SEC));
        status_changed(m);
}

void udp_stop(struct master *m) {
        pid_t pid = m->udp.pid;

        m->udp.restart_at = 0;
        if (pid <= 0)
                return;
        m->udp.replacing = true;
        (void) kill(pid, SIGTERM);
        /* A stopped worker (SIGSTOP) would never take it. */
        (void) kill(pid, SIGCONT);
        /* Through the one reap path, which calls udp_exited(). */
        while (m->udp.pid == pid && children_reap(m, pid, true) >= 0)
                ;
        m->udp.pid = 0;
        m->udp.replacing = false;
}

static bool same_ports(const struct config *a, const struct config *b) {
        if (a->n_udp_deny_source_ports != b->n_udp_deny_source_ports)
                return false;
        for (size_t i = 0; i < a->n_udp_deny_source_ports; i++)
                if (a->udp_deny_source_ports[i].first != b->udp_deny_source_ports[i].first ||
                    a->udp_deny_source_ports[i].last != b->udp_deny_source_ports[i].last)
                        return false;
        return true;
}

static bool same_acl(const struct config *a, const struct config *b) {
        if (a->n_acl != b->n_acl || a->n_allow != b->n_allow)
                return false;
        for (size_t i = 0; i < a->n_acl; i++)
                if (a->acl[i].allow != b->acl[i].allow || memcmp(&a->acl[i].net, &b->acl[i].net, sizeof a->acl[i].net) != 0)
                        return false;
        return true;
}

bool udp_config_changed(const struct config *a, const struct config *b) {
        return !same_ports(a, b) || !same_acl(a, b) ||
               a->udp_rate_limit_per_source != b->udp_rate_limit_per_source ||
               a->udp_rate_limit_per_source_burst != b->udp_rate_limit_per_source_burst ||
               a->udp_rate_limit != b->udp_rate_limit ||
               a->udp_rate_limit_burst != b->udp_rate_limit_burst ||
               a->udp_max_bytes_per_second != b->udp_max_bytes_per_second ||
               a->source_prefix_v4 != b->source_prefix_v4 ||
               a->source_prefix_v6 != b->source_prefix_v6 ||
               a->max_sources != b->max_sources;
}

void udp_reloaded(struct master *m, bool changed, uint64_t now) {
        if (changed && m->udp.pid > 0) {
                udp_stop(m);
                log_info("UDP settings or listeners changed: UDP worker replaced, its sockets kept");
        }
        if (!have_udp_listeners(m))
                return;
        m->udp.backoff_usec = BACKOFF_MIN_USEC;
        udp_start(m, now);
}

void udp_warn_config(const struct master *m, const struct config *c) {
        /* Under socket activation listen_udp is ignored: the passed sockets count. */
        if ((c->n_listen_udp > 0 || have_udp_listeners(m)) && c->n_udp_deny_source_ports == 0)
                log_struct(LOG_WARNING, LOG_MESSAGE_ID(ECHOD_MID_LIMIT_WARNING),
                           LOG_MESSAGE("udp_deny_source_ports is empty: datagrams from any port are echoed, "
                                       "so another UDP service (echo, chargen, DNS) can be made to loop with echod"));
}

uint64_t udp_next_deadline(const struct master *m) {
        uint64_t d = USEC_INFINITY;

        if (m->udp.restart_at && m->udp.restart_at < d)
                d = m->udp.restart_at;
        if (m->udp.pid > 0 && m->udp.next_check < d)
                d = m->udp.next_check;
        if (m->udp.summary_due && m->udp.summary_due < d)
                d = m->udp.summary_due;
        return d;
}

static uint64_t dropped_total(const struct udp_stats *s) {
        uint64_t n = 0;

        for (int v = 1; v < _UDP_VERDICT_MAX; v++)
                n += s->dropped[v];
        return n;
}

void udp_format_status(const struct master *m, char *buf, size_t size) {
        struct udp_stats s;

        buf[0] = '\0';
        if (!m->udp.stats || (!have_udp_listeners(m) && m->udp.stats->received == 0))
                return;
        udp_stats_read(m, &s);
        snprintf(buf, size, "; udp %" PRIu64 " received, %" PRIu64 " echoed, %" PRIu64 " dropped%s",
                 s.received, s.echoed, dropped_total(&s), m->udp.pid > 0 ? "" : " (worker not running)");
}

static void format_drops(const struct udp_stats *s, const struct udp_stats *since, char *buf, size_t size) {
        size_t off = 0;

        buf[0] = '\0';
        for (int v = 1; v < _UDP_VERDICT_MAX && off < size; v++) {
                uint64_t n = s->dropped[v] - (since ? since->dropped[v] : 0);
                if (n > 0)
                        off += (size_t) snprintf(buf + off, size - off, "%s%s %" PRIu64, off ? ", " : "",
                                                 udp_verdict_to_string(v), n);
        }
        if (off == 0)
                snprintf(buf, size, "none");
}

void udp_summary(struct master *m, uint64_t now, bool force) {
        struct udp_stats s, *l = &m->udp.summary_last;
        char drops[512];

        if (!m->udp.stats)
                return;
        udp_stats_read(m, &s);
        m->udp.summary_due = now + SUMMARY_INTERVAL_USEC;
        /* At exit (force), whatever came since the last one: no datagram goes unreported. */
        (void) force;
        if (s.received == l->received)
                return;
        format_drops(&s, l, drops, sizeof drops);
        log_struct(LOG_INFO, LOG_MESSAGE_ID(ECHOD_MID_UDP_SUMMARY),
                   "UDP_RECEIVED=%" PRIu64, s.received - l->received,
                   "UDP_ECHOED=%" PRIu64, s.echoed - l->echoed,
                   "UDP_BYTES_ECHOED=%" PRIu64, s.bytes_echoed - l->bytes_echoed,
                   "UDP_SEND_FAILED=%" PRIu64, s.send_failed - l->send_failed,
                   "UDP_DROPPED_TRUNCATED=%" PRIu64, s.dropped[UDP_DROP_TRUNCATED] - l->dropped[UDP_DROP_TRUNCATED],
                   "UDP_DROPPED_DESTINATION=%" PRIu64, s.dropped[UDP_DROP_DESTINATION] - l->dropped[UDP_DROP_DESTINATION],
                   "UDP_DROPPED_SOURCE_ADDRESS=%" PRIu64, s.dropped[UDP_DROP_SOURCE_ADDRESS] - l->dropped[UDP_DROP_SOURCE_ADDRESS],
                   "UDP_DROPPED_SOURCE_PORT=%" PRIu64, s.dropped[UDP_DROP_SOURCE_PORT] - l->dropped[UDP_DROP_SOURCE_PORT],
                   "UDP_DROPPED_ACCESS=%" PRIu64, s.dropped[UDP_DROP_ACCESS] - l->dropped[UDP_DROP_ACCESS],
                   "UDP_DROPPED_SOURCES_FULL=%" PRIu64, s.dropped[UDP_DROP_SOURCES] - l->dropped[UDP_DROP_SOURCES],
                   "UDP_DROPPED_PER_SOURCE_RATE=%" PRIu64, s.dropped[UDP_DROP_RATE_PER_SOURCE] - l->dropped[UDP_DROP_RATE_PER_SOURCE],
                   "UDP_DROPPED_RATE=%" PRIu64, s.dropped[UDP_DROP_RATE] - l->dropped[UDP_DROP_RATE],
                   "UDP_DROPPED_BYTES=%" PRIu64, s.dropped[UDP_DROP_BYTES] - l->dropped[UDP_DROP_BYTES],
                   LOG_MESSAGE("udp: %" PRIu64 " datagrams received, %" PRIu64 " echoed (%" PRIu64 " bytes) since the last summary; dropped: %s",
                               s.received - l->received, s.echoed - l->echoed, s.bytes_echoed - l->bytes_echoed, drops));
        *l = s;
}

void udp_run_timers(struct master *m, uint64_t now) {
        if (m->udp.restart_at && now >= m->udp.restart_at)
                udp_start(m, now);
        if (m->udp.pid > 0 && now >= m->udp.next_check) {
                m->udp.next_check = now + USEC_PER_SEC;
                /* Its exit signal may have been lost (see children.c). */
                (void) children_reap(m, m->udp.pid, false);
                if (m->udp.stats->received != m->udp.status_received) {
                        m->udp.status_received = m->udp.stats->received;
                        status_changed(m);
                }
        }
        if (m->udp.summary_due && now >= m->udp.summary_due)
                udp_summary(m, now, false);
}
