/* SPDX-License-Identifier: MIT */
/*
 * The admission decision: whether a new connection is served, or why not.
 * Pure policy: it reads the configuration and the tables and updates the
 * tables (the source's count and both rate buckets when a connection is
 * accepted), but does no I/O, logs nothing and reads no clock: the master
 * gathers the inputs and carries out the verdict.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "config.h"
#include "sources.h"

/* In the order of the status record's REFUSED_* fields. */
enum refusal {
        REFUSED_LIMIT,
        REFUSED_PER_SOURCE,
        REFUSED_RATE,
        REFUSED_PER_SOURCE_RATE,
        REFUSED_ACCESS,
        REFUSED_SOURCES,
        REFUSED_RESOURCES,              /* out of memory, or (not from admit()) a failed fork */
        REFUSED_PROXY_UNTRUSTED,        /* to a proxy listener, not from proxy_trusted */
        REFUSED_PROXY_HEADER,           /* not from admit(): an invalid PROXY header, or none */
        REFUSED_PROXY_TIMEOUT,          /* not from admit(): no whole header within proxy_timeout */
        _REFUSED_MAX,
};

/* "refused-limit", ...: the CLOSE_REASON= of a refusal. */
const char *refusal_to_string(enum refusal r);
/* "REFUSED_LIMIT", ...: its field in the status record. */
const char *refusal_to_field(enum refusal r);

/* The state the decision reads, and on acceptance charges. */
struct admit_tables {
        unsigned active;                /* workers running */
        struct source_table *sources;
        uint64_t *rate_tat;             /* the global rate bucket */
};

struct verdict {
        bool accepted;
        enum refusal reason;            /* when refused */
        const struct acl_entry *rule;   /* REFUSED_ACCESS: the deciding rule, NULL = in no allow network */
        struct netaddr key;             /* the source key the connection is (or would be) counted under */
        const char *what;               /* REFUSED_RESOURCES: what failed, NULL = memory;
                                         * REFUSED_PROXY_HEADER: what is wrong with it */
};

/*
 * Decides for a connection from remote (a full address) at time now. The
 * checks, in order: access list, max_connections, max_connections_per_source,
 * a full sources table, rate_limit, rate_limit_per_source. Both rate buckets
 * are checked before either is charged. When accepted, the connection is
 * counted in its source's entry under v->key: release it with
 * sources_put(t->sources, &v->key, ...) when it ends. Returns v->accepted.
 */
bool admit(const struct config *c, const struct admit_tables *t, const struct netaddr *remote,
           uint64_t now, struct verdict *ret);

/*
 * Decides for a connection to a proxy listener from peer (the balancer),
 * before a byte of it is read: peer must be in proxy_trusted, and while
 * its header is awaited the connection counts toward max_connections and
 * toward max_connections_per_source under peer's own key. The access list
 * and the rates are not checked here: they apply to the client the header
 * names, in the admit() that follows it. When accepted, counted under
 * v->key as admit() does. Returns v->accepted.
 */
bool admit_balancer(const struct config *c, const struct admit_tables *t, const struct netaddr *peer,
                    uint64_t now, struct verdict *ret);

/* The entry that decides for addr (longest prefix; deny wins a tie), or NULL
 * when none matches. *ret_allowed says whether addr may connect. */
const struct acl_entry *acl_check(const struct config *c, const struct netaddr *addr, bool *ret_allowed);

/* Says why v refused, for the log: "max_connections (512) reached", ... */
void verdict_format(const struct verdict *v, const struct config *c, char *buf, size_t size);
