/* SPDX-License-Identifier: MIT */
/*
 * Listening sockets: the ones systemd passed (socket activation) or the ones
 * echod binds itself from the `listen` addresses.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "addr.h"
#include "config.h"

/* What a listener serves. The names are the FDNAME=/FileDescriptorName= of
 * the socket in systemd's fd store and socket units. */
enum listener_kind {
        LISTENER_TCP,           /* plain TCP echo */
        LISTENER_PROXY,         /* TCP echo behind a PROXY protocol header */
        LISTENER_UDP,           /* UDP echo, served by the UDP worker */
        _LISTENER_KIND_MAX,
};

const char *listener_kind_name(enum listener_kind k);

struct listener {
        int fd;
        enum listener_kind kind;
        struct sockaddr_any addr;       /* what it is bound to */
        char name[ADDR_STR_MAX];        /* for logs */
        bool stored;                    /* echod put it in systemd's fd store (fdstore.h) */
};

/* A listener of kind bound to addr ("[::]" is dual-stack), non-blocking,
 * CLOEXEC: a TCP or proxy one listening with backlog, a UDP one with the
 * pktinfo options udp.c needs (listener_udp_options()). With reuse_port,
 * SO_REUSEPORT: other sockets of the same user may share it. Returns 0 or
 * -errno. */
int listener_open(struct listener *l, enum listener_kind kind, const struct sockaddr_any *addr, unsigned backlog,
                  bool reuse_port);
int listener_udp_options(int fd, int family);

/* Takes the sockets systemd passed: a socket unit's, or echod's own from
 * the fd store (those have l->stored set and the kind their name says).
 * Returns how many (0 = none), -EBADMSG when one is neither a listening
 * stream socket nor an internet datagram socket (a UDP listener)
 * (*ret_bad_fd says which), or -errno. */
int listeners_from_systemd(struct listener **ret, size_t *ret_n, int *ret_bad_fd);

/* Makes l serve k (a proxy listener defers accepting until data came). */
void listener_set_kind(struct listener *l, enum listener_kind k);

void listener_close(struct listener *l);

/* The listeners of c: those a socket unit passed (*ret_activated, and c's
 * listen is ignored), or c's own: taken back from systemd's fd store where
 * it kept them, bound here (and stored) where not; a stored one that c no
 * longer lists is closed and removed from the store. Logs each, and why it
 * failed: then the ones already opened are in *ret, *ret_n of them, for
 * the caller to close. */
int listeners_setup(const struct config *c, struct listener **ret, size_t *ret_n, bool *ret_activated);
