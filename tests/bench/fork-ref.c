/* SPDX-License-Identifier: MIT */
/*
 * Reference points for the benchmark, not a server to run: the least a
 * fork-per-connection echo server can do. Accept, _Fork() (no atfork
 * handlers, as in echod), echo until EOF, _exit(); the kernel reaps the
 * children (SIGCHLD ignored). No limits, no logging, no bookkeeping.
 *
 * Built twice by tests/bench/run: "fork-ref" with libc only, and
 * "fork-ref-libs" also linked with libsystemd and libconfuse (and so with
 * everything libsystemd needs), as echod is, and, as echod does
 * (src/echod/fork-trim.c), marking those libraries MADV_DONTFORK so that
 * children do not get them, after running itself again with LD_BIND_NOW=1
 * so that no symbol is bound lazily: the floor for a process that must
 * link what echod links.
 * fork() and exit() cost more the more mappings a process has, and a
 * mapping left out still costs fork() a little.
 *
 * usage: fork-ref ADDR PORT
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>
#ifdef WITH_LIBS
#include <confuse.h>
#include <link.h>
#include <string.h>
#include <sys/mman.h>
#include <systemd/sd-daemon.h>

/* What echod leaves out of its workers when they log to stderr. */
static int leave_out(struct dl_phdr_info *info, size_t size, void *userdata) {
        static const char *const names[] = { "libconfuse.so.", "libcap.so.", "libgcrypt.so.", "libgpg-error.so.",
                                             "liblzma.so.", "libzstd.so.", "liblz4.so.", "libsystemd.so." };
        const char *base = strrchr(info->dlpi_name, '/');
        bool match = false;

        (void) size;
        (void) userdata;
        base = base ? base + 1 : info->dlpi_name;
        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
                match = match || strncmp(base, names[i], strlen(names[i])) == 0;
        for (unsigned i = 0; match && i < info->dlpi_phnum; i++) {
                const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
                uintptr_t start = (info->dlpi_addr + ph->p_vaddr) & ~(uintptr_t) 4095;
                uintptr_t end = (info->dlpi_addr + ph->p_vaddr + ph->p_memsz + 4095) & ~(uintptr_t) 4095;
                if (ph->p_type == PT_LOAD)
                        (void) madvise((void *) start, end - start, MADV_DONTFORK);
        }
        return 0;
}
#endif

int main(int argc, char **argv) {
        struct sockaddr_in a = { .sin_family = AF_INET };
        int l, one = 1;

        if (argc != 3 || inet_pton(AF_INET, argv[1], &a.sin_addr) != 1) {
                fprintf(stderr, "usage: fork-ref ADDR PORT\n");
                return 2;
        }
#ifdef WITH_LIBS
        const char *now = getenv("LD_BIND_NOW");
        if (!now || !*now) {
                (void) setenv("LD_BIND_NOW", "1", 1);
                (void) execv("/proc/self/exe", argv);
                perror("fork-ref: exec /proc/self/exe");
                return 1;
        }
        /* Use both libraries, so that --as-needed keeps them. */
        cfg_opt_t opts[] = { CFG_END() };
        cfg_free(cfg_init(opts, 0));
        (void) sd_listen_fds(0);
        (void) dl_iterate_phdr(leave_out, NULL);
#endif
        a.sin_port = htons((uint16_t) atoi(argv[2]));
        l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (l < 0 || setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
            bind(l, (struct sockaddr *) &a, sizeof a) < 0 || listen(l, 4096) < 0) {
                perror("fork-ref: listen");
                return 1;
        }
        signal(SIGCHLD, SIG_IGN);
        for (;;) {
                int fd = accept4(l, NULL, NULL, SOCK_CLOEXEC);
                if (fd < 0)
                        continue;
                pid_t pid = _Fork();
                if (pid == 0) {
                        char buf[16384];
                        ssize_t n;

                        close(l);
                        while ((n = read(fd, buf, sizeof buf)) > 0)
                                for (ssize_t off = 0; off < n;) {
                                        ssize_t w = write(fd, buf + off, (size_t) (n - off));
                                        if (w <= 0)
                                                _exit(1);
                                        off += w;
                                }
                        _exit(0);
                }
                close(fd);
        }
}
