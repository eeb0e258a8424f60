/* SPDX-License-Identifier: MIT */
/* Dropping root after the listeners exist; dropping capabilities in workers. */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

struct privs_result {
        bool dropped;
        char user[64];
        char group[64];
        uid_t uid;
        gid_t gid;
};

/*
 * As root: switch to user/group (NULL = nobody and nogroup, or the user's
 * primary group when only user is set). Not root: succeed without change
 * unless user names someone else (-EPERM). -ESRCH: unknown user or group.
 */
int privs_drop(const char *user, const char *group, struct privs_result *ret);

/* True when the process holds any effective or ambient capability. */
bool privs_have_caps(void);

/* Clears every capability (ambient, effective, permitted, inheritable). */
int privs_drop_caps(void);
