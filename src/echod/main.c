/* SPDX-License-Identifier: MIT */
/* Command line, start-up wiring, and the one place that maps errors to exit codes. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "config.h"
#include "fd-util.h"
#include "daemon.h"
#include "echod-config.h"
#include "fd-util.h"
#include "log.h"
#include "master.h"
#include "privs.h"
#include "proctitle.h"
#include "upgrade.h"
#include "usage.h"
#include "worker.h"

#define EXIT_RUNTIME 1
#define EXIT_NOTCONFIGURED 6

/* Besides 0 and -errno, the results that have exit statuses of their own;
 * each was reported where it was found. */
enum {
        MAIN_DONE = 1,                  /* --help or --version answered */
        MAIN_USAGE = EXIT_USAGE,        /* bad command line: usage_error()'s result */
        MAIN_INVALID_CONFIG,            /* the configuration is invalid or unreadable */
};

enum {
        ARG_INETD = 0x100,
        ARG_LOG_TARGET,
};

struct options {
        const char *config_path;
        const char *pid_file;           /* NULL: the default when detaching, none in the foreground */
        int log_level;                  /* -1 = the config's */
        enum log_target log_target;
        bool foreground, test, dump, inetd;
        bool stderr_was_client;         /* stderr was the connection: now /dev/null */
};

static void help(void) {
        printf("Usage: echod [OPTIONS]\n"
               "RFC 862 TCP echo daemon: one worker process per connection.\n\n"
               "  -c, --config FILE      configuration file (default %s)\n"
               "  -f, --foreground       do not detach (use this under systemd)\n"
               "  -t, --test-config      check the configuration and exit (0 = OK, 6 = invalid)\n"
               "  -T, --dump-config      print the effective configuration and exit\n"
               "  -p, --pid-file FILE    pid file (default %s when detaching; none in the foreground)\n"
               "  -l, --log-level LEVEL  err, warning, notice, info or debug (overrides log_level)\n"
               "      --log-target T     auto, journal or stderr (default auto)\n"
               "      --inetd            serve one connection on standard input and exit\n"
               "  -h, --help             show this help\n"
               "  -V, --version          show the version\n\n"
               "Exit status: 0 success, 1 runtime failure, 2 bad usage, 6 invalid configuration.\n"
               "See echod(8) and echod.conf(5).\n",
               ECHOD_DEFAULT_CONFIG, ECHOD_DEFAULT_PIDFILE);
}

/* Returns 0 to run, MAIN_DONE or MAIN_USAGE. */
static int parse_argv(int argc, char *argv[], struct options *o) {
        static const struct option options[] = {
                { "config", required_argument, NULL, 'c' },
                { "foreground", no_argument, NULL, 'f' },
                { "test-config", no_argument, NULL, 't' },
                { "dump-config", no_argument, NULL, 'T' },
                { "pid-file", required_argument, NULL, 'p' },
                { "log-level", required_argument, NULL, 'l' },
                { "log-target", required_argument, NULL, ARG_LOG_TARGET },
                { "inetd", no_argument, NULL, ARG_INETD },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, 'V' },
                {}
        };
        int c, r;

        while ((c = getopt_long(argc, argv, "c:ftTp:l:hV", options, NULL)) >= 0) {
                switch (c) {
                case 'c':
                        if (!*optarg)
                                return usage_error("echod", "--config needs a file name");
                        o->config_path = optarg;
                        break;
                case 'f':
                        o->foreground = true;
                        break;
                case 't':
                        o->test = true;
                        break;
                case 'T':
                        o->dump = true;
                        break;
                case 'p':
                        if (!*optarg)
                                return usage_error("echod", "--pid-file needs a file name");
                        o->pid_file = optarg;
                        break;
                case 'l':
                        r = log_level_from_string(optarg);
                        if (r < 0)
                                return usage_error("echod", "invalid log level '%s': expected err, warning, notice, info or debug", optarg);
                        o->log_level = r;
                        break;
                case ARG_LOG_TARGET:
                        r = log_target_from_string(optarg);
                        if (r < 0)
                                return usage_error("echod", "invalid log target '%s': expected auto, journal or stderr", optarg);
                        o->log_target = (enum log_target) r;
                        break;
                case ARG_INETD:
                        o->inetd = true;
                        break;
                case 'h':
                        help();
                        return MAIN_DONE;
                case 'V':
                        printf("echod %s\n", ECHOD_VERSION);
                        return MAIN_DONE;
                default:
                        return MAIN_USAGE;      /* getopt printed the problem */
                }
        }
        if (optind < argc)
                return usage_error("echod", "unexpected argument '%s'", argv[optind]);
        if ((o->test || o->dump) && o->inetd)
                return usage_error("echod", "--inetd cannot be combined with --test-config or --dump-config");
        return 0;
}

/* The one place results become exit statuses (echod(8), EXIT STATUS). */
static int exit_status(int r) {
        switch (r) {
        case 0:
        case MAIN_DONE:
                return EXIT_SUCCESS;
        case MAIN_USAGE:
                return EXIT_USAGE;
        case MAIN_INVALID_CONFIG:
                return EXIT_NOTCONFIGURED;
        default:
                return EXIT_RUNTIME;
        }
}

/* xinetd and openbsd-inetd hand the connection over as stderr too. */
static bool stderr_is_connection(void) {
        struct stat in, err;

        if (fstat(STDIN_FILENO, &in) < 0 || fstat(STDERR_FILENO, &err) < 0)
                return false;
        return S_ISSOCK(err.st_mode) && in.st_dev == err.st_dev && in.st_ino == err.st_ino;
}

/* Anything written to such a stderr (a log line, getopt's or a library's
 * complaint, a sanitizer report) would reach the client inside its echo. */
static bool protect_client_from_stderr(void) {
        int null;

        if (!stderr_is_connection())
                return false;
        null = open("/dev/null", O_WRONLY | O_CLOEXEC);
        if (null < 0 || dup2(null, STDERR_FILENO) < 0)
                _exit(EXIT_RUNTIME);    /* the only safe way to say nothing */
        if (null != STDERR_FILENO)
                (void) close(null);
        return true;
}

/* Closes descriptors we did not open and were not passed on purpose
 * (systemd's LISTEN_FDS stay), so nothing leaks into workers. */
static void close_stray_fds(bool inetd) {
        int n = inetd ? 0 : sd_listen_fds(0);
        unsigned first = (unsigned) upgrade_fds_end(3 + (n > 0 ? n : 0));

        if (close_range(first, ~0U, 0) < 0)
                for (int fd = (int) first; fd < 1024; fd++)
                        (void) close(fd);
}

/* The detached daemon runs in "/": a relative name would mean another file
 * there. Not canonicalized, so that a reload follows a symlink that was
 * re-pointed meanwhile. */
static int path_make_absolute(const char *path, char **ret) {
        _cleanup_free_ char *cwd = NULL;

        if (path[0] == '/')
                *ret = strdup(path);
        else {
                cwd = getcwd(NULL, 0);
                if (!cwd)
                        return -errno;
                if (asprintf(ret, "%s/%s", cwd, path) < 0)
                        *ret = NULL;
        }
        return *ret ? 0 : -ENOMEM;
}

static int check_config(const struct options *o) {
        _cleanup_config_ struct config *cfg = NULL;
        struct strv errors = {};
        int r;

        r = config_load(o->config_path, &cfg, &errors);
        for (size_t i = 0; i < errors.n; i++)
                fprintf(stderr, "%s\n", errors.items[i]);
        strv_clear(&errors);
        if (r < 0)
                return MAIN_INVALID_CONFIG;
        if (o->dump)
                config_dump(cfg, stdout);
        else
                printf("%s: configuration OK\n", o->config_path);
        return 0;
}

static int run_inetd(const struct config *cfg) {
        int r, reason;

        /* Under inetd, tcpserver or Accept=yes both stdin and stdout are the connection. */
        r = fd_set_nonblock(STDIN_FILENO, true);
        if (r >= 0)
                r = fd_set_nonblock(STDOUT_FILENO, true);
        if (r < 0)
                return log_error_errno(r, "--inetd: standard input or output is not usable: %m");
        /* Under inetd the exit status goes to the service manager, where
         * anything but 0 reads as a failed unit: only socket errors are one
         * (the worker logged it). */
        reason = close_reason_from_exit_code(worker_main(STDIN_FILENO, STDOUT_FILENO, cfg, NULL));
        /* Its own records, if journald was slow to take them. */
        log_journal_drain(USEC_PER_SEC);
        return reason == CLOSE_ERROR || reason < 0 ? -EIO : 0;
}

/* As root, the pid file's directory must let the run user remove it at exit. */
static int prepare_pid_file(const char *path, const struct config *cfg) {
        struct privs_result pr = { .uid = geteuid(), .gid = getegid() };
        int r;

        if (geteuid() == 0) {
                r = privs_resolve(cfg->user, cfg->group, &pr);
                if (r < 0)
                        return log_error_errno(r, "cannot look up the user to run as: %m");
        }
        r = pidfile_prepare(path, pr.uid, pr.gid);
        if (r < 0)
                return log_error_errno(r, "cannot create the directory of pid file %s: %m", path);
        if (r > 0)
                log_warning("pid file %s will be left behind at exit: its directory does not let %s remove it",
                            path, geteuid() == 0 ? pr.user : "echod");
        return 0;
}

static int run(const struct options *o) {
        _cleanup_config_ struct config *cfg = NULL;
        _cleanup_free_ char *config_path = NULL, *pid_file = NULL;
        struct master_args args = {
                .log_level_override = o->log_level,
                .ready_fd = -1,
        };
        enum log_target target = o->log_target;
        bool detach = !o->foreground && !o->inetd, starter;
        _cleanup_(upgrade_state_done) struct upgrade_state upgrade = { .report_fd = -1, .report_worker_fd = -1 };
        struct strv errors = {};
        char err[512];
        int r;

        if (o->test || o->dump)
                return check_config(o);

        if (detach) {
                r = path_make_absolute(o->config_path, &config_path);
                if (r >= 0)
                        r = path_make_absolute(o->pid_file ? o->pid_file : ECHOD_DEFAULT_PIDFILE, &pid_file);
                if (r < 0)
                        return log_error_errno(r, "cannot make the configuration and pid file paths absolute: %m");
        } else if (o->pid_file && !(pid_file = strdup(o->pid_file)))
                return log_error_errno(ENOMEM, "out of memory");
        args.config_path = config_path ? config_path : o->config_path;
        args.pid_file = pid_file;

        r = config_load(args.config_path, &cfg, &errors);

        close_stray_fds(o->inetd);
        if (target == LOG_TARGET_AUTO && detach && access("/run/systemd/journal/socket", W_OK) == 0)
                target = LOG_TARGET_JOURNAL;   /* a detached daemon has no stderr */
        if (o->stderr_was_client)
                target = access("/run/systemd/journal/socket", W_OK) == 0 ? LOG_TARGET_JOURNAL : LOG_TARGET_NONE;
        log_open(target);
        if (r < 0) {
                for (size_t i = 0; i < errors.n; i++)
                        log_record(LOG_ERR, false, ECHOD_MID_CONFIG_INVALID, NULL, "%s", errors.items[i]);
                log_record(LOG_ERR, false, ECHOD_MID_CONFIG_INVALID, NULL,
                           "invalid configuration in %s, not starting (check it with echod --test-config)",
                           args.config_path);
                /* Also to the terminal of whoever runs it by hand, unless
                 * that "terminal" is a client's connection. */
                if (log_get_target() == LOG_TARGET_JOURNAL && !o->stderr_was_client)
                        for (size_t i = 0; i < errors.n; i++)
                                fprintf(stderr, "%s\n", errors.items[i]);
                strv_clear(&errors);
                return MAIN_INVALID_CONFIG;
        }
        log_set_level(o->log_level >= 0 ? o->log_level : cfg->log_level);

        if (o->inetd)
                return run_inetd(cfg);

        /* An in-place upgrade: the previous image's workers and listeners. */
        r = upgrade_load(&upgrade, err, sizeof err);
        if (r < 0) {
                log_struct(LOG_ERR, LOG_MESSAGE_ID(ECHOD_MID_UPGRADE_FAILED),
                           LOG_MESSAGE("upgrade failed: cannot take over from the previous image: %s; exiting "
                                       "(systemd's fd store keeps the listeners for the restart)", err));
                return r;
        }
        if (r > 0)
                args.upgrade = &upgrade;

        /* Until the daemon is ready, its errors also go to whoever started it. */
        if (detach && log_get_target() == LOG_TARGET_JOURNAL)
                log_set_error_copy_fd(STDERR_FILENO);
        if (args.pid_file && !args.upgrade) {
                r = prepare_pid_file(args.pid_file, cfg);
                if (r < 0)
                        return r;
        }
        /* An upgraded daemon is detached already: same pid, same pid file. */
        if (detach && !args.upgrade) {
                r = daemon_detach(&starter);
                if (r < 0 && !starter)
                        return log_error_errno(r, "cannot detach: %m");
                if (starter)
                        return r;
                args.ready_fd = r;
        }
        return master_run(TAKE_PTR(cfg), &args);
}

int main(int argc, char *argv[]) {
        struct options o = {
                .config_path = ECHOD_DEFAULT_CONFIG,
                .log_level = -1,
                .log_target = LOG_TARGET_AUTO,
        };
        int r;

        o.stderr_was_client = protect_client_from_stderr();
        proctitle_init(argc, argv);
        r = parse_argv(argc, argv, &o);
        upgrade_set_argv(argv);
        if (r == 0)
                r = run(&o);
        return exit_status(r);
}
