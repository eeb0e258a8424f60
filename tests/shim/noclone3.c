/* SPDX-License-Identifier: MIT */
/*
 * LD_PRELOAD shim for test_activation.py: makes syscall(SYS_clone3) fail
 * with ENOSYS, as systemd's seccomp filter does under RestrictNamespaces=,
 * so that echod creates its workers the other way. Every other call goes
 * through.
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <sys/syscall.h>

static long (*real_syscall)(long, ...);

/* Resolved at load time: workers must not look symbols up. */
__attribute__((constructor)) static void init(void) {
        real_syscall = (long (*)(long, ...)) dlsym(RTLD_NEXT, "syscall");
}

/* echod passes at most five arguments to syscall(). */
long syscall(long number, ...) {
        long a[5];
        va_list ap;

        va_start(ap, number);
        for (int i = 0; i < 5; i++)
                a[i] = va_arg(ap, long);
        va_end(ap);
        if (number == SYS_clone3 || !real_syscall) {
                errno = ENOSYS;
                return -1;
        }
        return real_syscall(number, a[0], a[1], a[2], a[3], a[4]);
}
