/* SPDX-License-Identifier: MIT */
/* Listeners in systemd's fd store (see fdstore.h). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "fdstore.h"
#include "notify.h"

void fdstore_name(const struct listener *l, char *buf, size_t size) {
        int n = snprintf(buf, size, "%s@%s", listener_kind_name(l->kind), l->name);

        if (n < 0 || size == 0)
                return;
        for (char *p = buf; *p; p++)
                if (*p == ':')
                        *p = '_';
}

int fdstore_kind_from_name(const char *name) {
        const char *at = strchr(name, '@');

        if (!at)
                return -EINVAL;
        for (int k = 0; k < _LISTENER_KIND_MAX; k++) {
                const char *kn = listener_kind_name((enum listener_kind) k);
                if ((size_t) (at - name) == strlen(kn) && strncmp(name, kn, strlen(kn)) == 0)
                        return k;
        }
        return -EINVAL;
}

int fdstore_add(struct listener *l) {
        char name[FDSTORE_NAME_MAX];
        int r;

        fdstore_name(l, name, sizeof name);
        r = notify_send_fds(&l->fd, 1, "FDSTORE=1\nFDNAME=%s", name);
        if (r > 0)
                l->stored = true;
        return r;
}

int fdstore_remove(struct listener *l) {
        char name[FDSTORE_NAME_MAX];
        int r;

        if (!l->stored)
                return 0;
        fdstore_name(l, name, sizeof name);
        r = notify_send("FDSTOREREMOVE=1\nFDNAME=%s", name);
        if (r > 0)
                l->stored = false;
        return r;
}
