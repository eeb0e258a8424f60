/* SPDX-License-Identifier: MIT */
/*
 * LD_PRELOAD shim for the exhaustion tests: makes fork() fail with EAGAIN,
 * as it does when RLIMIT_NPROC or the cgroup's pids.max is reached.
 *
 *   FAILFORK_EVERY=N   every Nth fork() of the process fails
 *   FAILFORK_FILE=P    every fork() fails while the file P exists
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <sys/types.h>
#include <unistd.h>

pid_t fork(void) {
        static pid_t (*real_fork)(void);
        static unsigned long calls;
        const char *every = getenv("FAILFORK_EVERY");
        const char *file = getenv("FAILFORK_FILE");

        if (!real_fork)
                real_fork = (pid_t (*)(void)) dlsym(RTLD_NEXT, "fork");
        calls++;
        if (every) {
                unsigned long n = strtoul(every, NULL, 10);
                if (n > 0 && calls % n == 0) {
                        errno = EAGAIN;
                        return -1;
                }
        }
        if (file && *file && access(file, F_OK) == 0) {
                errno = EAGAIN;
                return -1;
        }
        if (!real_fork) {
                errno = ENOSYS;
                return -1;
        }
        return real_fork();
}
