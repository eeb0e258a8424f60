/* SPDX-License-Identifier: MIT */
/* The metrics file (see metrics.h). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "echod-config.h"
#include "fd-util.h"
#include "master.h"
#include "log.h"
#include "metrics.h"
#include "parse.h"

#define ERROR_INTERVAL_USEC (60 * USEC_PER_SEC)

struct out {
        char *buf;
        size_t size, len;
        bool overflow;
};

static void __attribute__((format(printf, 2, 3))) out_printf(struct out *o, const char *fmt, ...) {
        va_list ap;
        int n;

        if (o->overflow)
                return;
        va_start(ap, fmt);
        n = vsnprintf(o->buf + o->len, o->size - o->len, fmt, ap);
        va_end(ap);
        if (n < 0 || (size_t) n >= o->size - o->len) {
                o->overflow = true;
                return;
        }
        o->len += (size_t) n;
}

static void out_header(struct out *o, const char *name, const char *type, const char *help) {
        out_printf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* "refused-limit" -> "limit": the metric's name already says refused. */
static const char *refusal_label(enum refusal r) {
        const char *s = refusal_to_string(r);

        return strncmp(s, "refused-", 8) == 0 ? s + 8 : s;
}

int metrics_format(const struct master *m, char *buf, size_t size) {
        struct out o = { .buf = buf, .size = size };

        out_header(&o, "echod_connections_total", "counter",
                   "Connections that ended, by close reason (killed, failed: the worker died or exited abnormally).");
        for (int r = 0; r < _CLOSE_REASON_MAX; r++)
                out_printf(&o, "echod_connections_total{reason=\"%s\"} %" PRIu64 "\n",
                           close_reason_to_string((enum close_reason) r), m->closed[r]);

        out_header(&o, "echod_connections_active", "gauge", "Connections being served now, one worker each.");
        out_printf(&o, "echod_connections_active %u\n", master_active(m));

        out_header(&o, "echod_bytes_echoed_total", "counter", "Bytes echoed back by connections that ended.");
        out_printf(&o, "echod_bytes_echoed_total %" PRIu64 "\n", m->bytes_echoed);

        out_header(&o, "echod_refused_total", "counter",
                   "Connections refused (accepted and closed at once), by reason.");
        for (int r = 0; r < _REFUSED_MAX; r++)
                out_printf(&o, "echod_refused_total{reason=\"%s\"} %" PRIu64 "\n",
                           refusal_label((enum refusal) r), m->refused[r]);

        out_header(&o, "echod_log_records_dropped_total", "counter",
                   "Log records the journal socket did not take (it was full); those held back by log_rate are in the summary records.");
        out_printf(&o, "echod_log_records_dropped_total %" PRIu64 "\n", log_dropped());

        out_header(&o, "echod_workers_failed_total", "counter",
                   "Workers that exited with an unexpected status or were killed by a signal.");
        out_printf(&o, "echod_workers_failed_total %" PRIu64 "\n", m->failed);

        out_header(&o, "echod_reloads_total", "counter", "Configuration reloads (SIGHUP), by result.");
        out_printf(&o, "echod_reloads_total{result=\"ok\"} %" PRIu64 "\n", m->reloads_ok);
        out_printf(&o, "echod_reloads_total{result=\"failed\"} %" PRIu64 "\n", m->reloads_failed);

        out_header(&o, "echod_upgrades_failed_total", "counter",
                   "In-place upgrades (SIGUSR2) that left this image running (this image's count).");
        out_printf(&o, "echod_upgrades_failed_total %" PRIu64 "\n", m->upgrades_failed);

        struct udp_stats us;
        udp_stats_read(m, &us);
        out_header(&o, "echod_udp_datagrams_received_total", "counter", "UDP datagrams the UDP worker read.");
        out_printf(&o, "echod_udp_datagrams_received_total %" PRIu64 "\n", us.received);
        out_header(&o, "echod_udp_datagrams_echoed_total", "counter", "UDP datagrams echoed (the kernel took the reply).");
        out_printf(&o, "echod_udp_datagrams_echoed_total %" PRIu64 "\n", us.echoed);
        out_header(&o, "echod_udp_bytes_echoed_total", "counter", "Bytes of the UDP replies.");
        out_printf(&o, "echod_udp_bytes_echoed_total %" PRIu64 "\n", us.bytes_echoed);
        out_header(&o, "echod_udp_dropped_total", "counter",
                   "UDP datagrams dropped without a reply, by reason (send-failed: the kernel refused the reply).");
        for (int v = UDP_ECHO + 1; v < _UDP_VERDICT_MAX; v++)
                out_printf(&o, "echod_udp_dropped_total{reason=\"%s\"} %" PRIu64 "\n",
                           udp_verdict_to_string((enum udp_verdict) v), us.dropped[v]);
        out_printf(&o, "echod_udp_dropped_total{reason=\"send-failed\"} %" PRIu64 "\n", us.send_failed);
        out_header(&o, "echod_udp_worker_restarts_total", "counter", "Times the UDP worker died and was started again.");
        out_printf(&o, "echod_udp_worker_restarts_total %" PRIu64 "\n", m->udp.restarts);

        out_header(&o, "echod_start_time_seconds", "gauge", "When the master started, in seconds since the Unix epoch.");
        out_printf(&o, "echod_start_time_seconds %" PRIu64 ".%06" PRIu64 "\n",
                   m->start_realtime / USEC_PER_SEC, m->start_realtime % USEC_PER_SEC);

        out_header(&o, "echod_build_info", "gauge", "Always 1; the labels say which echod this is.");
        out_printf(&o, "echod_build_info{version=\"%s\"} 1\n", ECHOD_VERSION);

        return o.overflow ? -ENOBUFS : (int) o.len;
}

/*
 * node-exporter reads the file whenever it is scraped, so it must never see
 * a half-written one: the text goes to PATH.tmp in the same directory (the
 * collector reads only *.prom), is synced, and is renamed over PATH. The
 * directory is not synced: a rename lost in a crash is redone within one
 * interval.
 */
static int write_atomic(const char *path, const char *text, size_t len) {
        char tmp[PATH_MAX];
        int fd, r;

        if ((size_t) snprintf(tmp, sizeof tmp, "%s.tmp", path) >= sizeof tmp)
                return -ENAMETOOLONG;
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd < 0)
                return -errno;
        /* The unit's UMask=0077 would hide it from node-exporter's user. */
        r = fchmod(fd, 0644) < 0 ? -errno : 0;
        if (r >= 0)
                r = loop_write(fd, text, len);
        if (r >= 0 && fsync(fd) < 0)
                r = -errno;
        if (close(fd) < 0 && r >= 0 && errno != EINTR)
                r = -errno;
        if (r >= 0 && rename(tmp, path) < 0)
                r = -errno;
        if (r < 0)
                (void) unlink(tmp);
        return r;
}

void metrics_write(struct master *m, uint64_t now) {
        const char *path = m->cfg->metrics_file;
        char buf[8192], interval[32];
        uint64_t suppressed;
        int r;

        if (!path)
                return;
        m->metrics_due = now + m->cfg->metrics_interval_usec;
        m->metrics_rl.interval_usec = ERROR_INTERVAL_USEC;
        r = metrics_format(m, buf, sizeof buf);
        if (r >= 0)
                r = write_atomic(path, buf, (size_t) r);
        if (r >= 0 || !log_ratelimit_test(&m->metrics_rl, now, &suppressed))
                return;
        format_duration(interval, sizeof interval, m->cfg->metrics_interval_usec);
        log_warning_errno(r, "cannot write metrics file %s: %m; still serving, trying again every %s "
                          "(%" PRIu64 " similar errors since the last message)", path, interval, suppressed);
}

uint64_t metrics_next(const struct master *m) {
        return m->cfg->metrics_file ? m->metrics_due : USEC_INFINITY;
}
