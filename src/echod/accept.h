/* SPDX-License-Identifier: MIT */
/*
 * The accept path: a connection from its listener to a verdict (admit.c)
 * and, when admitted, a worker (children.c); a refusal is closed at once
 * and counted (status.c). The master never reads a client's bytes; on a
 * proxy listener it reads the PROXY header first (proxy-accept.c).
 */
#pragma once

#include <stddef.h>

#include "master.h"

/* Accepts up to a batch of connections from listener idx; stops early when
 * the listeners stop being watched (a pause after a resource failure). */
void accept_batch(struct master *m, size_t idx);

/* Admits and serves fd, a connection from peer on l: through balancer
 * (NULL = none), whose PROXY header named peer. */
void accept_serve(struct master *m, int fd, const struct sockaddr_any *peer, const struct sockaddr_any *balancer,
                  const struct listener *l, uint64_t now);
