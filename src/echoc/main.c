/* SPDX-License-Identifier: MIT */
/*
 * echoc: the echo client and load generator that comes with echod.
 * This file owns the command line: it parses and validates the options,
 * then hands over to the line mode (line.c) or the load generator
 * (bench.c). Every usage error exits with EXIT_USAGE here.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__has_include)
#if __has_include("echod-config.h")
#include "echod-config.h"
#endif
#endif
#ifndef ECHOD_VERSION
#define ECHOD_VERSION "(unreleased)"
#endif

#include "echoc.h"

static void help(void) {
        printf("Usage: %1$s [-4|-6] [--timeout SECONDS] HOST [PORT]\n"
               "       %1$s -u [-4|-6] [--retries N] [--timeout SECONDS] HOST [PORT]\n"
               "       %1$s --bench MODE [OPTIONS] HOST PORT\n"
               "\n"
               "Send standard input, line by line, to the echo service on HOST (PORT defaults\n"
               "to 7), print what comes back, and exit 0 only if every byte came back\n"
               "identical. With --bench, generate load and report what the server sustained.\n"
               "\n"
               "Options:\n"
               "  -4, -6                     use IPv4 / IPv6 only\n"
               "  -t, --timeout SECONDS      give up after SECONDS without progress (default 10;\n"
               "                             with -u, per datagram: default 1)\n"
               "  -u, --udp                  UDP: each line one datagram\n"
               "      --retries N            with -u, resend a lost datagram N times (default 3)\n"
               "      --bench MODE           rate, stream, latency, hold or udp\n"
               "  -c, --concurrency N        parallel connections (bench)\n"
               "  -s, --size BYTES           bytes per request, write or ping (bench; K/M/G)\n"
               "  -d, --duration SECONDS     run time, or hold time for hold (bench; default 5)\n"
               "  -n, --requests N           stop after N requests/cycles (bench)\n"
               "      --json                 print the bench result as one JSON object\n"
               "      --source ADDR          connect from this local address (bench)\n"
               "      --proxy v1|v2|local    send a PROXY protocol header first, as a load balancer\n"
               "      --proxy-source A:P     the client that header names (default: echoc's own address)\n"
               "  -h, --help                 show this help and exit\n"
               "  -V, --version              show the version and exit\n"
               "\n"
               "Exit status: 0 all echoed, 1 mismatch/short echo (bench: errors counted),\n"
               "2 usage, 3 resolve/connect failure, 4 timeout, 5 reset or I/O error.\n"
               "See echoc(1).\n",
               program_name);
}

static const char *range_text(int r) {
        return r == -ERANGE ? "out of range" : "not valid";
}

enum {
        ARG_BENCH = 0x100,
        ARG_JSON,
        ARG_SOURCE,
        ARG_RETRIES,
        ARG_PROXY,
        ARG_PROXY_SOURCE,
};

static int parse_argv(int argc, char *argv[], struct options *o) {
        static const struct option longopts[] = {
                { "timeout",     required_argument, NULL, 't' },
                { "bench",       required_argument, NULL, ARG_BENCH },
                { "concurrency", required_argument, NULL, 'c' },
                { "size",        required_argument, NULL, 's' },
                { "duration",    required_argument, NULL, 'd' },
                { "requests",    required_argument, NULL, 'n' },
                { "json",        no_argument,       NULL, ARG_JSON },
                { "source",      required_argument, NULL, ARG_SOURCE },
                { "udp",         no_argument,       NULL, 'u' },
                { "retries",     required_argument, NULL, ARG_RETRIES },
                { "proxy",       required_argument, NULL, ARG_PROXY },
                { "proxy-source", required_argument, NULL, ARG_PROXY_SOURCE },
                { "help",        no_argument,       NULL, 'h' },
                { "version",     no_argument,       NULL, 'V' },
                {}
        };
        const char *bench_only = NULL;
        bool timeout_given = false, retries_given = false;
        int c, r;

        *o = (struct options) {
                .family = AF_UNSPEC,
                .timeout_usec = DEFAULT_TIMEOUT_USEC,
                .port = DEFAULT_PORT,
                .retries = 3,
        };

        opterr = 0;
        while ((c = getopt_long(argc, argv, ":46ut:c:s:d:n:hV", longopts, NULL)) >= 0) {
                switch (c) {
                case '4':
                case '6': {
                        int f = c == '4' ? AF_INET : AF_INET6;
                        if (o->family != AF_UNSPEC && o->family != f)
                                return usage_error(program_name, "-4 and -6 exclude each other");
                        o->family = f;
                        break;
                }
                case 'u':
                        o->udp = true;
                        break;
                case ARG_RETRIES:
                        r = parse_uint64_range(optarg, 0, 1000, &o->retries);
                        if (r < 0)
                                return usage_error(program_name, "--retries: '%s' is %s (0..1000)", optarg, range_text(r));
                        retries_given = true;
                        break;
                case 't':
                        timeout_given = true;
                        r = parse_seconds(optarg, &o->timeout_usec);
                        if (r < 0 || o->timeout_usec == 0)
                                return usage_error(program_name,
                                                   "--timeout: '%s' is %s (seconds > 0, e.g. 5, 0.5, 250ms)",
                                                   optarg, r < 0 ? range_text(r) : "out of range");
                        break;
                case ARG_BENCH:
                        o->mode = bench_mode_from_string(optarg);
                        if (o->mode == BENCH_NONE)
                                return usage_error(program_name,
                                                   "--bench: unknown mode '%s' (rate, stream, latency, hold, udp)", optarg);
                        break;
                case 'c':
                        r = parse_uint64_range(optarg, 1, 1000000, &o->concurrency);
                        if (r < 0)
                                return usage_error(program_name, "--concurrency: '%s' is %s (1..1000000)",
                                                   optarg, range_text(r));
                        bench_only = "--concurrency";
                        break;
                case 's':
                        r = parse_size_range(optarg, 1, UINT64_C(1) << 30, &o->size);
                        if (r < 0)
                                return usage_error(program_name, "--size: '%s' is %s (1..1G bytes)",
                                                   optarg, range_text(r));
                        bench_only = "--size";
                        break;
                case 'd':
                        r = parse_seconds(optarg, &o->duration_usec);
                        if (r < 0 || o->duration_usec == 0)
                                return usage_error(program_name, "--duration: '%s' is %s (seconds > 0)",
                                                   optarg, r < 0 ? range_text(r) : "out of range");
                        bench_only = "--duration";
                        break;
                case 'n':
                        r = parse_uint64_range(optarg, 1, UINT64_C(1) << 48, &o->requests);
                        if (r < 0)
                                return usage_error(program_name, "--requests: '%s' is %s (1 or more)",
                                                   optarg, range_text(r));
                        bench_only = "--requests";
                        break;
                case ARG_JSON:
                        o->json = true;
                        bench_only = "--json";
                        break;
                case ARG_SOURCE:
                        o->source = optarg;
                        bench_only = "--source";
                        break;
                case ARG_PROXY:
                        o->proxy = proxy_mode_from_string(optarg);
                        if (o->proxy == PROXY_NONE)
                                return usage_error(program_name, "--proxy: unknown version '%s' (v1, v2, local)", optarg);
                        break;
                case ARG_PROXY_SOURCE:
                        r = sockaddr_parse(optarg, &o->proxy_source);
                        if (r < 0)
                                return usage_error(program_name,
                                                   "--proxy-source: '%s' is not ADDR:PORT with a numeric address (e.g. 192.0.2.7:5000, [2001:db8::7]:5000)",
                                                   optarg);
                        sockaddr_unmap(&o->proxy_source);
                        break;
                case 'h':
                        help();
                        exit(EXIT_OK);
                case 'V':
                        printf("echoc %s\n", ECHOD_VERSION);
                        exit(EXIT_OK);
                case ':':
                        return usage_error(program_name, "option '%s' needs an argument", argv[optind - 1]);
                default:
                        if (optopt)
                                return usage_error(program_name, "unknown option '-%c'", optopt);
                        return usage_error(program_name, "unknown option '%s'", argv[optind - 1]);
                }
        }

        if (o->proxy_source.sa.sa_family != 0 && (o->proxy == PROXY_NONE || o->proxy == PROXY_LOCAL))
                return usage_error(program_name, "--proxy-source needs --proxy v1 or v2");
        if (o->mode == BENCH_NONE && bench_only)
                return usage_error(program_name, "%s is only valid with --bench", bench_only);
        if (o->udp && o->mode != BENCH_NONE)
                return usage_error(program_name, "-u is for line mode; --bench udp measures UDP");
        if (retries_given && !o->udp)
                return usage_error(program_name, "--retries is only valid with -u");
        if ((o->udp || o->mode == BENCH_UDP) && !timeout_given)
                o->timeout_usec = USEC_PER_SEC;

        int npos = argc - optind;
        if (o->mode == BENCH_NONE) {
                if (npos < 1)
                        return usage_error(program_name, "missing HOST");
                if (npos > 2)
                        return usage_error(program_name, "too many arguments (expected HOST [PORT])");
        } else if (npos < 2)
                return usage_error(program_name, "--bench needs HOST and PORT");
        else if (npos > 2)
                return usage_error(program_name, "too many arguments (expected HOST PORT)");
        o->host = argv[optind];
        if (npos == 2)
                o->port = argv[optind + 1];
        if (o->host[0] == '\0' || o->port[0] == '\0')
                return usage_error(program_name, "empty HOST or PORT");

        if (o->mode != BENCH_NONE) {
                if (o->concurrency == 0)
                        o->concurrency = o->mode == BENCH_RATE ? 16 : o->mode == BENCH_HOLD ? 100 : 1;
                if (o->size == 0)
                        o->size = o->mode == BENCH_STREAM ? 65536 : o->mode == BENCH_HOLD ? 1 : 64;
                if (o->duration_usec == 0 && (o->requests == 0 || o->mode == BENCH_HOLD))
                        o->duration_usec = DEFAULT_DURATION_USEC;
        }
        return -1;
}

/* With stdin, stdout or stderr closed, the socket would get its number
 * and input or diagnostics would go to the server: park /dev/null there. */
static void ensure_stdio(void) {
        for (int fd = 0; fd <= 2; fd++)
                if (fcntl(fd, F_GETFD) < 0 && errno == EBADF) {
                        /* The lowest free number, so fd itself: the ones below are open. */
                        (void) open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY);
                }
}

int main(int argc, char *argv[]) {
        struct options o;
        int r;

        ensure_stdio();
        r = parse_argv(argc, argv, &o);
        if (r >= 0)
                return r;

        if (o.udp)
                return run_udp_lines(&o);
        if (o.mode == BENCH_UDP)
                return run_bench_udp(&o);
        return o.mode == BENCH_NONE ? run_pipe(&o) : run_bench(&o);
}
