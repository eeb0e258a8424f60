/* SPDX-License-Identifier: MIT */
/*
 * The workers: creating one for an admitted connection, the table of those
 * running, and the one path by which every exit is reaped and accounted
 * (its source count released under the key it was counted with).
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "addr.h"
#include "listen.h"

struct master;

struct child {
        pid_t pid;              /* must stay first: it is the hash key */
        uint16_t port;          /* the client's */
        struct netaddr remote;  /* the client's full address */
        struct netaddr key;     /* the source key it is counted under */
        uint64_t start;
        uint16_t local_port;    /* the listener's */
        bool reported;          /* its report came: the fields below hold it, and
                                 * its source count is given back already */
        uint8_t reason;         /* enum close_reason */
        int error;
        uint64_t bytes;
        bool proxied;           /* it came through a PROXY header: */
        uint16_t proxy_port;    /* the balancer's port */
        struct netaddr proxy;   /* and address; remote is the client the header named */
};

/* A process of the master's made as workers are (exit_signal reports its
 * exit; see children.c): 0 in the child, its pid in the master, or -1. The
 * UDP worker (udp.c) is made with it and reaped by children_reap(). */
pid_t children_clone(int exit_signal);

int children_init(struct master *m);
void children_done(struct master *m);

/*
 * Forks the worker for fd, a connection from peer on l, admitted and counted
 * under key. The master's copy of fd is closed either way. Returns 0, or
 * -errno when no worker runs (the caller releases the count and refuses).
 */
int children_spawn(struct master *m, int fd, const struct sockaddr_any *peer, const struct listener *l,
                   const struct netaddr *key, uint64_t now);

/* The same for a connection through a balancer (NULL = none): peer is the
 * client its PROXY header named, or the balancer itself for a health check. */
int children_spawn_proxied(struct master *m, int fd, const struct sockaddr_any *peer,
                           const struct sockaddr_any *balancer, const struct listener *l,
                           const struct netaddr *key, uint64_t now);

/*
 * Reaps pid (or any worker with pid -1) if it has exited, or waits for it
 * with block, and accounts for it: the child table, its source's count, the
 * close and failure counters, the connection's one record (its worker's
 * report joined with the child's addresses and start), the record of an
 * abnormal exit. Reports waiting are taken first, so that a report and its
 * exit meet; one arriving after the reap finds no child and is ignored.
 * Every exit goes through here. Returns 1 when one was reaped, 0 when none has exited,
 * -ECHILD when there is none to wait for.
 */
int children_reap(struct master *m, pid_t pid, bool block);

/*
 * Takes every report waiting, each into its worker's struct child, and
 * gives the worker's source count back: it is done with its client. A
 * report counts only when the kernel's credentials name a running worker
 * of ours and the report names the same pid; anything else is ignored and
 * counted. Returns how many counted.
 */
unsigned children_take_reports(struct master *m);

/* Takes the reports waiting, then reaps every worker whose exit signal is
 * queued (the loop's exit_fd or the report socket woke). */
void children_reap_signalled(struct master *m);

/* Reaps whatever has exited, for exits whose signal was lost. */
void children_sweep(struct master *m);

/* Counts every running worker under its key of the current source prefixes. */
void children_rekey(struct master *m, uint64_t now);

void children_signal(struct master *m, int sig);
