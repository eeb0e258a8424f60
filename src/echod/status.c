/* SPDX-License-Identifier: MIT */
/* STATUS=, the status record, and the records of refusals (see status.h). */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "fd-util.h"
#include "notify.h"
#include "status.h"

/* Connections without a record of their own are summed up this often. */
#define SUMMARY_INTERVAL_USEC (10 * USEC_PER_SEC)

static void format_refused(const struct master *m, char *buf, size_t size) {
        uint64_t total = 0;
        size_t off;

        for (int i = 0; i < _REFUSED_MAX; i++)
                total += m->refused[i];
        off = (size_t) snprintf(buf, size, "%" PRIu64 " refused", total);
        if (total == 0)
                return;
        for (int i = 0; i < _REFUSED_MAX && off < size; i++)
                if (m->refused[i] > 0)
                        off += (size_t) snprintf(buf + off, size - off, "%s%s %" PRIu64,
                                                 off && buf[off - 1] == 'd' ? " (" : ", ",
                                                 refusal_to_string(i) + strlen("refused-"), m->refused[i]);
        if (off < size)
                snprintf(buf + off, size - off, ")");
}

void status_send(struct master *m, uint64_t now) {
        char refused[256], udp[160];

        format_refused(m, refused, sizeof refused);
        udp_format_status(m, udp, sizeof udp);
        (void) notify_send("STATUS=%s%u active, %" PRIu64 " served, %s%s",
                          m->reload_failed ? "Reload failed, old configuration in use; " : "",
                          master_active(m), m->served, refused, udp);
        m->status_sent = now;
        m->status_dirty = false;
}

/* "NET=N NET=N ...": the five sources with the most active connections. */
static void format_top_sources(const struct master *m, char *buf, size_t size) {
        const struct source *best[5] = {}, *s;
        size_t i = 0, off = 0;

        while ((s = htab_next(&m->sources.h, &i))) {
                if (s->active == 0)
                        continue;
                for (size_t k = 0; k < ARRAY_SIZE(best); k++)
                        if (!best[k] || s->active > best[k]->active) {
                                memmove(&best[k + 1], &best[k], (ARRAY_SIZE(best) - k - 1) * sizeof best[0]);
                                best[k] = s;
                                break;
                        }
        }
        buf[0] = '\0';
        for (size_t k = 0; k < ARRAY_SIZE(best) && best[k] && off < size; k++) {
                char net[64];
                netaddr_format(&best[k]->key, net, sizeof net);
                off += (size_t) snprintf(buf + off, size - off, "%s%s=%u", k ? " " : "", net, best[k]->active);
        }
}

void status_log(struct master *m) {
        char top[512], refused[256], udp[160];
        const uint64_t *n = m->refused;
        struct udp_stats u = {};

        format_top_sources(m, top, sizeof top);
        format_refused(m, refused, sizeof refused);
        udp_format_status(m, udp, sizeof udp);
        if (m->udp.stats)
                udp_stats_read(m, &u);
        log_struct(LOG_NOTICE | LOG_FORCE,
                   LOG_MESSAGE_ID(ECHOD_MID_STATUS),
                   "ACTIVE=%u", master_active(m),
                   "SERVED=%" PRIu64, m->served,
                   "FAILED=%" PRIu64, m->failed,
                   "SOURCES=%zu", m->sources.h.len,
                   "TOP_SOURCES=%s", top,
                   "REFUSED_LIMIT=%" PRIu64, n[REFUSED_LIMIT],
                   "REFUSED_PER_SOURCE=%" PRIu64, n[REFUSED_PER_SOURCE],
                   "REFUSED_RATE=%" PRIu64, n[REFUSED_RATE],
                   "REFUSED_PER_SOURCE_RATE=%" PRIu64, n[REFUSED_PER_SOURCE_RATE],
                   "REFUSED_ACCESS=%" PRIu64, n[REFUSED_ACCESS],
                   "REFUSED_SOURCES_FULL=%" PRIu64, n[REFUSED_SOURCES],
                   "REFUSED_RESOURCES=%" PRIu64, n[REFUSED_RESOURCES],
                   "REFUSED_PROXY_UNTRUSTED=%" PRIu64, n[REFUSED_PROXY_UNTRUSTED],
                   "REFUSED_PROXY_HEADER=%" PRIu64, n[REFUSED_PROXY_HEADER],
                   "REFUSED_PROXY_TIMEOUT=%" PRIu64, n[REFUSED_PROXY_TIMEOUT],
                   "LOG_DROPPED=%" PRIu64, log_dropped(),
                   "LOG_QUEUED=%zu", log_journal_queued(),
                   "REPORTS_IGNORED=%" PRIu64, m->reports_ignored,
                   "UDP_RECEIVED=%" PRIu64, u.received,
                   "UDP_ECHOED=%" PRIu64, u.echoed,
                   "UDP_BYTES_ECHOED=%" PRIu64, u.bytes_echoed,
                   "UDP_SEND_FAILED=%" PRIu64, u.send_failed,
                   "UDP_DROPPED_TRUNCATED=%" PRIu64, u.dropped[UDP_DROP_TRUNCATED],
                   "UDP_DROPPED_DESTINATION=%" PRIu64, u.dropped[UDP_DROP_DESTINATION],
                   "UDP_DROPPED_SOURCE_ADDRESS=%" PRIu64, u.dropped[UDP_DROP_SOURCE_ADDRESS],
                   "UDP_DROPPED_SOURCE_PORT=%" PRIu64, u.dropped[UDP_DROP_SOURCE_PORT],
                   "UDP_DROPPED_ACCESS=%" PRIu64, u.dropped[UDP_DROP_ACCESS],
                   "UDP_DROPPED_SOURCES_FULL=%" PRIu64, u.dropped[UDP_DROP_SOURCES],
                   "UDP_DROPPED_PER_SOURCE_RATE=%" PRIu64, u.dropped[UDP_DROP_RATE_PER_SOURCE],
                   "UDP_DROPPED_RATE=%" PRIu64, u.dropped[UDP_DROP_RATE],
                   "UDP_DROPPED_BYTES=%" PRIu64, u.dropped[UDP_DROP_BYTES],
                   "UDP_WORKER_RESTARTS=%" PRIu64, m->udp.restarts,
                   LOG_MESSAGE("status: %u active, %" PRIu64 " served, %s, %" PRIu64 " workers failed; top sources: %s%s",
                               master_active(m), m->served, refused, m->failed, top[0] ? top : "none", udp));
}

void status_refused(struct master *m, const struct sockaddr_any *peer, const struct listener *l,
                    const struct verdict *v, uint64_t now) {
        status_refused_via(m, peer, NULL, l, v, now);
}

void status_refused_via(struct master *m, const struct sockaddr_any *peer, const struct sockaddr_any *balancer,
                        const struct listener *l, const struct verdict *v, uint64_t now) {
        char host[ADDR_STR_MAX], peer_str[ADDR_STR_MAX], detail[192], note[96] = "";
        char f_proxy[ADDR_STR_MAX + 16] = "", f_proxy_port[32] = "", via[ADDR_STR_MAX + 8] = "";
        uint64_t suppressed;

        m->refused[v->reason]++;
        status_changed(m);
        if (!log_ratelimit_test(&m->refuse_rl[v->reason], now, &suppressed))
                return;

        sockaddr_format_host(peer, host, sizeof host);
        sockaddr_format(peer, peer_str, sizeof peer_str);
        verdict_format(v, m->cfg, detail, sizeof detail);
        if (suppressed > 0)
                snprintf(note, sizeof note, " (%" PRIu64 " similar refusals not logged in the last second)", suppressed);
        if (balancer) {
                char b[ADDR_STR_MAX];
                sockaddr_format_host(balancer, b, sizeof b);
                snprintf(f_proxy, sizeof f_proxy, "PROXY_ADDR=%s", b);
                snprintf(f_proxy_port, sizeof f_proxy_port, "PROXY_PORT=%u", sockaddr_port(balancer));
                sockaddr_format(balancer, b, sizeof b);
                snprintf(via, sizeof via, " via %s", b);
        }
        log_struct(LOG_WARNING,
                   LOG_MESSAGE_ID(ECHOD_MID_CONN_REFUSED),
                   "REMOTE_ADDR=%s", host,
                   "REMOTE_PORT=%u", sockaddr_port(peer),
                   "LOCAL_PORT=%u", sockaddr_port(&l->addr),
                   "CLOSE_REASON=%s", refusal_to_string(v->reason),
                   "SUPPRESSED=%" PRIu64, suppressed,
                   "%s", f_proxy,
                   "%s", f_proxy_port,
                   LOG_MESSAGE("refused connection from %s%s: %s, closing it%s", peer_str, via, detail, note));
}

static bool summary_due(const struct log_ratelimit *rl, uint64_t now) {
        return rl->suppressed > 0 && now - rl->window_start >= rl->interval_usec;
}

void status_conn_record(struct master *m, const struct conn_record *r, enum close_reason reason, uint64_t now) {
        const struct config *c = m->cfg;

        if (c->log_rate > 0 && !gcra_allow(&m->log_tat, now, c->log_rate, c->log_rate_burst))
                ;               /* over budget */
        else if (log_conn_record(r))
                return;
        /* An open record is not the connection's account: its end is. */
        if (r->open)
                return;
        m->unlogged[reason]++;
        m->unlogged_bytes[reason] += r->bytes;
        if (!m->summary_due)
                m->summary_due = now + SUMMARY_INTERVAL_USEC;
}

void status_flush_summary(struct master *m, uint64_t now, bool force) {
        char by_reason[512] = "", fields[_CLOSE_REASON_MAX][48];
        uint64_t conns = 0, bytes = 0;
        size_t off = 0;

        if (!m->summary_due || (!force && now < m->summary_due))
                return;
        for (int i = 0; i < _CLOSE_REASON_MAX; i++) {
                fields[i][0] = '\0';
                if (m->unlogged[i] == 0)
                        continue;
                conns += m->unlogged[i];
                bytes += m->unlogged_bytes[i];
                /* UNLOGGED_EOF=12, UNLOGGED_IDLE_TIMEOUT=3, ... */
                int k = snprintf(fields[i], sizeof fields[i], "UNLOGGED_%s=%" PRIu64, close_reason_to_string(i),
                                 m->unlogged[i]);
                for (int j = (int) strlen("UNLOGGED_"); j < k && fields[i][j] != '='; j++)
                        fields[i][j] = fields[i][j] == '-' ? '_' : (char) toupper((unsigned char) fields[i][j]);
                if (off < sizeof by_reason)
                        off += (size_t) snprintf(by_reason + off, sizeof by_reason - off, "%s%s %" PRIu64,
                                                 off ? ", " : "", close_reason_to_string(i), m->unlogged[i]);
        }
        _Static_assert(_CLOSE_REASON_MAX == 9, "one field per reason below");
        if (!log_struct(LOG_NOTICE,
                        LOG_MESSAGE_ID(ECHOD_MID_CONN_SUMMARY),
                        "CONNECTIONS=%" PRIu64, conns,
                        "BYTES=%" PRIu64, bytes,
                        "LOG_DROPPED=%" PRIu64, log_dropped(),
                        "%s", fields[0], "%s", fields[1], "%s", fields[2], "%s", fields[3], "%s", fields[4],
                        "%s", fields[5], "%s", fields[6], "%s", fields[7], "%s", fields[8],
                        LOG_MESSAGE("%" PRIu64 " connections (%" PRIu64 " bytes echoed) ended without a record of "
                                    "their own (log_rate, or the journal was full): %s",
                                    conns, bytes, by_reason))) {
                /* The journal is still full: say it all next time. */
                m->summary_due = now + SUMMARY_INTERVAL_USEC;
                return;
        }
        memset(m->unlogged, 0, sizeof m->unlogged);
        memset(m->unlogged_bytes, 0, sizeof m->unlogged_bytes);
        m->summary_due = 0;
}

void status_flush_refusals(struct master *m, uint64_t now) {
        status_flush_summary(m, now, false);
        for (int i = 0; i < _REFUSED_MAX; i++) {
                struct log_ratelimit *rl = &m->refuse_rl[i];
                if (!summary_due(rl, now))
                        continue;
                log_struct(LOG_WARNING,
                           LOG_MESSAGE_ID(ECHOD_MID_CONN_REFUSED),
                           "CLOSE_REASON=%s", refusal_to_string(i),
                           "SUPPRESSED=%" PRIu64, rl->suppressed,
                           LOG_MESSAGE("%" PRIu64 " more connections refused (%s) and not logged individually",
                                       rl->suppressed, refusal_to_string(i)));
                rl->suppressed = 0;
                rl->used = false;
        }
}

uint64_t status_next_flush(const struct master *m) {
        uint64_t next = m->summary_due ? m->summary_due : USEC_INFINITY;

        for (int i = 0; i < _REFUSED_MAX; i++) {
                const struct log_ratelimit *rl = &m->refuse_rl[i];
                if (rl->suppressed > 0 && rl->window_start + rl->interval_usec < next)
                        next = rl->window_start + rl->interval_usec;
        }
        return next;
}

void status_resource_problem(struct master *m, uint64_t now, int err, const char *what) {
        uint64_t suppressed;

        if (!log_ratelimit_test(&m->resource_rl, now, &suppressed))
                return;
        errno = err;
        log_struct(LOG_ERR,
                   LOG_MESSAGE_ID(ECHOD_MID_RESOURCE),
                   "ERRNO=%d", err,
                   "SUPPRESSED=%" PRIu64, suppressed,
                   LOG_MESSAGE("%s: %m; not accepting for 100 ms (%" PRIu64 " similar errors since the last message)",
                               what, suppressed));
}

static void warn_limit(const char *limit, const char *text) {
        log_struct(LOG_WARNING, LOG_MESSAGE_ID(ECHOD_MID_LIMIT_WARNING),
                   "LIMIT=%s", limit,
                   LOG_MESSAGE("%s", text));
}

/* cgroup v2 pids.max of our own cgroup (systemd's TasksMax=), or 0 = none. */
static unsigned long long cgroup_pids_max(void) {
        char line[512], path[600], val[32];
        unsigned long long max = 0;
        FILE *f = fopen("/proc/self/cgroup", "re");

        if (!f)
                return 0;
        while (fgets(line, sizeof line, f)) {
                if (strncmp(line, "0::", 3) != 0)
                        continue;
                line[strcspn(line, "\n")] = '\0';
                snprintf(path, sizeof path, "/sys/fs/cgroup%s/pids.max", line + 3);
                FILE *p = fopen(path, "re");
                if (p && fgets(val, sizeof val, p) && strncmp(val, "max", 3) != 0)
                        max = strtoull(val, NULL, 10);
                if (p)
                        fclose(p);
        }
        fclose(f);
        return max;
}

void status_warn_limits(const struct config *c) {
        unsigned need = c->max_connections + 2;         /* workers, the master, a margin */
        /* The master holds listeners and a few descriptors, never the connections. */
        unsigned need_fds = (unsigned) c->n_listen + 16;
        unsigned long long pids_max;
        struct rlimit rl;
        char text[256];

        if (c->max_connections == 0)
                return;
        if (getrlimit(RLIMIT_NPROC, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && geteuid() != 0 &&
            rl.rlim_cur < need) {
                snprintf(text, sizeof text,
                         "RLIMIT_NPROC is %llu, too low for max_connections %u: raise it to at least %u (LimitNPROC=)",
                         (unsigned long long) rl.rlim_cur, c->max_connections, need);
                warn_limit("RLIMIT_NPROC", text);
        }
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need_fds) {
                snprintf(text, sizeof text, "RLIMIT_NOFILE is %llu, too low: raise it to at least %u (LimitNOFILE=)",
                         (unsigned long long) rl.rlim_cur, need_fds);
                warn_limit("RLIMIT_NOFILE", text);
        }
        pids_max = cgroup_pids_max();
        if (pids_max > 0 && pids_max < need) {
                snprintf(text, sizeof text,
                         "the cgroup's pids.max is %llu, too low for max_connections %u: raise it to at least %u (TasksMax=)",
                         pids_max, c->max_connections, need);
                warn_limit("pids.max", text);
        }
}
