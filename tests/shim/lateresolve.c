/* SPDX-License-Identifier: MIT */
/*
 * LD_PRELOAD shim for test_forktrim.py: makes every worker resolve C
 * library functions that nothing in the master has called, as any code a
 * worker runs may (a preloaded allocator, a libc function reached for the
 * first time). The master leaves its own libraries out of workers; a
 * symbol lookup in a worker must never touch them.
 *
 * It interposes prctl(): when a process other than the one that loaded the
 * shim (a worker) sets its name, it calls asprintf() with a 70-byte result
 * (glibc then grows the buffer with realloc() through its own PLT),
 * strverscmp() and fnmatch(), then reports to stderr, which workers keep:
 *
 *   lateresolve: pid P resolved late: <the 70-byte string> libconfuse=<0|1>
 *
 * libconfuse=1 when libconfuse.so is still mapped in the worker.
 * Built with -z lazy, so that its own calls are bound on first use too.
 */
#include <dlfcn.h>
#include <fnmatch.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

static int (*real_prctl)(int, ...);
static pid_t loader;

/* Done in the master, by the constructor or by an earlier library's
 * constructor calling prctl() (libcap's does): a lookup in a worker is what
 * the test is about, and it must come from probe(), not from the shim's own
 * plumbing. */
__attribute__((constructor)) static void init(void) {
        if (!real_prctl)
                real_prctl = (int (*)(int, ...)) dlsym(RTLD_NEXT, "prctl");
        if (!loader)
                loader = getpid();
}

static int libconfuse_mapped(void) {
        char line[512];
        int found = 0;
        FILE *f = fopen("/proc/self/maps", "re");

        if (!f)
                return -1;
        while (!found && fgets(line, sizeof line, f))
                found = strstr(line, "/libconfuse.so.") != NULL;
        fclose(f);
        return found;
}

static void probe(void) {
        char *s = NULL;
        pid_t pid = getpid();
        int n;

        n = asprintf(&s, "%-20s pid %10d %-33s|", "late-bound-asprintf", (int) pid, "70 bytes from a worker");
        if (n != 70 || strverscmp("echod-1.9", "echod-1.10") >= 0 ||
            fnmatch("echod: w*", "echod: worker", 0) != 0) {
                dprintf(STDERR_FILENO, "lateresolve: pid %d: wrong results (%d)\n", (int) pid, n);
                free(s);
                return;
        }
        dprintf(STDERR_FILENO, "lateresolve: pid %d resolved late: %s libconfuse=%d\n",
                (int) pid, s, libconfuse_mapped());
        free(s);
}

int prctl(int option, ...) {
        unsigned long a[4];
        va_list ap;

        va_start(ap, option);
        for (int i = 0; i < 4; i++)
                a[i] = va_arg(ap, unsigned long);
        va_end(ap);
        init();
        if (option == PR_SET_NAME && getpid() != loader)
                probe();
        return real_prctl(option, a[0], a[1], a[2], a[3]);
}
