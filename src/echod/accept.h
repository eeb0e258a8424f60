/* SPDX-License-Identifier: MIT */
/*
 * The accept path: a connection from its listener to a verdict (admit.c)
 * and, when admitted, a worker (children.c); a refusal is closed at once
 * and counted (status.c). The master never reads a client's bytes.
 */
#pragma once

#include <stddef.h>

#include "master.h"

/* Accepts up to a batch of connections from listener idx; stops early when
 * the listeners stop being watched (a pause after a resource failure). */
void accept_batch(struct master *m, size_t idx);
