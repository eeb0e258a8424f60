/* SPDX-License-Identifier: MIT */
/* The drop decision for one UDP datagram (see udp-filter.h). */
#include <errno.h>
#include <string.h>

#include "admit.h"
#include "macro.h"
#include "udp-filter.h"

static const struct {
        const char *word;
        const char *field;
} verdict_names[_UDP_VERDICT_MAX] = {
        [UDP_ECHO] = { "echoed", "UDP_ECHOED" },
        [UDP_DROP_TRUNCATED] = { "truncated", "UDP_DROPPED_TRUNCATED" },
        [UDP_DROP_DESTINATION] = { "destination", "UDP_DROPPED_DESTINATION" },
        [UDP_DROP_SOURCE_ADDRESS] = { "source-address", "UDP_DROPPED_SOURCE_ADDRESS" },
        [UDP_DROP_SOURCE_PORT] = { "source-port", "UDP_DROPPED_SOURCE_PORT" },
        [UDP_DROP_ACCESS] = { "access", "UDP_DROPPED_ACCESS" },
        [UDP_DROP_SOURCES] = { "sources-full", "UDP_DROPPED_SOURCES_FULL" },
        [UDP_DROP_RATE_PER_SOURCE] = { "per-source-rate", "UDP_DROPPED_PER_SOURCE_RATE" },
        [UDP_DROP_RATE] = { "rate", "UDP_DROPPED_RATE" },
        [UDP_DROP_BYTES] = { "bytes", "UDP_DROPPED_BYTES" },
};

const char *udp_verdict_to_string(enum udp_verdict v) {
        return v < _UDP_VERDICT_MAX ? verdict_names[v].word : "unknown";
}

const char *udp_verdict_to_field(enum udp_verdict v) {
        return v < _UDP_VERDICT_MAX ? verdict_names[v].field : "UDP_UNKNOWN";
}

int udp_filter_init(struct udp_filter_state *st, const struct config *c) {
        memset(st, 0, sizeof *st);
        return sources_init(&st->sources, c->max_sources, c->source_prefix_v4, c->source_prefix_v6);
}

void udp_filter_done(struct udp_filter_state *st) {
        sources_done(&st->sources);
}

void udp_fold_address(struct netaddr *ret, const struct sockaddr_any *a) {
        struct sockaddr_any copy = *a;

        sockaddr_unmap(&copy);
        netaddr_from_sockaddr(ret, &copy, 32, 128);
}

static bool in_net4(const struct netaddr *a, uint8_t first, unsigned prefixlen) {
        const struct netaddr net = { .family = AF_INET, .prefixlen = (uint8_t) prefixlen, .bytes = { first } };

        return netaddr_contains(&net, a);
}

static bool is_loopback(const struct netaddr *a) {
        static const uint8_t one6[16] = { [15] = 1 };

        if (a->family == AF_INET)
                return in_net4(a, 127, 8);
        return memcmp(a->bytes, one6, 16) == 0;
}

bool udp_destination_is_group(const struct netaddr *dst) {
        if (dst->family == AF_INET)
                return in_net4(dst, 224, 4) ||
                       (dst->bytes[0] == 255 && dst->bytes[1] == 255 && dst->bytes[2] == 255 && dst->bytes[3] == 255);
        return dst->bytes[0] == 0xff;
}

bool udp_source_is_bogus(const struct netaddr *src, const struct netaddr *dst) {
        static const uint8_t zero6[16];

        if (is_loopback(src))
                return !is_loopback(dst);
        if (src->family == AF_INET)
                /* 240.0.0.0/4 holds 255.255.255.255 */
                return in_net4(src, 0, 8) || in_net4(src, 224, 4) || in_net4(src, 240, 4);
        return memcmp(src->bytes, zero6, 16) == 0 || src->bytes[0] == 0xff;
}

bool udp_port_denied(const struct config *c, uint16_t port) {
        for (size_t i = 0; i < c->n_udp_deny_source_ports; i++)
                if (port >= c->udp_deny_source_ports[i].first && port <= c->udp_deny_source_ports[i].last)
                        return true;
        return false;
}

/* The byte budget: GCRA weighted by the datagram's size, in nanoseconds
 * (10M a second is a tenth of a µs per byte), with one second's worth of
 * bytes as its burst. */
#define NSEC_PER_SEC UINT64_C(1000000000)

static bool bytes_conform(uint64_t tat, uint64_t now_nsec, uint64_t rate, size_t size, uint64_t *ret_next) {
        uint64_t cost = (uint64_t) size * NSEC_PER_SEC / rate;

        *ret_next = (tat > now_nsec ? tat : now_nsec) + cost;
        return *ret_next - now_nsec <= NSEC_PER_SEC;
}

enum udp_verdict udp_filter(const struct config *c, struct udp_filter_state *st,
                            const struct udp_datagram *d, uint64_t now) {
        struct source *s = NULL;
        uint64_t next_bytes = 0, now_nsec = now * 1000;
        bool allowed;

        if (d->truncated)
                return UDP_DROP_TRUNCATED;
        if (d->destination_broadcast || udp_destination_is_group(&d->destination))
                return UDP_DROP_DESTINATION;
        if (udp_source_is_bogus(&d->source, &d->destination))
                return UDP_DROP_SOURCE_ADDRESS;
        if (udp_port_denied(c, d->source_port))
                return UDP_DROP_SOURCE_PORT;
        (void) acl_check(c, &d->source, &allowed);
        if (!allowed)
                return UDP_DROP_ACCESS;

        if (c->udp_rate_limit_per_source > 0) {
                struct netaddr key = sources_key(&st->sources, &d->source);

                s = sources_get(&st->sources, &key);
                if (!s && sources_acquire(&st->sources, &key, now, &s) < 0)
                        return UDP_DROP_SOURCES;
                if (!gcra_conforms(s->tat, now, c->udp_rate_limit_per_source, c->udp_rate_limit_per_source_burst)) {
                        sources_release(&st->sources, s, now);
                        return UDP_DROP_RATE_PER_SOURCE;
                }
        }
        if (!gcra_conforms(st->rate_tat, now, c->udp_rate_limit, c->udp_rate_limit_burst)) {
                if (s)
                        sources_release(&st->sources, s, now);
                return UDP_DROP_RATE;
        }
        if (c->udp_max_bytes_per_second > 0 &&
            !bytes_conform(st->bytes_tat_nsec, now_nsec, c->udp_max_bytes_per_second, d->size, &next_bytes)) {
                if (s)
                        sources_release(&st->sources, s, now);
                return UDP_DROP_BYTES;
        }

        if (s)
                (void) gcra_allow(&s->tat, now, c->udp_rate_limit_per_source, c->udp_rate_limit_per_source_burst);
        (void) gcra_allow(&st->rate_tat, now, c->udp_rate_limit, c->udp_rate_limit_burst);
        if (c->udp_max_bytes_per_second > 0)
                st->bytes_tat_nsec = next_bytes;
        return UDP_ECHO;
}
