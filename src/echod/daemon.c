/* SPDX-License-Identifier: MIT */
/* Detaching from the terminal with a readiness pipe, and the pid file. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon.h"
#include "fd-util.h"

/* True when LISTEN_PID names this process: systemd's sockets are ours. */
static bool sockets_passed_to_us(void) {
        const char *e = getenv("LISTEN_PID");
        char *end;
        long pid;

        if (!e || !*e)
                return false;
        errno = 0;
        pid = strtol(e, &end, 10);
        return errno == 0 && !*end && pid == (long) getpid();
}

int daemon_detach(bool *ret_starter) {
        bool pass_sockets = sockets_passed_to_us();
        int p[2];
        pid_t pid;

        *ret_starter = false;
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
                safe_close(p[0]);
                *ret_starter = true;
                if (n != 1) {
                        fprintf(stderr, "echod: the daemon exited during start-up\n");
                        return -ECHILD;
                }
                return code == 0 ? 0 : -ECHILD;
        }

        safe_close(p[0]);
        if (setsid() < 0)
                _exit(1);
        pid = fork();
        if (pid < 0)
                _exit(1);
        if (pid > 0)
                _exit(0);       /* the middle process; the daemon is not a session leader */

        /* Otherwise sd_listen_fds() would ignore the passed sockets, which
         * would stay open and unserved while echod binds its own. */
        if (pass_sockets) {
                char buf[24];
                snprintf(buf, sizeof buf, "%d", (int) getpid());
                if (setenv("LISTEN_PID", buf, 1) < 0)
                        _exit(1);
        }
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

/* The directory part of path ("." for a bare name, "/" for "/x"). */
static char *dir_of(const char *path) {
        const char *slash = strrchr(path, '/');

        if (!slash)
                return strdup(".");
        if (slash == path)
                return strdup("/");
        return strndup(path, (size_t) (slash - path));
}

/* Whether uid may unlink a file owned by root in a directory with st. */
static bool can_remove_in(const struct stat *st, uid_t uid, gid_t gid) {
        mode_t w;

        if (uid == 0)
                return true;
        if (st->st_uid == uid)
                w = S_IWUSR;
        else if (st->st_gid == gid)
                w = S_IWGRP;
        else
                w = S_IWOTH;
        if (!(st->st_mode & w))
                return false;
        return !(st->st_mode & S_ISVTX) || st->st_uid == uid;
}

int pidfile_prepare(const char *path, uid_t uid, gid_t gid) {
        _cleanup_free_ char *dir = dir_of(path);
        _cleanup_close_ int fd = -1;
        struct stat st;

        if (!dir)
                return -ENOMEM;
        if (mkdir(dir, 0755) < 0) {
                if (errno != EEXIST)
                        return -errno;
                /* Someone else's: never chowned, that could hand over a
                 * directory that others rely on. */
                if (stat(dir, &st) < 0)
                        return -errno;
                if (!S_ISDIR(st.st_mode))
                        return -ENOTDIR;
                return can_remove_in(&st, uid, gid) ? 0 : 1;
        }
        /* Ours, just made: O_NOFOLLOW, so that a symbolic link swapped in
         * meanwhile is not followed to chown its target. */
        fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        if ((uid != geteuid() || gid != getegid()) && fchown(fd, uid, gid) < 0)
                return -errno;
        return 0;
}

int pidfile_write(const char *path) {
        char buf[32];
        _cleanup_close_ int fd = -1;
        int n;

        /* In a directory the run user owns, a file left there could be a
         * hard link to any file: never open an existing one. */
        if (unlink(path) < 0 && errno != ENOENT)
                return -errno;
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (fd < 0)
                return -errno;
        n = snprintf(buf, sizeof buf, "%d\n", (int) getpid());
        return loop_write(fd, buf, (size_t) n);
}

void pidfile_remove(const char *path) {
        _cleanup_close_ int fd = -1;
        char buf[32];
        ssize_t n;

        fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return;
        n = read(fd, buf, sizeof buf - 1);
        if (n <= 0)
                return;
        buf[n] = '\0';
        if (strtol(buf, NULL, 10) == (long) getpid())
                (void) unlink(path);
}
