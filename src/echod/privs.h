/* SPDX-License-Identifier: MIT */
/* Dropping root after the listeners exist; dropping capabilities in workers. */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

/* The dedicated account a root-started echod runs as when `user` is unset;
 * the package declares it (systemd/echod.sysusers). */
#define PRIVS_DEFAULT_USER "_echod"

struct privs_result {
        bool dropped;
        bool shared_fallback;           /* no PRIVS_DEFAULT_USER: nobody and nogroup */
        char user[64];
        char group[64];
        uid_t uid;
        gid_t gid;
};

/*
 * Looks up whom a root-started echod runs as: user (NULL = PRIVS_DEFAULT_USER,
 * or nobody when that account does not exist) and group (NULL = the user's
 * primary group; nogroup with nobody). Fills uid, gid, the names and
 * shared_fallback. -ESRCH: unknown user or group.
 */
int privs_resolve(const char *user, const char *group, struct privs_result *ret);

/*
 * As root: switch to the account privs_resolve() names. Not root: succeed
 * without change unless user names someone else (-EPERM). -ESRCH: unknown
 * user or group.
 */
int privs_drop(const char *user, const char *group, struct privs_result *ret);

/* True when the process holds any effective or ambient capability. */
bool privs_have_caps(void);

/* Clears every capability (ambient, effective, permitted, inheritable). */
int privs_drop_caps(void);
