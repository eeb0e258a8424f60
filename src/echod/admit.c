/* SPDX-License-Identifier: MIT */
/* The admission decision (see admit.h). */
#include <errno.h>
#include <stdio.h>

#include "admit.h"
#include "macro.h"

static const struct {
        const char *reason;
        const char *field;
} refusal_names[_REFUSED_MAX] = {
        [REFUSED_LIMIT] = { "refused-limit", "REFUSED_LIMIT" },
        [REFUSED_PER_SOURCE] = { "refused-per-source", "REFUSED_PER_SOURCE" },
        [REFUSED_RATE] = { "refused-rate", "REFUSED_RATE" },
        [REFUSED_PER_SOURCE_RATE] = { "refused-per-source-rate", "REFUSED_PER_SOURCE_RATE" },
        [REFUSED_ACCESS] = { "refused-access", "REFUSED_ACCESS" },
        [REFUSED_SOURCES] = { "refused-sources-full", "REFUSED_SOURCES_FULL" },
        [REFUSED_RESOURCES] = { "refused-resources", "REFUSED_RESOURCES" },
        [REFUSED_PROXY_UNTRUSTED] = { "refused-proxy-untrusted", "REFUSED_PROXY_UNTRUSTED" },
        [REFUSED_PROXY_HEADER] = { "refused-proxy-header", "REFUSED_PROXY_HEADER" },
        [REFUSED_PROXY_TIMEOUT] = { "refused-proxy-timeout", "REFUSED_PROXY_TIMEOUT" },
};

const char *refusal_to_string(enum refusal r) {
        return r < _REFUSED_MAX ? refusal_names[r].reason : "refused-unknown";
}

const char *refusal_to_field(enum refusal r) {
        return r < _REFUSED_MAX ? refusal_names[r].field : "REFUSED_UNKNOWN";
}

const struct acl_entry *acl_check(const struct config *c, const struct netaddr *addr, bool *ret_allowed) {
        const struct acl_entry *best = NULL;

        for (size_t i = 0; i < c->n_acl; i++) {
                const struct acl_entry *e = &c->acl[i];
                if (!netaddr_contains(&e->net, addr))
                        continue;
                if (!best || e->net.prefixlen > best->net.prefixlen ||
                    (e->net.prefixlen == best->net.prefixlen && !e->allow))
                        best = e;
        }
        if (best)
                *ret_allowed = best->allow;
        else
                *ret_allowed = c->n_allow == 0;
        return best;
}

static bool refuse(struct verdict *v, enum refusal why) {
        v->accepted = false;
        v->reason = why;
        return false;
}

/* max_connections, max_connections_per_source of v->key, and its entry in
 * the sources table (*ret_s, made if needed). */
static bool room_for(const struct config *c, const struct admit_tables *t, struct verdict *v, uint64_t now,
                     struct source **ret_s) {
        struct source *s;
        int r;

        if (c->max_connections > 0 && t->active >= c->max_connections)
                return refuse(v, REFUSED_LIMIT);
        s = sources_get(t->sources, &v->key);
        if (s && c->max_connections_per_source > 0 && s->active >= c->max_connections_per_source)
                return refuse(v, REFUSED_PER_SOURCE);
        if (!s) {
                r = sources_acquire(t->sources, &v->key, now, &s);
                if (r < 0)
                        return refuse(v, r == -ENOSPC ? REFUSED_SOURCES : REFUSED_RESOURCES);
        }
        *ret_s = s;
        return true;
}

bool admit(const struct config *c, const struct admit_tables *t, const struct netaddr *remote,
           uint64_t now, struct verdict *v) {
        struct source *s;
        bool allowed;

        *v = (struct verdict) { .key = sources_key(t->sources, remote) };

        v->rule = acl_check(c, remote, &allowed);
        if (!allowed)
                return refuse(v, REFUSED_ACCESS);
        if (!room_for(c, t, v, now, &s))
                return false;

        /* Both buckets before charging either: a connection refused by one
         * limit costs nothing from the other. */
        if (!gcra_conforms(*t->rate_tat, now, c->rate_limit, c->rate_limit_burst)) {
                sources_release(t->sources, s, now);
                return refuse(v, REFUSED_RATE);
        }
        if (!gcra_conforms(s->tat, now, c->rate_limit_per_source, c->rate_limit_per_source_burst)) {
                sources_release(t->sources, s, now);
                return refuse(v, REFUSED_PER_SOURCE_RATE);
        }
        (void) gcra_allow(t->rate_tat, now, c->rate_limit, c->rate_limit_burst);
        (void) gcra_allow(&s->tat, now, c->rate_limit_per_source, c->rate_limit_per_source_burst);
        s->active++;
        v->accepted = true;
        return true;
}

bool admit_balancer(const struct config *c, const struct admit_tables *t, const struct netaddr *peer,
                    uint64_t now, struct verdict *v) {
        struct source *s;
        bool trusted = false;

        *v = (struct verdict) { .key = sources_key(t->sources, peer) };

        for (size_t i = 0; i < c->n_proxy_trusted && !trusted; i++)
                trusted = netaddr_contains(&c->proxy_trusted[i], peer);
        if (!trusted)
                return refuse(v, REFUSED_PROXY_UNTRUSTED);
        if (!room_for(c, t, v, now, &s))
                return false;
        s->active++;
        v->accepted = true;
        return true;
}

void verdict_format(const struct verdict *v, const struct config *c, char *buf, size_t size) {
        char net[64];

        netaddr_format(&v->key, net, sizeof net);
        switch (v->reason) {
        case REFUSED_ACCESS:
                if (v->rule) {
                        char rule[64];
                        netaddr_format(&v->rule->net, rule, sizeof rule);
                        snprintf(buf, size, "denied by '%s %s' (%s:%u)",
                                 v->rule->allow ? "allow" : "deny", rule, c->path, v->rule->line);
                } else
                        snprintf(buf, size, "not in any allow network (%s)", c->path);
                break;
        case REFUSED_LIMIT:
                snprintf(buf, size, "max_connections (%u) reached", c->max_connections);
                break;
        case REFUSED_PER_SOURCE:
                snprintf(buf, size, "max_connections_per_source (%u) reached for %s",
                         c->max_connections_per_source, net);
                break;
        case REFUSED_SOURCES:
                snprintf(buf, size, "source table full (max_sources %u)", c->max_sources);
                break;
        case REFUSED_RATE:
                snprintf(buf, size, "rate_limit (%u/s, burst %u) exceeded", c->rate_limit, c->rate_limit_burst);
                break;
        case REFUSED_PER_SOURCE_RATE:
                snprintf(buf, size, "rate_limit_per_source (%u/s, burst %u) exceeded by %s",
                         c->rate_limit_per_source, c->rate_limit_per_source_burst, net);
                break;
        case REFUSED_RESOURCES:
                snprintf(buf, size, "%s", v->what ? v->what : "out of memory");
                break;
        case REFUSED_PROXY_UNTRUSTED:
                snprintf(buf, size, "a proxy listener's connection not from proxy_trusted (%s)", c->path);
                break;
        case REFUSED_PROXY_HEADER:
                snprintf(buf, size, "invalid PROXY header: %s", v->what ? v->what : "none");
                break;
        case REFUSED_PROXY_TIMEOUT:
                snprintf(buf, size, "no whole PROXY header within proxy_timeout");
                break;
        default:
                snprintf(buf, size, "%s", refusal_to_string(v->reason));
                break;
        }
}
