/* SPDX-License-Identifier: MIT */
/* Detaching from the terminal with a readiness pipe, and the pid file. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon.h"
#include "fd-util.h"

int daemon_detach(void) {
        int p[2];
        pid_t pid;

        if (pipe2(p, O_CLOEXEC) < 0)
                return -errno;
        pid = fork();
        if (pid < 0) {
                int r = -errno;
                safe_close(p[0]);
                safe_close(p[1]);
                return r;
        }
        if (pid > 0) {
                /* The starter: wait for the daemon's verdict. */
                unsigned char code;
                ssize_t n;

                safe_close(p[1]);
                (void) waitpid(pid, NULL, 0);   /* the middle process exits at once */
                do
                        n = read(p[0], &code, 1);
                while (n < 0 && errno == EINTR);
                if (n != 1) {
                        fprintf(stderr, "echod: the daemon exited during start-up\n");
                        _exit(1);
                }
                _exit(code);
        }

        safe_close(p[0]);
        if (setsid() < 0)
                _exit(1);
        pid = fork();
        if (pid < 0)
                _exit(1);
        if (pid > 0)
                _exit(0);       /* the middle process; the daemon is not a session leader */

        if (chdir("/") < 0)
                _exit(1);
        umask(022);
        return p[1];
}

void daemon_report(int fd, int exit_code) {
        unsigned char code = (unsigned char) exit_code;

        if (fd < 0)
                return;
        if (exit_code == 0) {
                int null = open("/dev/null", O_RDWR | O_CLOEXEC);
                if (null >= 0) {
                        (void) dup2(null, STDIN_FILENO);
                        (void) dup2(null, STDOUT_FILENO);
                        (void) dup2(null, STDERR_FILENO);
                        if (null > STDERR_FILENO)
                                safe_close(null);
                }
        }
        (void) loop_write(fd, &code, 1);
        safe_close(fd);
}

int pidfile_write(const char *path) {
        char buf[32];
        _cleanup_close_ int fd = -1;
        int n;

        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd < 0)
                return -errno;
        n = snprintf(buf, sizeof buf, "%d\n", (int) getpid());
        return loop_write(fd, buf, (size_t) n);
}
