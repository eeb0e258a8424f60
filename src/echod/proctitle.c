/* SPDX-License-Identifier: MIT */
/*
 * Rewrites argv in place (the classic setproctitle technique): the kernel
 * shows the argument area in /proc/PID/cmdline and ps, and lets a title run
 * on into the old environment area once the last NUL of argv is gone.
 */
#include <stdlib.h>
#include <string.h>

#include "proctitle.h"

extern char **environ;

static char *title_start;
static size_t title_size;
/* How much of the area may hold something other than NULs: all of it until
 * the first title is set, then the current title. A forked worker setting
 * its own title then writes only the bytes it needs, not the whole old
 * argv and environment (which made it copy their pages). */
static size_t title_used;
/* The moved environment strings, kept reachable for the life of the process
 * (unsetenv() drops them from environ, e.g. sd_listen_fds() does). */
static char **env_strings;

void proctitle_init(int argc, char **argv) {
        char *start, *end;
        size_t n_env = 0;
        char **env;

        if (argc <= 0 || !argv[0])
                return;
        start = argv[0];
        end = argv[0] + strlen(argv[0]) + 1;
        for (int i = 1; i < argc; i++)
                if (argv[i] == end)
                        end = argv[i] + strlen(argv[i]) + 1;
        for (; environ && environ[n_env]; n_env++)
                if (environ[n_env] == end)
                        end = environ[n_env] + strlen(environ[n_env]) + 1;

        /* Move the environment and the arguments elsewhere; their old space
         * becomes the title's. */
        env = calloc(n_env + 1, sizeof *env);
        env_strings = calloc(n_env + 1, sizeof *env_strings);
        if (!env || !env_strings)
                return;
        for (size_t i = 0; i < n_env; i++)
                if (!(env[i] = env_strings[i] = strdup(environ[i])))
                        return;
        for (int i = 0; i < argc; i++) {
                char *copy = strdup(argv[i]);
                if (!copy)
                        return;
                argv[i] = copy;
        }
        environ = env;

        title_start = start;
        title_size = title_used = (size_t) (end - start);
}

void proctitle_set_text(const char *title) {
        size_t n;

        if (!title_start || title_size < 2)
                return;
        n = strnlen(title, title_size - 1);
        memcpy(title_start, title, n);
        /* Clear the rest so ps shows no leftovers. */
        if (title_used > n)
                memset(title_start + n, 0, title_used - n);
        title_used = n;
}
