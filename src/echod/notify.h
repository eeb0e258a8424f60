/* SPDX-License-Identifier: MIT */
/*
 * sd_notify without blocking: the master must never stall in sendmsg()
 * because the service manager's queue is full (libsystemd's sd_notify()
 * uses a blocking socket). A message that cannot be queued at once is
 * dropped; STATUS= is re-sent within a second anyway.
 */
#pragma once

#include <stddef.h>

#define NOTIFY_FDS_MAX 16

/* Returns 1 when sent, 0 when not under a service manager, -errno otherwise
 * (-EAGAIN: the manager's queue is full, message dropped). */
int notify_send(const char *format, ...) __attribute__((format(printf, 1, 2)));

/* The same with descriptors attached (SCM_RIGHTS), as FDSTORE=1 wants:
 * at most NOTIFY_FDS_MAX of them. */
int notify_send_fds(const int *fds, size_t n_fds, const char *format, ...) __attribute__((format(printf, 3, 4)));
