/* SPDX-License-Identifier: MIT */
/*
 * LD_PRELOAD shim that makes one system call that echod makes through
 * syscall() fail, as a seccomp filter or a security module may:
 *
 *   FAILSYSCALL=capset   capset() fails with EPERM (a worker's capability drop; test_caps.py)
 *   FAILSYSCALL=clone3   clone3() fails with ENOSYS (as systemd's filter under
 *                        RestrictNamespaces= does; test_activation.py)
 *   FAILSYSCALL=upgrade-execve
 *                        the execve() of SIGUSR2's in-place upgrade (the one
 *                        whose environment names ECHOD_UPGRADE_FD) fails
 *                        with ENOMEM, as when memory runs out (test_upgrade.py)
 *
 * Every other call goes through.
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static long (*real_syscall)(long, ...);
static int (*real_execve)(const char *, char *const[], char *const[]);
static int fail_upgrade_execve;
static long fail_number = -1;
static int fail_errno;

/* Resolved at load time: workers must not look symbols up. */
__attribute__((constructor)) static void init(void) {
        const char *which = getenv("FAILSYSCALL");

        real_syscall = (long (*)(long, ...)) dlsym(RTLD_NEXT, "syscall");
        real_execve = (int (*)(const char *, char *const[], char *const[])) dlsym(RTLD_NEXT, "execve");
        fail_upgrade_execve = which && strcmp(which, "upgrade-execve") == 0;
        if (which && strcmp(which, "capset") == 0) {
                fail_number = SYS_capset;
                fail_errno = EPERM;
        } else if (which && strcmp(which, "clone3") == 0) {
                fail_number = SYS_clone3;
                fail_errno = ENOSYS;
        }
}

/* echod passes at most five arguments to syscall(): read no more than
 * were passed. */
long syscall(long number, ...) {
        long a[5];
        va_list ap;

        va_start(ap, number);
        for (int i = 0; i < 5; i++)
                a[i] = va_arg(ap, long);
        va_end(ap);
        if (number == fail_number) {
                errno = fail_errno;
                return -1;
        }
        if (!real_syscall) {
                errno = ENOSYS;
                return -1;
        }
        return real_syscall(number, a[0], a[1], a[2], a[3], a[4]);
}

int execve(const char *path, char *const argv[], char *const envp[]) {
        for (size_t i = 0; fail_upgrade_execve && envp && envp[i]; i++)
                if (strncmp(envp[i], "ECHOD_UPGRADE_FD=", 17) == 0) {
                        errno = ENOMEM;
                        return -1;
                }
        if (!real_execve) {
                errno = ENOSYS;
                return -1;
        }
        return real_execve(path, argv, envp);
}
