/* SPDX-License-Identifier: MIT */
/* Command line, start-up wiring, and the one place that maps errors to exit codes. */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "config.h"
#include "fd-util.h"
#include "daemon.h"
#include "echod-config.h"
#include "log.h"
#include "master.h"
#include "proctitle.h"
#include "worker.h"

#define EXIT_RUNTIME 1
#define EXIT_USAGE 2
#define EXIT_NOTCONFIGURED 6

enum {
        ARG_INETD = 0x100,
        ARG_LOG_TARGET,
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

static int usage_error(const char *format, ...) _printf_(1, 2);
static int usage_error(const char *format, ...) {
        va_list ap;

        fprintf(stderr, "echod: ");
        va_start(ap, format);
        vfprintf(stderr, format, ap);
        va_end(ap);
        fprintf(stderr, "\nTry 'echod --help' for more information.\n");
        return EXIT_USAGE;
}

/* Closes descriptors we did not open and were not passed on purpose
 * (systemd's LISTEN_FDS stay), so nothing leaks into workers. */
static void close_stray_fds(bool inetd) {
        int n = inetd ? 0 : sd_listen_fds(0);
        unsigned first = 3 + (unsigned) (n > 0 ? n : 0);

        if (close_range(first, ~0U, 0) < 0)
                for (int fd = (int) first; fd < 1024; fd++)
                        (void) close(fd);
}

static int run_inetd(const struct config *cfg) {
        int r;

        /* Under inetd, tcpserver or Accept=yes both stdin and stdout are the connection. */
        r = fd_set_nonblock(STDIN_FILENO, true);
        if (r >= 0)
                r = fd_set_nonblock(STDOUT_FILENO, true);
        if (r < 0) {
                log_error_errno(r, "--inetd: standard input or output is not usable: %m");
                return EXIT_RUNTIME;
        }
        /* Under inetd the exit status goes to the service manager, where
         * anything but 0 reads as a failed unit: only socket errors are one. */
        int reason = close_reason_from_exit_code(worker_main(STDIN_FILENO, STDOUT_FILENO, cfg, NULL));
        return reason == CLOSE_ERROR || reason < 0 ? EXIT_RUNTIME : 0;
}

/* xinetd and openbsd-inetd hand the connection over as stderr too: log
 * lines written there would reach the client inside its echo. */
static bool stderr_is_connection(void) {
        struct stat in, err;

        if (fstat(STDIN_FILENO, &in) < 0 || fstat(STDERR_FILENO, &err) < 0)
                return false;
        return S_ISSOCK(err.st_mode) && in.st_dev == err.st_dev && in.st_ino == err.st_ino;
}

int main(int argc, char *argv[]) {
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
        struct master_args args = {
                .config_path = ECHOD_DEFAULT_CONFIG,
                .log_level_override = -1,
                .ready_fd = -1,
        };
        bool foreground = false, test = false, dump = false, inetd = false;
        enum log_target target = LOG_TARGET_AUTO;
        const char *pid_file = NULL;
        struct config *cfg = NULL;
        struct strv errors = {};
        int c, r;

        proctitle_init(argc, argv);

        while ((c = getopt_long(argc, argv, "c:ftTp:l:hV", options, NULL)) >= 0) {
                switch (c) {
                case 'c':
                        if (!*optarg)
                                return usage_error("--config needs a file name");
                        args.config_path = optarg;
                        break;
                case 'f':
                        foreground = true;
                        break;
                case 't':
                        test = true;
                        break;
                case 'T':
                        dump = true;
                        break;
                case 'p':
                        if (!*optarg)
                                return usage_error("--pid-file needs a file name");
                        pid_file = optarg;
                        break;
                case 'l':
                        r = log_level_from_string(optarg);
                        if (r < 0)
                                return usage_error("invalid log level '%s': expected err, warning, notice, info or debug", optarg);
                        args.log_level_override = r;
                        break;
                case ARG_LOG_TARGET:
                        r = log_target_from_string(optarg);
                        if (r < 0)
                                return usage_error("invalid log target '%s': expected auto, journal or stderr", optarg);
                        target = (enum log_target) r;
                        break;
                case ARG_INETD:
                        inetd = true;
                        break;
                case 'h':
                        help();
                        return 0;
                case 'V':
                        printf("echod %s\n", ECHOD_VERSION);
                        return 0;
                default:
                        return EXIT_USAGE;      /* getopt printed the problem */
                }
        }
        if (optind < argc)
                return usage_error("unexpected argument '%s'", argv[optind]);
        if ((test || dump) && inetd)
                return usage_error("--inetd cannot be combined with --test-config or --dump-config");

        r = config_load(args.config_path, &cfg, &errors);
        if (test || dump) {
                for (size_t i = 0; i < errors.n; i++)
                        fprintf(stderr, "%s\n", errors.items[i]);
                strv_clear(&errors);
                if (r < 0)
                        return EXIT_NOTCONFIGURED;
                if (dump)
                        config_dump(cfg, stdout);
                else
                        printf("%s: configuration OK\n", args.config_path);
                config_free(cfg);
                return 0;
        }

        close_stray_fds(inetd);
        if (target == LOG_TARGET_AUTO && !foreground && !inetd &&
            access("/run/systemd/journal/socket", W_OK) == 0)
                target = LOG_TARGET_JOURNAL;   /* a detached daemon has no stderr */
        if (inetd && stderr_is_connection())
                target = access("/run/systemd/journal/socket", W_OK) == 0 ? LOG_TARGET_JOURNAL : LOG_TARGET_NONE;
        log_open(target);
        if (r < 0) {
                for (size_t i = 0; i < errors.n; i++)
                        log_record(LOG_ERR, false, ECHOD_MID_CONFIG_INVALID, NULL, "%s", errors.items[i]);
                log_record(LOG_ERR, false, ECHOD_MID_CONFIG_INVALID, NULL,
                           "invalid configuration in %s, not starting (check it with echod --test-config)",
                           args.config_path);
                if (log_get_target() == LOG_TARGET_JOURNAL)
                        for (size_t i = 0; i < errors.n; i++)
                                fprintf(stderr, "%s\n", errors.items[i]);
                strv_clear(&errors);
                return EXIT_NOTCONFIGURED;
        }
        log_set_level(args.log_level_override >= 0 ? args.log_level_override : cfg->log_level);

        if (inetd) {
                int code = run_inetd(cfg);
                config_free(cfg);
                return code;
        }

        if (!foreground) {
                args.pid_file = pid_file ? pid_file : ECHOD_DEFAULT_PIDFILE;
                r = daemon_detach();
                if (r < 0) {
                        log_error_errno(r, "cannot detach: %m");
                        config_free(cfg);
                        return EXIT_RUNTIME;
                }
                args.ready_fd = r;
                if (log_get_target() == LOG_TARGET_JOURNAL)
                        log_set_error_copy_fd(STDERR_FILENO);
        } else
                args.pid_file = pid_file;

        return master_run(cfg, &args);
}
