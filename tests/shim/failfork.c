/* SPDX-License-Identifier: MIT */
/*
 * LD_PRELOAD shim for the exhaustion tests: makes syscall(SYS_clone) (how
 * echod's master forks a worker, for its exit signal) and fork() fail with
 * EAGAIN, as they do when RLIMIT_NPROC or the cgroup's pids.max is reached.
 *
 *   FAILFORK_EVERY=N   every Nth fork of the process fails
 *   FAILFORK_FILE=P    every fork fails while the file P exists
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

static bool should_fail(void) {
        static unsigned long calls;
        const char *every = getenv("FAILFORK_EVERY");
        const char *file = getenv("FAILFORK_FILE");

        calls++;
        if (every) {
                unsigned long n = strtoul(every, NULL, 10);
                if (n > 0 && calls % n == 0)
                        return true;
        }
        return file && *file && access(file, F_OK) == 0;
}

/* The real functions are looked up once, on the first call, which is the
 * master's: a symbol lookup in a worker would walk the libraries echod
 * leaves out of workers (src/echod/fork-trim.c). */
static pid_t (*real_fork)(void);
static long (*real_syscall)(long, ...);

pid_t fork(void) {
        if (!real_fork)
                real_fork = (pid_t (*)(void)) dlsym(RTLD_NEXT, "fork");
        if (should_fail()) {
                errno = EAGAIN;
                return -1;
        }
        if (!real_fork) {
                errno = ENOSYS;
                return -1;
        }
        return real_fork();
}

/* echod passes at most five arguments to syscall(): read no more than
 * were passed. */
long syscall(long number, ...) {
        long a[5];
        va_list ap;

        if (!real_syscall)
                real_syscall = (long (*)(long, ...)) dlsym(RTLD_NEXT, "syscall");

        va_start(ap, number);
        for (int i = 0; i < 5; i++)
                a[i] = va_arg(ap, long);
        va_end(ap);
        if ((number == SYS_clone || number == SYS_clone3) && should_fail()) {
                errno = EAGAIN;
                return -1;
        }
        if (!real_syscall) {
                errno = ENOSYS;
                return -1;
        }
        return real_syscall(number, a[0], a[1], a[2], a[3], a[4]);
}
