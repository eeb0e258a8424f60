/* SPDX-License-Identifier: MIT */
/*
 * Classic detaching (double fork, setsid) with a readiness pipe: the process
 * that started echod exits only once the daemon listens (0) or failed (its
 * exit code), so init scripts and operators see real errors.
 */
#pragma once

/* In the starter, never returns. In the daemon, returns the write end of the
 * readiness pipe (>= 0) or -errno before any fork happened. */
int daemon_detach(void);

/* Tells the starter how start-up went and closes the pipe. On success also
 * points stdin, stdout and stderr at /dev/null. */
void daemon_report(int fd, int exit_code);

/* Writes our pid to path (0644), replacing a stale file. */
int pidfile_write(const char *path);
