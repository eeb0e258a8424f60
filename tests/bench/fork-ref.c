/* SPDX-License-Identifier: MIT */
/*
 * Reference points for the benchmark, not a server to run: the least a
 * fork-per-connection echo server can do. Accept, _Fork() (no atfork
 * handlers, as in echod), echo until EOF, _exit(); the kernel reaps the
 * children (SIGCHLD ignored). No limits, no logging, no bookkeeping.
 *
 * Built twice by tests/bench/run: "fork-ref" with libc only, and
 * "fork-ref-libs" also linked with libsystemd and libconfuse (and so with
 * everything libsystemd needs), which is what every process echod forks
 * from carries: fork() and exit() cost more the more mappings a process has.
 *
 * usage: fork-ref ADDR PORT
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>
#ifdef WITH_LIBS
#include <confuse.h>
#include <systemd/sd-daemon.h>
#endif

int main(int argc, char **argv) {
        struct sockaddr_in a = { .sin_family = AF_INET };
        int l, one = 1;

        if (argc != 3 || inet_pton(AF_INET, argv[1], &a.sin_addr) != 1) {
                fprintf(stderr, "usage: fork-ref ADDR PORT\n");
                return 2;
        }
#ifdef WITH_LIBS
        /* Use both libraries, so that --as-needed keeps them. */
        cfg_opt_t opts[] = { CFG_END() };
        cfg_free(cfg_init(opts, 0));
        (void) sd_listen_fds(0);
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
