/* SPDX-License-Identifier: MIT */
/*
 * The configuration file: parsed with libconfuse into raw values with their
 * true line numbers, then validated in a separate pass into struct config.
 * Every problem is reported as "FILE:LINE: key: message".
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "addr.h"
#include "log.h"

#define CONFIG_MAX_FILE_SIZE (1024 * 1024)

struct listen_entry {
        char *text;
        struct sockaddr_any addr;
};

struct acl_entry {
        struct netaddr net;
        bool allow;
        unsigned line;
};

struct config {
        char *path;

        struct listen_entry *listen;
        size_t n_listen;
        unsigned backlog;
        bool reuse_port;                        /* SO_REUSEPORT on the listeners echod binds */

        unsigned max_connections;               /* 0 = unlimited */
        unsigned max_connections_per_source;    /* 0 = unlimited */
        unsigned source_prefix_v4;
        unsigned source_prefix_v6;
        unsigned max_sources;

        unsigned rate_limit;                    /* per second, 0 = off */
        unsigned rate_limit_burst;
        unsigned rate_limit_per_source;
        unsigned rate_limit_per_source_burst;

        uint64_t idle_timeout_usec;             /* 0 = none */
        uint64_t session_timeout_usec;          /* 0 = none */
        uint64_t shutdown_timeout_usec;
        uint64_t max_bytes;                     /* 0 = none */

        struct acl_entry *acl;                  /* allow and deny entries */
        size_t n_acl;
        size_t n_allow;

        char *user;                             /* NULL = not set */
        char *group;

        char *metrics_file;                     /* NULL = no metrics */
        uint64_t metrics_interval_usec;

        int log_level;
        enum log_connections log_connections;
        unsigned log_rate;                      /* connection records per second, 0 = no budget */
        unsigned log_rate_burst;
        bool log_payload;

        /* UDP echo (udp.c); an empty listen_udp turns it off. */
        struct listen_entry *listen_udp;
        size_t n_listen_udp;
        struct port_range *udp_deny_source_ports;
        size_t n_udp_deny_source_ports;
        unsigned udp_rate_limit_per_source;     /* datagrams per second, 0 = off */
        unsigned udp_rate_limit_per_source_burst;
        unsigned udp_rate_limit;                /* datagrams per second, 0 = off */
        unsigned udp_rate_limit_burst;
        uint64_t udp_max_bytes_per_second;      /* reply bytes, 0 = off */

        struct listen_entry *proxy_listen;      /* every connection begins with a PROXY header */
        size_t n_proxy_listen;
        struct netaddr *proxy_trusted;          /* the balancers allowed to send one */
        size_t n_proxy_trusted;
        uint64_t proxy_timeout_usec;            /* for the whole header */
};

/* A range of UDP source ports, first..last inclusive. */
struct port_range {
        uint16_t first, last;
};

/* A growing list of error lines. */
struct strv {
        char **items;
        size_t n;
};

void strv_clear(struct strv *v);
int strv_appendf(struct strv *v, const char *format, ...) __attribute__((format(printf, 2, 3)));

/*
 * Reads, parses and validates path. On success *ret is a new config and 0 is
 * returned. On failure every problem is appended to errors and -EINVAL
 * (invalid content) or -errno (file unreadable) is returned.
 */
int config_load(const char *path, struct config **ret, struct strv *errors);

/* The same for text already in memory; path is only used in messages. */
int config_load_text(const char *path, const char *text, size_t size,
                     struct config **ret, struct strv *errors);

struct config *config_free(struct config *c);
static inline void config_freep(struct config **c) {
        config_free(*c);
}
#define _cleanup_config_ __attribute__((cleanup(config_freep)))

/* Writes the effective configuration, defaults included, in config syntax. */
void config_dump(const struct config *c, FILE *f);

/* Replaces comments by spaces, keeping every newline and string, so that
 * libconfuse counts lines right. Exposed for the unit tests. */
void config_blank_comments(char *text, size_t size);
