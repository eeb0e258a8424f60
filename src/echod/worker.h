/* SPDX-License-Identifier: MIT */
/*
 * One connection: the echo loop with its limits, and the worker process
 * around it (signals, process title, its report to the master, exit code).
 */
#pragma once

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "addr.h"
#include "config.h"
#include "macro.h"

/* Why a connection ended: the worker tells the master in its report (and
 * its exit status); the last two the master finds when no report came. */
enum close_reason {
        CLOSE_EOF,              /* client closed; everything was echoed */
        CLOSE_IDLE_TIMEOUT,     /* no progress either way for idle_timeout */
        CLOSE_SESSION_TIMEOUT,  /* session_timeout reached */
        CLOSE_MAX_BYTES,        /* max_bytes echoed */
        CLOSE_RESET,            /* client reset the connection */
        CLOSE_ERROR,            /* any other socket error */
        CLOSE_SHUTDOWN,         /* echod is stopping; pending data was flushed */
        _CLOSE_REASON_WORKER_MAX,
        CLOSE_KILLED = _CLOSE_REASON_WORKER_MAX,        /* the worker died of a signal */
        CLOSE_FAILED,           /* the worker exited without a report or with a status not ours */
        _CLOSE_REASON_MAX,
};

const char *close_reason_to_string(enum close_reason r);
int close_reason_to_exit_code(enum close_reason r);
/* -1 when the exit code is not one of ours. */
int close_reason_from_exit_code(int code);
/* Resets, errors, dead workers and timeouts: what log_connections = errors keeps. */
bool close_reason_abnormal(enum close_reason r);
/* Errors and dead workers: echod's own trouble, recorded as warnings. */
bool close_reason_warning(enum close_reason r);
/* Whether a connection gets its open record (open) or the record of its
 * end r under mode. Ends that are warnings are recorded in every mode.
 * Pure: which record to write, apart from writing it. */
bool conn_record_wanted(enum log_connections mode, bool open, enum close_reason r);

/*
 * A worker's report to the master: one datagram on the report socket, sent
 * as it ends. The master trusts only what the kernel vouches for: the
 * sender's pid (SCM_CREDENTIALS) must be a worker of its own and equal pid.
 */
struct worker_report {
        uint32_t magic;
        int32_t pid;
        uint32_t reason;                /* enum close_reason */
        int32_t error;
        uint64_t bytes;
};
#define WORKER_REPORT_MAGIC UINT32_C(0x65636872)       /* "echr" */

/* How long a worker waits for the client's FIN after it sent its own, when
 * it ends the connection itself (see echo_loop()). */
#define ECHO_LINGER_USEC (2 * USEC_PER_SEC)

struct echo_result;

struct echo_limits {
        uint64_t idle_usec;             /* 0 = none */
        uint64_t session_usec;          /* 0 = none */
        uint64_t max_bytes;             /* 0 = none */
        uint64_t linger_usec;           /* 0 = close without waiting for the client */
        uint64_t stop_usec;             /* after a stop request, linger at most this long
                                         * from when it was seen (the master's
                                         * shutdown_timeout); 0 = not at all */
        bool log_payload;
        /* Called once when the client's EOF ends the connection, everything
         * echoed, just before echod's FIN: the client can reconnect only
         * after it ran. NULL = none. */
        void (*on_clean_end)(const struct echo_result *res, void *userdata);
        void *userdata;
};

struct echo_result {
        uint64_t bytes;                 /* echoed back */
        enum close_reason reason;
        int error;                      /* errno for CLOSE_ERROR / CLOSE_RESET */
};

/* Set from the worker's SIGTERM handler (a flag and nothing else). */
extern volatile sig_atomic_t worker_stop;

/*
 * Echoes everything read from in_fd to out_fd (both non-blocking; may be the
 * same socket) until EOF, a limit or a stop request. Handles short writes,
 * EINTR and EAGAIN; on EOF writes back all it read, then shuts down the
 * write side. poll_mask is the signal mask to wait with (ppoll), or NULL.
 *
 * When it ends the connection itself (a stop, max_bytes, a timeout) it
 * writes back what it holds, shuts down the write side, then reads and
 * discards until the client's EOF, for linger_usec at most (and, after a
 * stop, no longer than stop_usec from the stop), so that the caller's
 * close() finds nothing unread and sends FIN, not RST.
 */
void echo_loop(int in_fd, int out_fd, const struct echo_limits *limits,
               const sigset_t *poll_mask, struct echo_result *ret);

/* Installs the SIGTERM/SIGINT handler that sets worker_stop. */
void worker_signals_install(void);

/* What the master knows of a connection when it forks its worker. */
struct worker_args {
        const struct sockaddr_any *remote;      /* the client */
        uint16_t local_port;                    /* the listener's port */
        int report_fd;                          /* where the worker reports its end */
        const sigset_t *poll_mask;              /* the mask to wait with; the master has
                                                 * installed worker_signals_install()'s
                                                 * handler and blocked SIGTERM/SIGINT */
};

/*
 * Runs a whole worker on an accepted connection (or, with inetd, on fds 0
 * and 1) and returns the process exit code. args is NULL under inetd: the
 * addresses are looked up and the signals set up here, and the worker
 * writes its connection's record itself; otherwise it reports to the
 * master and writes none. The caller has already closed what belongs to
 * the master.
 */
int worker_main(int in_fd, int out_fd, const struct config *cfg, const struct worker_args *args);
