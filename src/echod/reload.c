/* SPDX-License-Identifier: MIT */
/* Reloading the configuration (see reload.h). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "children.h"
#include "fdstore.h"
#include "metrics.h"
#include "notify.h"
#include "reload.h"
#include "status.h"

static bool same_string(const char *a, const char *b) {
        return (a == NULL) == (b == NULL) && (!a || strcmp(a, b) == 0);
}

/* The i-th listener c wants: its `listen` entries, then `proxy_listen`,
 * then `listen_udp`. */
static const struct listen_entry *wanted(const struct config *c, size_t i, enum listener_kind *ret_kind) {
        if (i < c->n_listen) {
                *ret_kind = LISTENER_TCP;
                return &c->listen[i];
        }
        i -= c->n_listen;
        if (i < c->n_proxy_listen) {
                *ret_kind = LISTENER_PROXY;
                return &c->proxy_listen[i];
        }
        *ret_kind = LISTENER_UDP;
        return &c->listen_udp[i - c->n_proxy_listen];
}

/* Whether a listener of kind have can serve as one of kind want: TCP ones
 * turn into proxy ones and back on the same socket, UDP ones stay UDP. */
static bool reusable(enum listener_kind have, enum listener_kind want) {
        return (have == LISTENER_UDP) == (want == LISTENER_UDP);
}

/* Opens what is new, keeps what is unchanged (its backlog is never lost),
 * closes what is gone. All or nothing: on failure the old set stays and
 * err says why. */
static int apply_listeners(struct master *m, const struct config *c, char *err, size_t errsize,
                           size_t *ret_added, size_t *ret_removed, bool *ret_udp_changed) {
        size_t n_wanted = c->n_listen + c->n_proxy_listen + c->n_listen_udp;
        _cleanup_free_ struct listener *ls = calloc(n_wanted ? n_wanted : 1, sizeof *ls);
        _cleanup_free_ bool *kept = calloc(m->n_listeners + 1, sizeof *kept);
        _cleanup_free_ bool *opened = calloc(n_wanted + 1, sizeof *opened);
        _cleanup_free_ bool *rekinded = calloc(n_wanted + 1, sizeof *rekinded);
        bool udp_changed = false;
        bool was_watching = m->watching;
        size_t added = 0, removed = 0;
        int r;

        if (!ls || !kept || !opened || !rekinded) {
                snprintf(err, errsize, "out of memory");
                return -ENOMEM;
        }
        for (size_t i = 0; i < n_wanted; i++) {
                enum listener_kind kind;
                const struct listen_entry *e = wanted(c, i, &kind);
                size_t j;
                for (j = 0; j < m->n_listeners; j++)
                        if (!kept[j] && reusable(m->listeners[j].kind, kind) &&
                            sockaddr_equal(&m->listeners[j].addr, &e->addr))
                                break;
                if (j < m->n_listeners) {
                        ls[i] = m->listeners[j];
                        kept[j] = true;
                        /* Turned into the other kind below, once nothing can fail. */
                        rekinded[i] = ls[i].kind != kind;
                        if (kind != LISTENER_UDP && c->backlog != m->cfg->backlog)
                                (void) listen(ls[i].fd, (int) c->backlog);
                        continue;
                }
                r = listener_open(&ls[i], kind, &e->addr, c->backlog, c->reuse_port);
                if (r < 0) {
                        errno = -r;
                        snprintf(err, errsize, "cannot listen on %s%s: %m", kind == LISTENER_UDP ? "UDP " : "", e->text);
                        for (size_t k = 0; k < i; k++)
                                if (opened[k])
                                        listener_close(&ls[k]);
                        return r;
                }
                opened[i] = true;
                added++;
                udp_changed |= kind == LISTENER_UDP;
        }

        (void) master_watch_listeners(m, false);
        for (size_t j = 0; j < m->n_listeners; j++)
                if (!kept[j]) {
                        (void) fdstore_remove(&m->listeners[j]);
                        udp_changed |= m->listeners[j].kind == LISTENER_UDP;
                        listener_close(&m->listeners[j]);
                        removed++;
                }
        /* The worker serves the old set, descriptors it holds: it goes first. */
        if (udp_changed)
                udp_stop(m);
        for (size_t i = 0; i < n_wanted; i++) {
                enum listener_kind kind;

                (void) wanted(c, i, &kind);
                if (rekinded[i]) {
                        /* Its name in the fd store says its kind. */
                        (void) fdstore_remove(&ls[i]);
                        listener_set_kind(&ls[i], kind);
                }
        }
        free(m->listeners);
        m->listeners = TAKE_PTR(ls);
        m->n_listeners = n_wanted;
        for (size_t i = 0; i < n_wanted; i++)
                if ((opened[i] || rekinded[i]) && fdstore_add(&m->listeners[i]) < 0)
                        log_warning("cannot hand listener %s to systemd's fd store: a restart will refuse "
                                    "connections to it until echod listens again", m->listeners[i].name);
        if (was_watching)
                (void) master_watch_listeners(m, true);
        *ret_added = added;
        *ret_removed = removed;
        *ret_udp_changed = udp_changed;
        return 0;
}

void master_reload(struct master *m) {
        _cleanup_config_ struct config *c = NULL;
        struct strv errors = {};
        size_t added = 0, removed = 0;
        bool udp_changed = false;
        uint64_t now = now_usec(CLOCK_MONOTONIC);
        const char *path = m->args->config_path;
        char err[512];
        int r;

        (void) notify_send("RELOADING=1\nSTATUS=Reloading %s\nMONOTONIC_USEC=%" PRIu64, path, now);

        r = config_load(path, &c, &errors);
        if (r < 0) {
                for (size_t i = 0; i < errors.n; i++)
                        log_struct(LOG_ERR, LOG_MESSAGE_ID(ECHOD_MID_RELOAD_FAILED), LOG_MESSAGE("%s", errors.items[i]));
                log_struct(LOG_ERR, LOG_MESSAGE_ID(ECHOD_MID_RELOAD_FAILED),
                           LOG_MESSAGE("reload failed: %s is invalid (%zu error%s); still serving with the previous configuration",
                                       path, errors.n, errors.n == 1 ? "" : "s"));
                strv_clear(&errors);
                goto fail;
        }

        if (!m->socket_activated) {
                r = apply_listeners(m, c, err, sizeof err, &added, &removed, &udp_changed);
                if (r < 0) {
                        log_struct(LOG_ERR, LOG_MESSAGE_ID(ECHOD_MID_RELOAD_FAILED),
                                   LOG_MESSAGE("reload failed: %s; still serving with the previous configuration", err));
                        goto fail;
                }
        }
        /* Running workers count under the new prefixes at once (a no-op for
         * each whose key is unchanged). */
        sources_configure(&m->sources, c->max_sources, c->source_prefix_v4, c->source_prefix_v6);
        children_rekey(m, now);
        if (!same_string(c->user, m->cfg->user) || !same_string(c->group, m->cfg->group))
                log_warning("user and group changes take effect only when echod is restarted");
        if (c->reuse_port != m->cfg->reuse_port && !m->socket_activated)
                log_warning("reuse_port = %s applies to listeners bound from now on; those already open keep "
                            "theirs until echod is restarted", c->reuse_port ? "true" : "false");

        udp_changed |= udp_config_changed(m->cfg, c);
        udp_warn_config(m, c);
        config_free(m->cfg);
        m->cfg = TAKE_PTR(c);
        udp_reloaded(m, udp_changed, now);
        if (m->args->log_level_override < 0)
                log_set_level(m->cfg->log_level);
        m->reload_failed = false;
        m->reloads_ok++;
        log_struct(LOG_NOTICE, LOG_MESSAGE_ID(ECHOD_MID_RELOADED),
                   LOG_MESSAGE("reloaded %s: %zu listener%s (%zu added, %zu closed)%s; running workers are unchanged",
                               path, m->n_listeners, m->n_listeners == 1 ? "" : "s", added, removed,
                               m->socket_activated ? ", sockets from systemd kept" : ""));
        status_send(m, now);
        /* Before READY=1: whoever waits for the reload to end sees its count. */
        metrics_write(m, now);
        (void) notify_send("READY=1");
        return;

fail:
        m->reload_failed = true;
        m->reloads_failed++;
        status_send(m, now);
        metrics_write(m, now);
        (void) notify_send("READY=1");
}
