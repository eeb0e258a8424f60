/* SPDX-License-Identifier: MIT */
/*
 * Config file parsing (libconfuse) and validation.
 *
 * Every option is declared as a libconfuse "pointer" option whose parse
 * callback keeps the raw text together with the line it was found on; all
 * type checking happens afterwards in our own validation pass, so that every
 * message names the file, the true line and the key, and so that an empty
 * value (an unset ${VAR}) is an error instead of a silent 0.
 */
#include <confuse.h>
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <inttypes.h>

#include "config.h"
#include "log.h"
#include "fd-util.h"
#include "parse.h"

/* A raw value and where it came from. */
struct cval {
        char *text;
        int line;
};

struct load_ctx {
        const char *path;
        struct strv *errors;
        bool failed;
};

/* libconfuse calls our error function without a user pointer; parsing is
 * single-threaded and not reentrant, so the context lives here meanwhile. */
static struct load_ctx *current_ctx;

void strv_clear(struct strv *v) {
        for (size_t i = 0; i < v->n; i++)
                free(v->items[i]);
        free(v->items);
        v->items = NULL;
        v->n = 0;
}

int strv_appendf(struct strv *v, const char *format, ...) {
        char *s = NULL, **items;
        va_list ap;
        int r;

        va_start(ap, format);
        r = vasprintf(&s, format, ap);
        va_end(ap);
        if (r < 0)
                return -ENOMEM;
        items = realloc(v->items, (v->n + 1) * sizeof *items);
        if (!items) {
                free(s);
                return -ENOMEM;
        }
        items[v->n++] = s;
        v->items = items;
        return 0;
}

static void cval_free(void *p) {
        struct cval *v = p;

        if (v) {
                free(v->text);
                free(v);
        }
}

static int cval_parse(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result) {
        struct cval *v = calloc(1, sizeof *v);

        if (!v)
                return -1;
        v->text = strdup(value ? value : "");
        if (!v->text) {
                free(v);
                return -1;
        }
        v->line = cfg->line;
        *(void **) result = v;
        return 0;
}

/* libconfuse hands us its own format strings. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
static void error_func(cfg_t *cfg, const char *fmt, va_list ap) {
        char msg[1024];

        vsnprintf(msg, sizeof msg, fmt, ap);
        if (current_ctx) {
                strv_appendf(current_ctx->errors, "%s:%d: %s", current_ctx->path, cfg->line, msg);
                current_ctx->failed = true;
        }
}
#pragma GCC diagnostic pop

#define OPT(name)      CFG_PTR_CB(name, 0, CFGF_NODEFAULT, cval_parse, cval_free)
#define OPT_LIST(name) CFG_PTR_LIST_CB(name, 0, CFGF_NODEFAULT, cval_parse, cval_free)

static cfg_opt_t options[] = {
        OPT_LIST("listen"),
        OPT("backlog"),
        OPT("reuse_port"),
        OPT("max_connections"),
        OPT("max_connections_per_source"),
        OPT("source_prefix_v4"),
        OPT("source_prefix_v6"),
        OPT("max_sources"),
        OPT("rate_limit"),
        OPT("rate_limit_burst"),
        OPT("rate_limit_per_source"),
        OPT("rate_limit_per_source_burst"),
        OPT("idle_timeout"),
        OPT("session_timeout"),
        OPT("shutdown_timeout"),
        OPT("max_bytes"),
        OPT_LIST("allow"),
        OPT_LIST("deny"),
        OPT("user"),
        OPT("group"),
        OPT("log_level"),
        OPT("log_connections"),
        OPT("log_rate"),
        OPT("log_rate_burst"),
        OPT("log_payload"),
        OPT("metrics_file"),
        OPT("metrics_interval"),
        OPT_LIST("listen_udp"),
        OPT_LIST("udp_deny_source_ports"),
        OPT("udp_rate_limit_per_source"),
        OPT("udp_rate_limit_per_source_burst"),
        OPT("udp_rate_limit"),
        OPT("udp_rate_limit_burst"),
        OPT("udp_max_bytes_per_second"),
        OPT_LIST("proxy_listen"),
        OPT_LIST("proxy_trusted"),
        OPT("proxy_timeout"),
        CFG_END()
};

/*
 * Blanks out comments ('#' and '//' to the end of the line, and '/' '*' blocks)
 * keeping newlines, because libconfuse 3.3 miscounts lines after comments.
 * Also refuses bytes that libconfuse's lexer mishandles outside strings
 * (NUL, other control characters, bytes >= 0x80). Returns 0, or the line of
 * the first bad byte.
 */
static unsigned prepare_text(char *t, size_t size, unsigned *ret_open_comment) {
        enum { CODE, DQUOTE, SQUOTE, LINE_COMMENT, BLOCK_COMMENT } state = CODE;
        unsigned line = 1, comment_line = 0;

        for (size_t i = 0; i < size; i++) {
                unsigned char c = (unsigned char) t[i];

                if (c == '\0')
                        return line;
                if (c == '\n') {
                        line++;
                        if (state == LINE_COMMENT)
                                state = CODE;
                        continue;
                }
                switch (state) {
                case CODE:
                        if (c == '#' || (c == '/' && i + 1 < size && t[i + 1] == '/')) {
                                state = LINE_COMMENT;
                                t[i] = ' ';
                        } else if (c == '/' && i + 1 < size && t[i + 1] == '*') {
                                state = BLOCK_COMMENT;
                                comment_line = line;
                                t[i] = t[i + 1] = ' ';
                                i++;
                        } else if (c == '"')
                                state = DQUOTE;
                        else if (c == '\'')
                                state = SQUOTE;
                        else if (c >= 0x7f || (c < 0x20 && c != '\t' && c != '\r'))
                                return line;
                        break;
                case DQUOTE:
                        if (c == '\\' && i + 1 < size && t[i + 1] != '\n')
                                i++;
                        else if (c == '"')
                                state = CODE;
                        break;
                case SQUOTE:
                        if (c == '\\' && i + 1 < size && t[i + 1] != '\n')
                                i++;
                        else if (c == '\'')
                                state = CODE;
                        break;
                case LINE_COMMENT:
                        t[i] = ' ';
                        break;
                case BLOCK_COMMENT:
                        if (c == '*' && i + 1 < size && t[i + 1] == '/') {
                                t[i] = t[i + 1] = ' ';
                                i++;
                                state = CODE;
                        } else
                                t[i] = ' ';
                        break;
                }
        }
        /* An unterminated comment would silently swallow the rest of the file. */
        *ret_open_comment = state == BLOCK_COMMENT ? comment_line : 0;
        return 0;
}

void config_blank_comments(char *text, size_t size) {
        unsigned open_comment;

        (void) prepare_text(text, size, &open_comment);
}

/* ---- validation ---- */

struct validator {
        const char *path;
        struct strv *errors;
        cfg_t *cfg;
        bool failed;
};

static void verr(struct validator *v, int line, const char *key, const char *format, ...)
        __attribute__((format(printf, 4, 5)));
static void verr(struct validator *v, int line, const char *key, const char *format, ...) {
        char msg[1024];
        va_list ap;

        va_start(ap, format);
        vsnprintf(msg, sizeof msg, format, ap);
        va_end(ap);
        strv_appendf(v->errors, "%s:%d: %s: %s", v->path, line, key, msg);
        v->failed = true;
}

/* The value of a scalar key, or NULL when it is not set (use the default). */
static const struct cval *get(struct validator *v, const char *key) {
        if (cfg_size(v->cfg, key) == 0)
                return NULL;
        /* A key given twice: the last one wins, as in libconfuse. */
        return cfg_getnptr(v->cfg, key, cfg_size(v->cfg, key) - 1);
}

static bool empty_value(struct validator *v, const struct cval *c, const char *key) {
        if (c->text[0] != '\0')
                return false;
        verr(v, c->line, key, "empty value (an unset ${VARIABLE}?)");
        return true;
}

static void get_uint(struct validator *v, const char *key, unsigned def,
                     unsigned min, unsigned max, const char *zero_means, unsigned *ret) {
        const struct cval *c = get(v, key);
        uint64_t n;

        *ret = def;
        if (!c || empty_value(v, c, key))
                return;
        if (parse_uint64(c->text, &n) < 0 || n < min || n > max) {
                if (zero_means && min == 0)
                        verr(v, c->line, key, "invalid value '%s': expected a whole number from %u to %u (0 = %s)",
                             c->text, min, max, zero_means);
                else
                        verr(v, c->line, key, "invalid value '%s': expected a whole number from %u to %u",
                             c->text, min, max);
                return;
        }
        *ret = (unsigned) n;
}

#define MAX_DURATION_USEC (UINT64_C(365) * 86400 * USEC_PER_SEC)

static void get_duration(struct validator *v, const char *key, uint64_t def_usec,
                         bool zero_ok, uint64_t *ret) {
        const struct cval *c = get(v, key);
        uint64_t usec;

        *ret = def_usec;
        if (!c || empty_value(v, c, key))
                return;
        if (parse_duration(c->text, &usec) < 0 || usec > MAX_DURATION_USEC) {
                verr(v, c->line, key, "invalid duration '%s': expected seconds or a number with s, m, h or d (e.g. 30s, 5m, 2h), at most 365d",
                     c->text);
                return;
        }
        if (usec == 0 && !zero_ok) {
                verr(v, c->line, key, "must be greater than 0");
                return;
        }
        *ret = usec;
}

static void get_bool(struct validator *v, const char *key, bool def, bool *ret) {
        static const char *const yes[] = { "true", "yes", "on" }, *const no[] = { "false", "no", "off" };
        const struct cval *c = get(v, key);

        *ret = def;
        if (!c || empty_value(v, c, key))
                return;
        for (size_t i = 0; i < ARRAY_SIZE(yes); i++) {
                if (strcmp(c->text, yes[i]) == 0) {
                        *ret = true;
                        return;
                }
                if (strcmp(c->text, no[i]) == 0) {
                        *ret = false;
                        return;
                }
        }
        verr(v, c->line, key, "invalid boolean '%s': expected true or false", c->text);
}

/* true and false are the key's old spellings of close and off. */
static void get_log_connections(struct validator *v, enum log_connections *ret) {
        static const char *const close_words[] = { "close", "true", "yes", "on" };
        static const char *const off_words[] = { "off", "false", "no" };
        const char *key = "log_connections";
        const struct cval *c = get(v, key);

        *ret = LOG_CONNECTIONS_CLOSE;
        if (!c || empty_value(v, c, key))
                return;
        for (size_t i = 0; i < ARRAY_SIZE(close_words); i++)
                if (strcmp(c->text, close_words[i]) == 0)
                        return;
        for (size_t i = 0; i < ARRAY_SIZE(off_words); i++)
                if (strcmp(c->text, off_words[i]) == 0) {
                        *ret = LOG_CONNECTIONS_OFF;
                        return;
                }
        if (strcmp(c->text, "all") == 0)
                *ret = LOG_CONNECTIONS_ALL;
        else if (strcmp(c->text, "errors") == 0)
                *ret = LOG_CONNECTIONS_ERRORS;
        else
                verr(v, c->line, key, "invalid value '%s': expected close, all, errors or off", c->text);
}

static char *get_name(struct validator *v, const char *key) {
        const struct cval *c = get(v, key);

        /* "" means not set: that is the documented default. */
        if (!c || c->text[0] == '\0')
                return NULL;
        return strdup(c->text);
}

/* c as a network (ADDRESS or ADDRESS/PREFIX) into *ret; false, with the
 * error said, when it is none. example ends the error message. */
static bool get_network(struct validator *v, const struct cval *c, const char *key, const char *example,
                        struct netaddr *ret) {
        int r = netaddr_parse_cidr(c->text, ret);

        if (r == -EADDRNOTAVAIL) {
                verr(v, c->line, key, "'%s' has address bits set beyond its prefix length; write the network address (e.g. 192.0.2.0/24, not 192.0.2.1/24)",
                     c->text);
                return false;
        }
        if (r < 0) {
                verr(v, c->line, key, "invalid network '%s': expected ADDRESS or ADDRESS/PREFIX%s", c->text, example);
                return false;
        }
        return true;
}

/* The addresses of key into *ret, none of them also in others (n_others);
 * def (or none, when NULL) when key is not set. */
static int validate_listen_list(struct validator *v, const char *key, const char *def,
                                const struct listen_entry *others, size_t n_others,
                                struct listen_entry **ret, size_t *ret_n) {
        unsigned n = cfg_size(v->cfg, key);

        if (n == 0 && !def)
                return 0;
        if (n == 0) {
                *ret = calloc(1, sizeof **ret);
                if (!*ret)
                        return -ENOMEM;
                (*ret)[0].text = strdup(def);
                if (!(*ret)[0].text)
                        return -ENOMEM;
                (void) sockaddr_parse((*ret)[0].text, &(*ret)[0].addr);
                *ret_n = 1;
                return 0;
        }

        *ret = calloc(n, sizeof **ret);
        if (!*ret)
                return -ENOMEM;
        for (unsigned i = 0; i < n; i++) {
                const struct cval *c = cfg_getnptr(v->cfg, key, i);
                struct sockaddr_any a;
                int r;

                if (empty_value(v, c, key))
                        continue;
                r = sockaddr_parse(c->text, &a);
                if (r == -ERANGE) {
                        verr(v, c->line, key, "invalid port in '%s': expected 1 to 65535", c->text);
                        continue;
                }
                if (r < 0) {
                        verr(v, c->line, key, "invalid address '%s': expected ADDR:PORT with a numeric address, e.g. \"0.0.0.0:7\", \"127.0.0.1:7\", \"[::]:7\" or \"[::1]:7\"",
                             c->text);
                        continue;
                }
                if (a.sa.sa_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&a.in6.sin6_addr)) {
                        verr(v, c->line, key, "'%s' is an IPv4-mapped IPv6 address: write it as IPv4 (e.g. \"127.0.0.1:7\")",
                             c->text);
                        continue;
                }
                bool dup = false;
                for (size_t j = 0; j < *ret_n; j++)
                        if (sockaddr_equal(&(*ret)[j].addr, &a))
                                dup = true;
                for (size_t j = 0; j < n_others; j++)
                        if (sockaddr_equal(&others[j].addr, &a))
                                dup = true;
                if (dup) {
                        verr(v, c->line, key, "address '%s' is listed twice", c->text);
                        continue;
                }
                (*ret)[*ret_n].text = strdup(c->text);
                if (!(*ret)[*ret_n].text)
                        return -ENOMEM;
                (*ret)[(*ret_n)++].addr = a;
        }
        return 0;
}

static int validate_listen(struct validator *v, struct config *cfg) {
        /* With proxy listeners only, there is no plain one by default. */
        return validate_listen_list(v, "listen", cfg_size(v->cfg, "proxy_listen") > 0 ? NULL : "[::]:7", NULL, 0,
                                    &cfg->listen, &cfg->n_listen);
}

/* proxy_listen, proxy_trusted (required with it) and proxy_timeout. */
static int validate_proxy(struct validator *v, struct config *cfg) {
        const char *key = "proxy_trusted";
        unsigned n = cfg_size(v->cfg, key);
        int r;

        r = validate_listen_list(v, "proxy_listen", NULL, cfg->listen, cfg->n_listen,
                                 &cfg->proxy_listen, &cfg->n_proxy_listen);
        if (r < 0)
                return r;
        cfg->proxy_trusted = calloc(n + 1, sizeof *cfg->proxy_trusted);
        if (!cfg->proxy_trusted)
                return -ENOMEM;
        for (unsigned i = 0; i < n; i++) {
                const struct cval *c = cfg_getnptr(v->cfg, key, i);
                struct netaddr net;

                if (empty_value(v, c, key))
                        continue;
                if (!get_network(v, c, key, " of the load balancers, e.g. 192.0.2.10 or 10.0.0.0/8", &net))
                        continue;
                cfg->proxy_trusted[cfg->n_proxy_trusted++] = net;
        }
        if (cfg_size(v->cfg, "proxy_listen") > 0 && n == 0)
                verr(v, ((const struct cval *) cfg_getnptr(v->cfg, "proxy_listen", 0))->line, "proxy_listen",
                     "set, but proxy_trusted is empty: list the load balancers' networks there, "
                     "only they may send a PROXY header");
        get_duration(v, "proxy_timeout", 3 * USEC_PER_SEC, false, &cfg->proxy_timeout_usec);
        return 0;
}

static int validate_acl(struct validator *v, struct config *cfg) {
        unsigned na = cfg_size(v->cfg, "allow"), nd = cfg_size(v->cfg, "deny");

        cfg->acl = calloc(na + nd + 1, sizeof *cfg->acl);
        if (!cfg->acl)
                return -ENOMEM;
        for (unsigned i = 0; i < na + nd; i++) {
                bool allow = i < na;
                const char *key = allow ? "allow" : "deny";
                const struct cval *c = cfg_getnptr(v->cfg, key, allow ? i : i - na);
                struct netaddr net;

                if (empty_value(v, c, key))
                        continue;
                if (!get_network(v, c, key, ", e.g. 192.0.2.0/24 or 2001:db8::/32", &net))
                        continue;
                cfg->acl[cfg->n_acl++] = (struct acl_entry) {
                        .net = net,
                        .allow = allow,
                        .line = (unsigned) c->line,
                };
                if (allow)
                        cfg->n_allow++;
        }
        return 0;
}

static const struct port_range default_udp_deny[] = {
        { 0, 1023 }, { 1900, 1900 }, { 2049, 2049 }, { 3702, 3702 },
        { 5353, 5353 }, { 5683, 5683 }, { 11211, 11211 },
};

static int parse_port(const char *s, uint16_t *ret) {
        uint64_t n;

        if (parse_uint64(s, &n) < 0 || n > 65535)
                return -EINVAL;
        *ret = (uint16_t) n;
        return 0;
}

/* "PORT" or "FIRST-LAST" */
static int parse_port_range(const char *s, struct port_range *ret) {
        const char *dash = strchr(s, '-');
        char first[8];

        if (!dash)
                return parse_port(s, &ret->first) < 0 ? -EINVAL : (ret->last = ret->first, 0);
        if ((size_t) (dash - s) >= sizeof first)
                return -EINVAL;
        memcpy(first, s, (size_t) (dash - s));
        first[dash - s] = '\0';
        if (parse_port(first, &ret->first) < 0 || parse_port(dash + 1, &ret->last) < 0)
                return -EINVAL;
        return ret->first <= ret->last ? 0 : -ERANGE;
}

static int validate_udp(struct validator *v, struct config *cfg) {
        const char *key = "udp_deny_source_ports";
        cfg_opt_t *opt = cfg_getopt(v->cfg, key);
        unsigned n = cfg_size(v->cfg, key);
        const struct cval *c;
        int r;

        r = validate_listen_list(v, "listen_udp", NULL, NULL, 0, &cfg->listen_udp, &cfg->n_listen_udp);
        if (r < 0)
                return r;

        /* Not given: the default list. Given as { }: nothing is denied. */
        bool given = opt && (opt->flags & CFGF_MODIFIED);
        size_t want = given ? n : ARRAY_SIZE(default_udp_deny);
        cfg->udp_deny_source_ports = calloc(want + 1, sizeof *cfg->udp_deny_source_ports);
        if (!cfg->udp_deny_source_ports)
                return -ENOMEM;
        if (!given) {
                memcpy(cfg->udp_deny_source_ports, default_udp_deny, sizeof default_udp_deny);
                cfg->n_udp_deny_source_ports = want;
        }
        for (unsigned i = 0; given && i < n; i++) {
                struct port_range pr;

                c = cfg_getnptr(v->cfg, key, i);
                if (empty_value(v, c, key))
                        continue;
                r = parse_port_range(c->text, &pr);
                if (r == -ERANGE)
                        verr(v, c->line, key, "range '%s' ends before it starts", c->text);
                else if (r < 0)
                        verr(v, c->line, key, "invalid port or range '%s': expected PORT or FIRST-LAST, from 0 to 65535 (e.g. \"0-1023\", \"11211\")",
                             c->text);
                else
                        cfg->udp_deny_source_ports[cfg->n_udp_deny_source_ports++] = pr;
        }

        get_uint(v, "udp_rate_limit_per_source", 100, 0, 10000000, "off", &cfg->udp_rate_limit_per_source);
        get_uint(v, "udp_rate_limit_per_source_burst", 200, 1, 10000000, NULL, &cfg->udp_rate_limit_per_source_burst);
        get_uint(v, "udp_rate_limit", 10000, 0, 10000000, "off", &cfg->udp_rate_limit);
        get_uint(v, "udp_rate_limit_burst", 20000, 1, 10000000, NULL, &cfg->udp_rate_limit_burst);
        cfg->udp_max_bytes_per_second = UINT64_C(10) * 1024 * 1024;
        c = get(v, "udp_max_bytes_per_second");
        if (c && !empty_value(v, c, "udp_max_bytes_per_second") && parse_size(c->text, &cfg->udp_max_bytes_per_second) < 0)
                verr(v, c->line, "udp_max_bytes_per_second", "invalid size '%s': expected bytes, optionally with K, M, G or T (0 = unlimited)",
                     c->text);
        return 0;
}

static int validate(struct validator *v, struct config *cfg) {
        const struct cval *c;
        int r;

        r = validate_listen(v, cfg);
        if (r < 0)
                return r;

        get_uint(v, "backlog", 128, 1, 65535, NULL, &cfg->backlog);
        get_bool(v, "reuse_port", false, &cfg->reuse_port);
        get_uint(v, "max_connections", 512, 0, 1000000, "unlimited", &cfg->max_connections);
        get_uint(v, "max_connections_per_source", 32, 0, 1000000, "unlimited", &cfg->max_connections_per_source);
        get_uint(v, "source_prefix_v4", 32, 0, 32, NULL, &cfg->source_prefix_v4);
        get_uint(v, "source_prefix_v6", 64, 0, 128, NULL, &cfg->source_prefix_v6);
        get_uint(v, "max_sources", 1024, 1, 1000000, NULL, &cfg->max_sources);
        get_uint(v, "rate_limit", 0, 0, 1000000, "off", &cfg->rate_limit);
        get_uint(v, "rate_limit_burst", 100, 1, 1000000, NULL, &cfg->rate_limit_burst);
        get_uint(v, "rate_limit_per_source", 20, 0, 1000000, "off", &cfg->rate_limit_per_source);
        get_uint(v, "rate_limit_per_source_burst", 40, 1, 1000000, NULL, &cfg->rate_limit_per_source_burst);

        get_duration(v, "idle_timeout", 300 * USEC_PER_SEC, true, &cfg->idle_timeout_usec);
        get_duration(v, "session_timeout", 3600 * USEC_PER_SEC, true, &cfg->session_timeout_usec);
        get_duration(v, "shutdown_timeout", 10 * USEC_PER_SEC, true, &cfg->shutdown_timeout_usec);

        c = get(v, "max_bytes");
        if (c && !empty_value(v, c, "max_bytes") && parse_size(c->text, &cfg->max_bytes) < 0)
                verr(v, c->line, "max_bytes", "invalid size '%s': expected bytes, optionally with K, M, G or T (0 = unlimited)",
                     c->text);

        r = validate_acl(v, cfg);
        if (r < 0)
                return r;

        cfg->user = get_name(v, "user");
        cfg->group = get_name(v, "group");
        if (cfg->user && !getpwnam(cfg->user))
                verr(v, get(v, "user")->line, "user", "no such user '%s'", cfg->user);
        if (cfg->group && !getgrnam(cfg->group))
                verr(v, get(v, "group")->line, "group", "no such group '%s'", cfg->group);

        cfg->log_level = LOG_INFO;
        c = get(v, "log_level");
        if (c && !empty_value(v, c, "log_level")) {
                int l = log_level_from_string(c->text);
                if (l < 0)
                        verr(v, c->line, "log_level", "invalid level '%s': expected err, warning, notice, info or debug",
                             c->text);
                else
                        cfg->log_level = l;
        }
        get_log_connections(v, &cfg->log_connections);
        get_uint(v, "log_rate", 200, 0, 1000000, "no budget", &cfg->log_rate);
        get_uint(v, "log_rate_burst", 2000, 1, 1000000, NULL, &cfg->log_rate_burst);
        get_bool(v, "log_payload", false, &cfg->log_payload);

        cfg->metrics_file = get_name(v, "metrics_file");
        c = get(v, "metrics_file");
        if (cfg->metrics_file && cfg->metrics_file[0] != '/')
                verr(v, c->line, "metrics_file", "'%s' is not an absolute path", cfg->metrics_file);
        else if (cfg->metrics_file && (strlen(cfg->metrics_file) < 6 ||
                                       strcmp(cfg->metrics_file + strlen(cfg->metrics_file) - 5, ".prom") != 0))
                verr(v, c->line, "metrics_file", "'%s' does not end in .prom, the only files node-exporter's textfile collector reads",
                     cfg->metrics_file);
        get_duration(v, "metrics_interval", 15 * USEC_PER_SEC, false, &cfg->metrics_interval_usec);
        r = validate_udp(v, cfg);
        if (r < 0)
                return r;
        return validate_proxy(v, cfg);
}

struct config *config_free(struct config *c) {
        if (!c)
                return NULL;
        for (size_t i = 0; i < c->n_listen; i++)
                free(c->listen[i].text);
        free(c->listen);
        for (size_t i = 0; i < c->n_listen_udp; i++)
                free(c->listen_udp[i].text);
        free(c->listen_udp);
        free(c->udp_deny_source_ports);
        for (size_t i = 0; i < c->n_proxy_listen; i++)
                free(c->proxy_listen[i].text);
        free(c->proxy_listen);
        free(c->proxy_trusted);
        free(c->acl);
        free(c->user);
        free(c->group);
        free(c->metrics_file);
        free(c->path);
        free(c);
        return NULL;
}

int config_load_text(const char *path, const char *text, size_t size,
                     struct config **ret, struct strv *errors) {
        _cleanup_config_ struct config *cfg = NULL;
        _cleanup_free_ char *buf = NULL;
        struct load_ctx ctx = { .path = path, .errors = errors };
        struct validator v = { .path = path, .errors = errors };
        unsigned bad_line;
        cfg_t *c;
        int r;

        buf = malloc(size + 1);
        if (!buf)
                return -ENOMEM;
        memcpy(buf, text, size);
        buf[size] = '\0';

        unsigned open_comment;
        bad_line = prepare_text(buf, size, &open_comment);
        if (bad_line > 0) {
                strv_appendf(errors, "%s:%u: invalid character outside a quoted string (only printable ASCII is allowed there)",
                             path, bad_line);
                return -EINVAL;
        }
        if (open_comment > 0) {
                strv_appendf(errors, "%s:%u: comment opened with /* is never closed with */", path, open_comment);
                return -EINVAL;
        }

        c = cfg_init(options, CFGF_NONE);
        if (!c)
                return -ENOMEM;
        cfg_set_error_function(c, error_func);

        current_ctx = &ctx;
        r = cfg_parse_buf(c, buf);
        current_ctx = NULL;
        if (r != CFG_SUCCESS || ctx.failed) {
                if (!ctx.failed)
                        strv_appendf(errors, "%s: cannot parse the file", path);
                cfg_free(c);
                return r == CFG_SUCCESS || r == CFG_PARSE_ERROR ? -EINVAL : -ENOMEM;
        }

        cfg = calloc(1, sizeof *cfg);
        if (!cfg || !(cfg->path = strdup(path))) {
                cfg_free(c);
                return -ENOMEM;
        }
        v.cfg = c;
        r = validate(&v, cfg);
        cfg_free(c);
        if (r < 0)
                return r;
        if (v.failed)
                return -EINVAL;

        *ret = TAKE_PTR(cfg);
        return 0;
}

int config_load(const char *path, struct config **ret, struct strv *errors) {
        _cleanup_close_ int fd = -1;
        _cleanup_free_ char *buf = NULL;
        size_t size = 0;
        struct stat st;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0) {
                int r = -errno;
                strv_appendf(errors, "%s: cannot open: %s", path, strerror(errno));
                return r;
        }
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
                strv_appendf(errors, "%s: not a regular file", path);
                return -EINVAL;
        }
        buf = malloc(CONFIG_MAX_FILE_SIZE + 1);
        if (!buf)
                return -ENOMEM;
        for (;;) {
                ssize_t n = read(fd, buf + size, CONFIG_MAX_FILE_SIZE + 1 - size);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        int r = -errno;
                        strv_appendf(errors, "%s: cannot read: %s", path, strerror(errno));
                        return r;
                }
                if (n == 0)
                        break;
                size += (size_t) n;
                if (size > CONFIG_MAX_FILE_SIZE) {
                        strv_appendf(errors, "%s: file larger than %d bytes", path, CONFIG_MAX_FILE_SIZE);
                        return -EFBIG;
                }
        }
        return config_load_text(path, buf, size, ret, errors);
}

/* ---- dump ---- */

static void dump_string(FILE *f, const char *s) {
        fputc('"', f);
        for (; *s; s++) {
                if (*s == '"' || *s == '\\')
                        fputc('\\', f);
                fputc(*s, f);
        }
        fputc('"', f);
}

static void dump_duration(FILE *f, const char *key, uint64_t usec) {
        char buf[32];

        format_duration(buf, sizeof buf, usec);
        fprintf(f, "%s = %s\n", key, buf);
}

static void dump_acl(FILE *f, const struct config *c, bool allow) {
        bool first = true;

        fprintf(f, "%s = {", allow ? "allow" : "deny");
        for (size_t i = 0; i < c->n_acl; i++) {
                char buf[64];

                if (c->acl[i].allow != allow)
                        continue;
                netaddr_format(&c->acl[i].net, buf, sizeof buf);
                fprintf(f, "%s \"%s\"", first ? "" : ",", buf);
                first = false;
        }
        fprintf(f, " }\n");
}

void config_dump(const struct config *c, FILE *f) {
        fprintf(f, "# echod effective configuration (from %s, defaults included)\n", c->path);
        fprintf(f, "listen = {");
        for (size_t i = 0; i < c->n_listen; i++) {
                fprintf(f, "%s ", i ? "," : "");
                dump_string(f, c->listen[i].text);
        }
        fprintf(f, " }\n");
        fprintf(f, "backlog = %u\n", c->backlog);
        fprintf(f, "reuse_port = %s\n", c->reuse_port ? "true" : "false");
        fprintf(f, "max_connections = %u\n", c->max_connections);
        fprintf(f, "max_connections_per_source = %u\n", c->max_connections_per_source);
        fprintf(f, "source_prefix_v4 = %u\n", c->source_prefix_v4);
        fprintf(f, "source_prefix_v6 = %u\n", c->source_prefix_v6);
        fprintf(f, "max_sources = %u\n", c->max_sources);
        fprintf(f, "rate_limit = %u\n", c->rate_limit);
        fprintf(f, "rate_limit_burst = %u\n", c->rate_limit_burst);
        fprintf(f, "rate_limit_per_source = %u\n", c->rate_limit_per_source);
        fprintf(f, "rate_limit_per_source_burst = %u\n", c->rate_limit_per_source_burst);
        dump_duration(f, "idle_timeout", c->idle_timeout_usec);
        dump_duration(f, "session_timeout", c->session_timeout_usec);
        dump_duration(f, "shutdown_timeout", c->shutdown_timeout_usec);
        fprintf(f, "max_bytes = %" PRIu64 "\n", c->max_bytes);
        dump_acl(f, c, true);
        dump_acl(f, c, false);
        fprintf(f, "user = ");
        dump_string(f, c->user ? c->user : "");
        fprintf(f, "\ngroup = ");
        dump_string(f, c->group ? c->group : "");
        fprintf(f, "\nlog_level = \"%s\"\n", log_level_to_string(c->log_level));
        fprintf(f, "log_connections = %s\n", log_connections_to_string(c->log_connections));
        fprintf(f, "log_rate = %u\n", c->log_rate);
        fprintf(f, "log_rate_burst = %u\n", c->log_rate_burst);
        fprintf(f, "log_payload = %s\n", c->log_payload ? "true" : "false");
        fprintf(f, "metrics_file = ");
        dump_string(f, c->metrics_file ? c->metrics_file : "");
        fputc('\n', f);
        dump_duration(f, "metrics_interval", c->metrics_interval_usec);
        fprintf(f, "listen_udp = {");
        for (size_t i = 0; i < c->n_listen_udp; i++) {
                fprintf(f, "%s ", i ? "," : "");
                dump_string(f, c->listen_udp[i].text);
        }
        fprintf(f, " }\n");
        fprintf(f, "udp_deny_source_ports = {");
        for (size_t i = 0; i < c->n_udp_deny_source_ports; i++) {
                const struct port_range *p = &c->udp_deny_source_ports[i];
                if (p->first == p->last)
                        fprintf(f, "%s \"%u\"", i ? "," : "", p->first);
                else
                        fprintf(f, "%s \"%u-%u\"", i ? "," : "", p->first, p->last);
        }
        fprintf(f, " }\n");
        fprintf(f, "udp_rate_limit_per_source = %u\n", c->udp_rate_limit_per_source);
        fprintf(f, "udp_rate_limit_per_source_burst = %u\n", c->udp_rate_limit_per_source_burst);
        fprintf(f, "udp_rate_limit = %u\n", c->udp_rate_limit);
        fprintf(f, "udp_rate_limit_burst = %u\n", c->udp_rate_limit_burst);
        fprintf(f, "udp_max_bytes_per_second = %" PRIu64 "\n", c->udp_max_bytes_per_second);
        fprintf(f, "proxy_listen = {");
        for (size_t i = 0; i < c->n_proxy_listen; i++) {
                fprintf(f, "%s ", i ? "," : "");
                dump_string(f, c->proxy_listen[i].text);
        }
        fprintf(f, " }\nproxy_trusted = {");
        for (size_t i = 0; i < c->n_proxy_trusted; i++) {
                char buf[64];
                netaddr_format(&c->proxy_trusted[i], buf, sizeof buf);
                fprintf(f, "%s \"%s\"", i ? "," : "", buf);
        }
        fprintf(f, " }\n");
        dump_duration(f, "proxy_timeout", c->proxy_timeout_usec);
}
