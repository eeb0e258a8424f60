/* SPDX-License-Identifier: MIT */
/*
 * Classic detaching (double fork, setsid) with a readiness pipe: the process
 * that started echod exits only once the daemon listens (0) or failed (its
 * exit code), so init scripts and operators see real errors. And the pid
 * file, which the daemon must be able to remove after it dropped root.
 */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

/*
 * Forks the daemon. In the daemon: returns the write end of the readiness
 * pipe (>= 0), with *ret_starter false. In the starter: returns once the
 * daemon is ready (0) or gone (-ECHILD: it failed and logged why), with
 * *ret_starter true. -errno when nothing could be forked.
 *
 * Sockets passed to the starter (LISTEN_PID is its pid) are passed on to the
 * daemon: sd_listen_fds() there sees them as its own.
 */
int daemon_detach(bool *ret_starter);

/* Tells the starter how start-up went and closes the pipe. On success also
 * points stdin, stdout and stderr at /dev/null. */
void daemon_report(int fd, int exit_code);

/*
 * Prepares path's directory so that uid, whom echod runs as after dropping
 * root, can remove the pid file at exit: a missing directory is created
 * (0755) and given to uid:gid. An existing one is left as it is, whoever
 * owns it. Returns 0, 1 when uid cannot remove a file there (an existing
 * directory it cannot write, or a sticky one it does not own), or -errno.
 */
int pidfile_prepare(const char *path, uid_t uid, gid_t gid);

/* Writes our pid to path (0644). A stale file is removed first and the new
 * one created exclusively, never through a symbolic link. */
int pidfile_write(const char *path);

/* Removes path if it still holds our pid: a failed second instance must not
 * remove the running one's. */
void pidfile_remove(const char *path);
