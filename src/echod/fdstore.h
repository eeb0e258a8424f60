/* SPDX-License-Identifier: MIT */
/*
 * Listeners kept in systemd's file descriptor store (FDSTORE=1), so that a
 * restart, or Restart= after a crash, finds them still open with their
 * backlog: a client that connects while no echod runs waits in the queue
 * instead of being refused.
 *
 * Each listener is stored under a name of its own, because FDSTOREREMOVE=1
 * removes every descriptor of the name it gives: the kind (listener_kind_name(),
 * what a socket unit's FileDescriptorName= would say), '@', and the address
 * with each ':' written as '_' (LISTEN_FDNAMES separates names with ':',
 * which fdname_is_valid() therefore rejects): "tcp@127.0.0.1_7",
 * "tcp@[__]_7". Only the kind is read back; the address comes from
 * getsockname().
 */
#pragma once

#include <stddef.h>

#include "listen.h"

/* systemd's limit for an fd name (FDNAME_MAX), plus the NUL. */
#define FDSTORE_NAME_MAX 256

void fdstore_name(const struct listener *l, char *buf, size_t size);

/* The kind a stored listener's name says, or -EINVAL when name is not one
 * of ours (a socket unit's name, "unknown" when none was given). */
int fdstore_kind_from_name(const char *name);

/* Hands l to the fd store (l->stored is set when it went), or takes it
 * out. Return 1 when sent, 0 when not under a service manager, -errno. */
int fdstore_add(struct listener *l);
int fdstore_remove(struct listener *l);
