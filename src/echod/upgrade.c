/* SPDX-License-Identifier: MIT */
/* The in-place upgrade (see upgrade.h). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "children.h"
#include "echod-config.h"
#include "fd-util.h"
#include "fdstore.h"
#include "master.h"
#include "notify.h"
#include "status.h"
#include "upgrade.h"

extern char **environ;

#define UPGRADE_MAGIC "echodUPG"
#define UPGRADE_VERSION 1
#define UPGRADE_ENV "ECHOD_UPGRADE_FD"
/* After the listeners: the memfd, the master's and the workers' ends of the report socket. */
#define UPGRADE_EXTRA_FDS 3
#define CHECK_TIMEOUT_USEC (10 * USEC_PER_SEC)

/* The memfd: this header, then n_records records of record_size bytes. A
 * later version may append fields to either; readers take what they know. */
struct upgrade_header {
        char magic[8];
        uint32_t version;
        uint32_t header_size;
        uint32_t record_size;
        uint32_t n_records;
        uint64_t total_size;            /* header_size + n_records * record_size */
        int32_t report_fd;
        int32_t report_worker_fd;
        uint64_t served, failed, bytes_echoed, start_realtime, reloads_ok, reloads_failed;
        uint32_t n_closed, n_refused;
        uint64_t closed[UPGRADE_COUNTERS_MAX];
        uint64_t refused[UPGRADE_COUNTERS_MAX];
};

static char **saved_argv;

void upgrade_set_argv(char **argv) {
        saved_argv = argv;
}

int upgrade_fds_end(int first) {
        const char *e = getenv(UPGRADE_ENV);

        return e && atoi(e) == first ? first + UPGRADE_EXTRA_FDS : first;
}

/* ---- the new image ---- */

int upgrade_load(struct upgrade_state *ret, char *err, size_t errsize) {
        struct upgrade_header h;
        const char *e = getenv(UPGRADE_ENV);
        _cleanup_close_ int fd = -1;
        struct stat st;
        char *end;
        long v;
        int seals;

        *ret = (struct upgrade_state) { .report_fd = -1, .report_worker_fd = -1 };
        if (!e)
                return 0;
        errno = 0;
        v = strtol(e, &end, 10);
        (void) unsetenv(UPGRADE_ENV);
        if (errno || *end || v < 3 || v > INT32_MAX) {
                snprintf(err, errsize, "$" UPGRADE_ENV " is not a descriptor number");
                return -EBADMSG;
        }
        fd = (int) v;
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
                snprintf(err, errsize, "descriptor %d is not the previous image's memfd", fd);
                return -EBADMSG;
        }
        seals = fcntl(fd, F_GET_SEALS);
        if (seals < 0 || (seals & (F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW)) != (F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW)) {
                snprintf(err, errsize, "the memfd is not sealed");
                return -EBADMSG;
        }
        if ((size_t) st.st_size < sizeof h || pread(fd, &h, sizeof h, 0) != (ssize_t) sizeof h) {
                snprintf(err, errsize, "the memfd is too short for its header (%jd bytes)", (intmax_t) st.st_size);
                return -EBADMSG;
        }
        if (memcmp(h.magic, UPGRADE_MAGIC, sizeof h.magic) != 0) {
                snprintf(err, errsize, "the memfd has no echod upgrade magic");
                return -EBADMSG;
        }
        if (h.version != UPGRADE_VERSION || h.header_size < sizeof h || h.record_size < sizeof(struct upgrade_record)) {
                snprintf(err, errsize, "the memfd has format version %" PRIu32 " (header %" PRIu32 ", record %" PRIu32
                         " bytes); this echod reads version %d", h.version, h.header_size, h.record_size, UPGRADE_VERSION);
                return -EBADMSG;
        }
        if (h.total_size != (uint64_t) st.st_size ||
            h.total_size != (uint64_t) h.header_size + (uint64_t) h.n_records * h.record_size) {
                snprintf(err, errsize, "the memfd's length does not match: %jd bytes, header says %" PRIu64
                         " for %" PRIu32 " workers", (intmax_t) st.st_size, h.total_size, h.n_records);
                return -EBADMSG;
        }
        if (fstat(h.report_fd, &st) < 0 || !S_ISSOCK(st.st_mode) ||
            fstat(h.report_worker_fd, &st) < 0 || !S_ISSOCK(st.st_mode)) {
                snprintf(err, errsize, "the report socket (descriptors %d and %d) was not passed", h.report_fd, h.report_worker_fd);
                return -EBADMSG;
        }

        ret->workers = calloc(h.n_records ? h.n_records : 1, sizeof *ret->workers);
        if (!ret->workers) {
                snprintf(err, errsize, "out of memory for %" PRIu32 " workers", h.n_records);
                return -EBADMSG;
        }
        for (uint32_t i = 0; i < h.n_records; i++)
                if (pread(fd, &ret->workers[i], sizeof ret->workers[i],
                          (off_t) (h.header_size + (uint64_t) i * h.record_size)) != (ssize_t) sizeof ret->workers[i]) {
                        snprintf(err, errsize, "cannot read worker %" PRIu32 " from the memfd: %s", i, strerror(errno));
                        upgrade_state_done(ret);
                        return -EBADMSG;
                }
        ret->n_workers = h.n_records;
        ret->report_fd = h.report_fd;
        ret->report_worker_fd = h.report_worker_fd;
        ret->served = h.served;
        ret->failed = h.failed;
        ret->bytes_echoed = h.bytes_echoed;
        ret->start_realtime = h.start_realtime;
        ret->reloads_ok = h.reloads_ok;
        ret->reloads_failed = h.reloads_failed;
        for (uint32_t i = 0; i < h.n_closed && i < UPGRADE_COUNTERS_MAX; i++)
                ret->closed[i] = h.closed[i];
        for (uint32_t i = 0; i < h.n_refused && i < UPGRADE_COUNTERS_MAX; i++)
                ret->refused[i] = h.refused[i];
        return 1;
}

void upgrade_state_done(struct upgrade_state *s) {
        free(s->workers);
        s->workers = NULL;
        s->n_workers = 0;
}

void upgrade_adopt(struct master *m, const struct upgrade_state *s) {
        uint64_t now = now_usec(CLOCK_MONOTONIC);
        size_t adopted = 0, strangers = 0, uncounted = 0;

        for (size_t i = 0; i < s->n_workers; i++) {
                const struct upgrade_record *rec = &s->workers[i];
                siginfo_t si = {};
                pid_t pid = rec->pid;
                struct child *ch;

                /* Only our own children: WNOWAIT leaves an exited one for
                 * the reap that writes its record. */
                if (pid <= 0 || waitid(P_PID, (id_t) pid, &si, WEXITED | WNOHANG | WNOWAIT | __WALL) < 0) {
                        strangers++;
                        continue;
                }
                if (htab_put(&m->children, &pid, (void **) &ch) < 0) {
                        uncounted++;
                        continue;
                }
                *ch = (struct child) {
                        .pid = pid,
                        .port = rec->remote_port,
                        .remote = rec->remote,
                        .start = rec->start,
                        .local_port = rec->local_port,
                        /* A reason this image does not know reads as no report. */
                        .reported = rec->reported && rec->reason < _CLOSE_REASON_WORKER_MAX,
                        .reason = rec->reason,
                        .error = rec->error,
                        .bytes = rec->bytes,
                        .proxied = rec->has_proxy,
                        .proxy_port = rec->proxy_port,
                        .proxy = rec->proxy,
                };
                ch->key = sources_key(&m->sources, &ch->remote);
                if (!ch->reported) {
                        struct source *src;
                        if (sources_acquire(&m->sources, &ch->key, now, &src) >= 0)
                                src->active++;
                        else
                                uncounted++;
                }
                adopted++;
        }
        m->served = s->served;
        m->failed = s->failed;
        m->bytes_echoed = s->bytes_echoed;
        m->reloads_ok = s->reloads_ok;
        m->reloads_failed = s->reloads_failed;
        if (s->start_realtime)
                m->start_realtime = s->start_realtime;
        for (size_t i = 0; i < _CLOSE_REASON_MAX && i < UPGRADE_COUNTERS_MAX; i++)
                m->closed[i] = s->closed[i];
        for (size_t i = 0; i < _REFUSED_MAX && i < UPGRADE_COUNTERS_MAX; i++)
                m->refused[i] = s->refused[i];

        if (strangers > 0)
                log_warning("%zu worker%s named by the previous image %s not children of this process: not taken over",
                            strangers, strangers == 1 ? "" : "s", strangers == 1 ? "is" : "are");
        if (uncounted > 0)
                log_warning("%zu taken-over worker%s could not be counted under %s source (out of memory or "
                            "max_sources): per-source limits do not see %s", uncounted, uncounted == 1 ? "" : "s",
                            uncounted == 1 ? "its" : "their", uncounted == 1 ? "it" : "them");
        log_struct(LOG_NOTICE, LOG_MESSAGE_ID(ECHOD_MID_UPGRADED),
                   "ADOPTED=%zu", adopted,
                   LOG_MESSAGE("upgraded in place to echod " ECHOD_VERSION ": took over %zu running connection%s and %zu listener%s",
                               adopted, adopted == 1 ? "" : "s", m->n_listeners, m->n_listeners == 1 ? "" : "s"));
}

/* ---- the old image ---- */

/* The binary this process runs from: after a package upgrade replaced it,
 * the kernel names the old, unlinked file "PATH (deleted)", and PATH is the
 * new one. */
static int exe_path(char *buf, size_t size) {
        static const char deleted[] = " (deleted)";
        ssize_t n = readlink("/proc/self/exe", buf, size - 1);

        if (n < 0)
                return -errno;
        if ((size_t) n >= size - 1)
                return -ENAMETOOLONG;
        buf[n] = '\0';
        if ((size_t) n > strlen(deleted) && strcmp(buf + n - strlen(deleted), deleted) == 0)
                buf[n - strlen(deleted)] = '\0';
        return 0;
}

/* Runs "EXE --test-config --config PATH" and waits for it, for at most
 * CHECK_TIMEOUT_USEC. Its errors go to our stderr (the journal under
 * systemd). Returns 0 when it exited 0, otherwise -errno or 1 with err. */
static int check_with(const char *exe, const char *config, char *err, size_t errsize) {
        char *argv[] = { (char *) exe, (char *) "--test-config", (char *) "--config", (char *) config, NULL };
        posix_spawn_file_actions_t fa;
        uint64_t deadline = now_usec(CLOCK_MONOTONIC) + CHECK_TIMEOUT_USEC;
        siginfo_t si = {};
        pid_t pid;
        int r;

        if (posix_spawn_file_actions_init(&fa) != 0)
                return -ENOMEM;
        r = posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
        if (r == 0)
                r = posix_spawn(&pid, exe, &fa, NULL, argv, environ);
        posix_spawn_file_actions_destroy(&fa);
        if (r != 0)
                return -r;
        for (;;) {
                if (waitid(P_PID, (id_t) pid, &si, WEXITED | WNOHANG) < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (si.si_pid == pid)
                        break;
                if (now_usec(CLOCK_MONOTONIC) >= deadline) {
                        (void) kill(pid, SIGKILL);
                        (void) waitid(P_PID, (id_t) pid, &si, WEXITED);
                        snprintf(err, errsize, "%s --test-config did not finish within %u s", exe,
                                 (unsigned) (CHECK_TIMEOUT_USEC / USEC_PER_SEC));
                        return 1;
                }
                (void) nanosleep(&(struct timespec) { .tv_nsec = 5 * 1000 * 1000 }, NULL);
        }
        if (si.si_code == CLD_EXITED && si.si_status == 0)
                return 0;
        if (si.si_code == CLD_EXITED)
                snprintf(err, errsize, "%s --test-config --config %s exited with status %d%s", exe, config, si.si_status,
                         si.si_status == 6 ? " (invalid configuration)" : "");
        else
                snprintf(err, errsize, "%s --test-config was killed by signal %d", exe, si.si_status);
        return 1;
}

static void record_from_child(struct upgrade_record *rec, const struct child *ch) {
        *rec = (struct upgrade_record) {
                .pid = ch->pid,
                .remote_port = ch->port,
                .local_port = ch->local_port,
                .remote = ch->remote,
                .reported = ch->reported,
                .reason = ch->reason,
                .error = ch->error,
                .bytes = ch->bytes,
                .start = ch->start,
                .has_proxy = ch->proxied,
                .proxy_port = ch->proxy_port,
                .proxy = ch->proxy,
        };
}

/* The sealed memfd with the workers and counters; the report socket's ends
 * are named as the descriptors they will have in the new image. */
static int state_memfd(struct master *m, int report_fd, int report_worker_fd, int *ret) {
        size_t n = master_active(m), k = 0;
        size_t size = sizeof(struct upgrade_header) + n * sizeof(struct upgrade_record);
        _cleanup_free_ unsigned char *buf = calloc(1, size);
        _cleanup_close_ int fd = -1;
        struct upgrade_header *h = (struct upgrade_header *) buf;
        const struct child *ch;
        size_t i = 0;
        int r;

        if (!buf)
                return -ENOMEM;
        *h = (struct upgrade_header) {
                .version = UPGRADE_VERSION,
                .header_size = sizeof *h,
                .record_size = sizeof(struct upgrade_record),
                .n_records = (uint32_t) n,
                .total_size = size,
                .report_fd = report_fd,
                .report_worker_fd = report_worker_fd,
                .served = m->served,
                .failed = m->failed,
                .bytes_echoed = m->bytes_echoed,
                .start_realtime = m->start_realtime,
                .reloads_ok = m->reloads_ok,
                .reloads_failed = m->reloads_failed,
                .n_closed = _CLOSE_REASON_MAX < UPGRADE_COUNTERS_MAX ? _CLOSE_REASON_MAX : UPGRADE_COUNTERS_MAX,
                .n_refused = _REFUSED_MAX < UPGRADE_COUNTERS_MAX ? _REFUSED_MAX : UPGRADE_COUNTERS_MAX,
        };
        memcpy(h->magic, UPGRADE_MAGIC, sizeof h->magic);
        for (uint32_t j = 0; j < h->n_closed; j++)
                h->closed[j] = m->closed[j];
        for (uint32_t j = 0; j < h->n_refused; j++)
                h->refused[j] = m->refused[j];
        while ((ch = htab_next(&m->children, &i)) && k < n)
                record_from_child((struct upgrade_record *) (buf + sizeof *h) + k++, ch);
        /* A test hook: a memfd the new image must refuse. */
        if (getenv("ECHOD_UPGRADE_TEST_CORRUPT"))
                h->total_size++;

        fd = memfd_create("echod-upgrade", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        if (fd < 0)
                return -errno;
        r = loop_write(fd, buf, size);
        if (r < 0)
                return r;
        if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0)
                return -errno;
        *ret = TAKE_FD(fd);
        return 0;
}

static bool has_prefix_var(const char *s, const char *name) {
        size_t n = strlen(name);
        return strncmp(s, name, n) == 0 && s[n] == '=';
}

/* Our environment for the new image: LISTEN_* and ECHOD_UPGRADE_FD of
 * our own, the rest as it is. */
static char **exec_env(struct master *m, int memfd_no) {
        static const char *const ours[] = { "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", UPGRADE_ENV };
        size_t n = 0, k = 0, names_len = 1;
        char **env;
        char *names;

        while (environ[n])
                n++;
        env = calloc(n + 5, sizeof *env);
        for (size_t i = 0; i < m->n_listeners; i++)
                names_len += FDSTORE_NAME_MAX + 1;
        names = malloc(names_len + sizeof "LISTEN_FDNAMES=");
        if (!env || !names) {
                free(env);
                free(names);
                return NULL;
        }
        for (size_t i = 0; i < n; i++) {
                bool skip = false;
                for (size_t j = 0; j < ARRAY_SIZE(ours); j++)
                        skip = skip || has_prefix_var(environ[i], ours[j]);
                if (!skip)
                        env[k++] = environ[i];
        }
        strcpy(names, "LISTEN_FDNAMES=");
        for (size_t i = 0; i < m->n_listeners; i++) {
                char name[FDSTORE_NAME_MAX];
                const struct listener *l = &m->listeners[i];
                /* A socket unit's socket goes by its kind's bare name: the
                 * new image then sees it as socket activated, as we do. */
                if (m->socket_activated)
                        snprintf(name, sizeof name, "%s", listener_kind_name(l->kind));
                else
                        fdstore_name(l, name, sizeof name);
                if (i > 0)
                        strcat(names, ":");
                strcat(names, name);
        }
        env[k++] = names;
        if (asprintf(&env[k], "LISTEN_FDS=%zu", m->n_listeners) >= 0)
                k++;
        if (asprintf(&env[k], "LISTEN_PID=%d", (int) getpid()) >= 0)
                k++;
        if (asprintf(&env[k], UPGRADE_ENV "=%d", memfd_no) >= 0)
                k++;
        env[k] = NULL;
        return env;
}

static void exec_env_free(char **env) {
        size_t n = 0;

        if (!env)
                return;
        while (env[n])
                n++;
        /* The last four are ours; exec_env() left out every other copy of them. */
        for (size_t i = n >= 4 ? n - 4 : 0; i < n; i++)
                if (has_prefix_var(env[i], "LISTEN_FDNAMES") || has_prefix_var(env[i], "LISTEN_FDS") ||
                    has_prefix_var(env[i], "LISTEN_PID") || has_prefix_var(env[i], UPGRADE_ENV))
                        free(env[i]);
        free(env);
}

/* Our arguments, then the configuration and pid file as absolute paths
 * (a detached echod runs in "/"): the last of an option counts. */
static char **exec_argv(struct master *m) {
        size_t n = 0, k = 0;
        char **argv;

        while (saved_argv[n])
                n++;
        argv = calloc(n + 5, sizeof *argv);
        if (!argv)
                return NULL;
        for (size_t i = 0; i < n; i++)
                argv[k++] = saved_argv[i];
        argv[k++] = (char *) "--config";
        argv[k++] = (char *) m->args->config_path;
        if (m->args->pid_file) {
                argv[k++] = (char *) "--pid-file";
                argv[k++] = (char *) m->args->pid_file;
        }
        return argv;
}

/*
 * Puts the listeners at 3, 4, ..., then the memfd and the report socket's
 * ends, without CLOEXEC, and execve()s. Whatever held those numbers is
 * saved above them first and put back if execve() fails, so that the old
 * image runs on untouched. Returns -errno only (on success it does not).
 */
static int exec_new_image(struct master *m, const char *exe, int memfd) {
        const int n = (int) m->n_listeners, end = 3 + n + UPGRADE_EXTRA_FDS;
        _cleanup_free_ int *saved = calloc((size_t) (end - 3), sizeof *saved);
        _cleanup_free_ int *src = calloc((size_t) (end - 3), sizeof *src);
        _cleanup_free_ char **argv = exec_argv(m);
        char **env = NULL;
        int r = 0;

        if (!saved || !src || !argv)
                return -ENOMEM;
        /* -2: not looked at yet, -1: was free. */
        for (int i = 0; i < end - 3; i++)
                saved[i] = -2;
        for (int i = 0; i < end - 3; i++) {
                saved[i] = -1;
                if (fcntl(3 + i, F_GETFD) < 0)
                        continue;       /* free */
                saved[i] = fcntl(3 + i, F_DUPFD_CLOEXEC, end);
                if (saved[i] < 0) {
                        r = -errno;
                        goto restore;
                }
        }
        for (int i = 0; i < n; i++)
                src[i] = m->listeners[i].fd;
        src[n] = memfd;
        src[n + 1] = m->report_fd;
        src[n + 2] = m->report_worker_fd;
        for (int i = 0; i < end - 3; i++)
                if (src[i] >= 3 && src[i] < end)
                        src[i] = saved[src[i] - 3];

        env = exec_env(m, 3 + n);
        if (!env) {
                r = -ENOMEM;
                goto restore;
        }
        for (int i = 0; i < end - 3; i++)
                if (dup2(src[i], 3 + i) < 0) {
                        r = -errno;
                        goto restore;
                }
        (void) execve(exe, argv, env);
        r = -errno;

restore:
        for (int i = 0; i < end - 3; i++) {
                if (saved[i] == -2)
                        continue;
                if (saved[i] == -1) {
                        (void) close(3 + i);
                        continue;
                }
                (void) dup2(saved[i], 3 + i);
                (void) fd_set_cloexec(3 + i, true);
                (void) close(saved[i]);
        }
        exec_env_free(env);
        return r;
}

static void upgrade_failed(struct master *m, const char *why) {
        log_struct(LOG_ERR, LOG_MESSAGE_ID(ECHOD_MID_UPGRADE_FAILED),
                   LOG_MESSAGE("upgrade failed: %s; still serving with this image", why));
        m->upgrades_failed++;
        status_send(m, now_usec(CLOCK_MONOTONIC));
        (void) notify_send("READY=1");
}

void master_upgrade(struct master *m) {
        uint64_t now = now_usec(CLOCK_MONOTONIC);
        char exe[4096], err[1024 + sizeof exe];
        _cleanup_close_ int memfd = -1;
        int r;

        (void) notify_send("RELOADING=1\nSTATUS=Upgrading in place\nMONOTONIC_USEC=%" PRIu64, now);
        if (!saved_argv) {
                upgrade_failed(m, "the command line was not kept");
                return;
        }
        r = exe_path(exe, sizeof exe);
        if (r < 0) {
                errno = -r;
                snprintf(err, sizeof err, "cannot tell which binary runs (/proc/self/exe): %m");
                upgrade_failed(m, err);
                return;
        }
        if (access(exe, X_OK) < 0) {
                snprintf(err, sizeof err, "%s is not executable: %s", exe, strerror(errno));
                upgrade_failed(m, err);
                return;
        }
        r = check_with(exe, m->args->config_path, err, sizeof err);
        if (r < 0) {
                errno = -r;
                snprintf(err, sizeof err, "cannot run %s --test-config: %m", exe);
        }
        if (r != 0) {
                upgrade_failed(m, err);
                return;
        }

        /* The records held back so far are counted in a summary now: the
         * new image starts a budget of its own. */
        status_flush_summary(m, now, true);
        r = state_memfd(m, 3 + (int) m->n_listeners + 1, 3 + (int) m->n_listeners + 2, &memfd);
        if (r < 0) {
                errno = -r;
                snprintf(err, sizeof err, "cannot write the table of running workers to a memfd: %m");
                upgrade_failed(m, err);
                return;
        }
        log_struct(LOG_NOTICE, LOG_MESSAGE_ID(ECHOD_MID_UPGRADING),
                   "BINARY=%s", exe,
                   LOG_MESSAGE("received SIGUSR2: upgrading in place to %s, handing over %u running connection%s "
                               "and %zu listener%s", exe, master_active(m), master_active(m) == 1 ? "" : "s",
                               m->n_listeners, m->n_listeners == 1 ? "" : "s"));
        /* The UDP worker is not handed over: the new image starts its own on
         * the same sockets, where datagrams wait meanwhile. */
        udp_summary(m, now, true);
        udp_stop(m);
        r = exec_new_image(m, exe, memfd);
        udp_start(m, now_usec(CLOCK_MONOTONIC));
        errno = -r;
        snprintf(err, sizeof err, "cannot execute %s: %m", exe);
        upgrade_failed(m, err);
}

/*
 * Connections waiting for their PROXY header are the master's own
 * descriptors, which execve() would close: the upgrade waits until each has
 * its header or its proxy_timeout is over. Meanwhile no listener is watched
 * (new connections wait in the backlogs, which the new image takes over).
 */
void upgrade_request(struct master *m) {
        if (m->proxy.n > 0) {
                if (!m->upgrade_waiting)
                        log_info("SIGUSR2: the in-place upgrade waits for %u connection%s PROXY header%s "
                                 "(at most proxy_timeout); new connections wait in the backlog",
                                 m->proxy.n, m->proxy.n == 1 ? "'s" : "s'", m->proxy.n == 1 ? "" : "s");
                m->upgrade_waiting = true;
                (void) master_watch_listeners(m, false);
                return;
        }
        m->upgrade_waiting = false;
        master_upgrade(m);
        /* Still here: the upgrade did not happen. */
        if (!m->stopping && !m->paused_until)
                (void) master_watch_listeners(m, true);
}

void upgrade_retry(struct master *m) {
        if (m->stopping)
                m->upgrade_waiting = false;
        else if (m->proxy.n == 0)
                upgrade_request(m);
}
