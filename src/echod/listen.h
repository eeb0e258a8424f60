/* SPDX-License-Identifier: MIT */
/*
 * Listening sockets: the ones systemd passed (socket activation) or the ones
 * echod binds itself from the `listen` addresses.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "addr.h"

struct listener {
        int fd;
        struct sockaddr_any addr;       /* what it is bound to */
        char name[ADDR_STR_MAX];        /* for logs */
        bool activated;                 /* passed by systemd */
};

/* Binds and listens on addr ("[::]" is dual-stack); non-blocking, CLOEXEC.
 * Returns 0 or -errno. */
int listener_open(struct listener *l, const struct sockaddr_any *addr, unsigned backlog);

/* Takes the sockets systemd passed. Returns how many (0 = not socket
 * activated), -EBADMSG when one is not a listening stream socket (*ret_bad_fd
 * says which), or -errno. */
int listeners_from_systemd(struct listener **ret, size_t *ret_n, int *ret_bad_fd);

void listener_close(struct listener *l);
