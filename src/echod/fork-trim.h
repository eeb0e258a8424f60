/* SPDX-License-Identifier: MIT */
/* What of the master's address space a forked worker gets (see fork-trim.c). */
#pragma once

#include <stddef.h>

/*
 * Marks the shared objects workers never call MADV_DONTFORK, so that fork()
 * does not copy them. Call once, in the master, after start-up. Sets
 * *ret_objects to how many objects were left out. Returns 0, -ENOTSUP when
 * it is not safe because some object may still bind a symbol lazily (then
 * nothing is left out), or -errno of madvise(); a failure only costs speed.
 *
 * Linking this file also makes echod run itself again before main() with
 * LD_BIND_NOW=1 when its libraries would otherwise be bound lazily.
 */
int fork_trim_libraries(size_t *ret_objects);
