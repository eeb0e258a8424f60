/* SPDX-License-Identifier: MIT */
/* Reloading the configuration (see reload.h). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "children.h"
#include "metrics.h"
#include "notify.h"
#include "reload.h"
#include "status.h"

static bool same_string(const char *a, const char *b) {
        return (a == NULL) == (b == NULL) && (!a || strcmp(a, b) == 0);
}

/* Opens what is new, keeps what is unchanged (its backlog is never lost),
 * closes what is gone. All or nothing: on failure the old set stays and
 * err says why. */
static int apply_listeners(struct master *m, const struct config *c, char *err, size_t errsize,
                           size_t *ret_added, size_t *ret_removed) {
        const size_t n = c->n_listen + c->n_proxy_listen;
        _cleanup_free_ struct listener *ls = calloc(n ? n : 1, sizeof *ls);
        _cleanup_free_ bool *kept = calloc(m->n_listeners + 1, sizeof *kept);
        _cleanup_free_ bool *opened = calloc(n + 1, sizeof *opened);
        bool was_watching = m->watching;
        size_t added = 0, removed = 0;
        int r;

        if (!ls || !kept || !opened) {
                snprintf(err, errsize, "out of memory");
                return -ENOMEM;
        }
        for (size_t i = 0; i < n; i++) {
                /* The plain listeners, then the proxy ones. */
                const bool proxy = i >= c->n_listen;
                const struct listen_entry *e = proxy ? &c->proxy_listen[i - c->n_listen] : &c->listen[i];
                size_t j;
                for (j = 0; j < m->n_listeners; j++)
                        if (!kept[j] && m->listeners[j].kind != LISTENER_UDP &&
                            sockaddr_equal(&m->listeners[j].addr, &e->addr))
                                break;
                if (j < m->n_listeners) {
                        ls[i] = m->listeners[j];
                        listener_set_kind(&ls[i], proxy ? LISTENER_PROXY : LISTENER_TCP);
                        kept[j] = true;
                        if (c->backlog != m->cfg->backlog)
                                (void) listen(ls[i].fd, (int) c->backlog);
                        continue;
                }
                r = listener_open(&ls[i], &e->addr, c->backlog);
                if (r >= 0 && proxy)
                        listener_set_kind(&ls[i], LISTENER_PROXY);
                if (r < 0) {
                        errno = -r;
                        snprintf(err, errsize, "cannot listen on %s: %m", e->text);
                        for (size_t k = 0; k < i; k++)
                                if (opened[k])
                                        listener_close(&ls[k]);
                        return r;
                }
                opened[i] = true;
                added++;
        }

        (void) master_watch_listeners(m, false);
        for (size_t j = 0; j < m->n_listeners; j++)
                if (!kept[j]) {
                        listener_close(&m->listeners[j]);
                        removed++;
                }
        free(m->listeners);
        m->listeners = TAKE_PTR(ls);
        m->n_listeners = n;
        if (was_watching)
                (void) master_watch_listeners(m, true);
        *ret_added = added;
        *ret_removed = removed;
        return 0;
}

void master_reload(struct master *m) {
        _cleanup_config_ struct config *c = NULL;
        struct strv errors = {};
        size_t added = 0, removed = 0;
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
                r = apply_listeners(m, c, err, sizeof err, &added, &removed);
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

        config_free(m->cfg);
        m->cfg = TAKE_PTR(c);
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
