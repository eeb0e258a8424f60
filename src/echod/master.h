/* SPDX-License-Identifier: MIT */
/*
 * The master process: one epoll loop over the listeners and a signalfd;
 * accepts, applies the limits, forks one worker per connection, reaps them,
 * reloads on SIGHUP, drains on SIGTERM, reports status on SIGUSR1.
 */
#pragma once

#include <stdbool.h>

#include "config.h"

struct master_args {
        const char *config_path;
        int log_level_override;         /* -1 = use the config's */
        const char *pid_file;           /* NULL = none */
        int ready_fd;                   /* daemon readiness pipe, or -1 */
};

/* Takes ownership of cfg. Returns the process exit code. */
int master_run(struct config *cfg, const struct master_args *args);
