/* SPDX-License-Identifier: MIT */
/* Privilege and capability dropping. */
#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "privs.h"

int privs_resolve(const char *user, const char *group, struct privs_result *ret) {
        const struct passwd *pw;
        const struct group *gr;
        gid_t gid;

        memset(ret, 0, sizeof *ret);
        pw = getpwnam(user ? user : PRIVS_DEFAULT_USER);
        if (!pw && !user) {
                /* Shared with other services, which can then signal echod's
                 * processes: only when the package's account is missing. */
                ret->shared_fallback = true;
                pw = getpwnam("nobody");
        }
        if (!pw)
                return -ESRCH;
        if (group) {
                gr = getgrnam(group);
                if (!gr)
                        return -ESRCH;
                gid = gr->gr_gid;
        } else if (ret->shared_fallback && (gr = getgrnam("nogroup")))
                gid = gr->gr_gid;
        else
                gid = pw->pw_gid;
        gr = getgrgid(gid);

        ret->uid = pw->pw_uid;
        ret->gid = gid;
        snprintf(ret->user, sizeof ret->user, "%s", pw->pw_name);
        if (gr)
                snprintf(ret->group, sizeof ret->group, "%s", gr->gr_name);
        else
                snprintf(ret->group, sizeof ret->group, "%u", (unsigned) gid);
        return 0;
}

int privs_drop(const char *user, const char *group, struct privs_result *ret) {
        const struct passwd *pw;
        int r;

        memset(ret, 0, sizeof *ret);
        if (geteuid() != 0) {
                if (user) {
                        pw = getpwnam(user);
                        if (!pw)
                                return -ESRCH;
                        if (pw->pw_uid != geteuid())
                                return -EPERM;
                }
                return 0;
        }

        r = privs_resolve(user, group, ret);
        if (r < 0)
                return r;
        if (setgroups(1, &ret->gid) < 0 || setresgid(ret->gid, ret->gid, ret->gid) < 0 ||
            setresuid(ret->uid, ret->uid, ret->uid) < 0)
                return -errno;
        /* Paranoia: root must be gone for good. */
        if (ret->uid != 0 && (setuid(0) == 0 || seteuid(0) == 0))
                return -EPERM;
        ret->dropped = true;
        return 0;
}

static int capget_current(struct __user_cap_data_struct data[2]) {
        struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };

        if (syscall(SYS_capget, &hdr, data) < 0)
                return -errno;
        return 0;
}

bool privs_have_caps(void) {
        struct __user_cap_data_struct data[2] = {};

        if (capget_current(data) < 0)
                return true;
        if (data[0].effective || data[1].effective || data[0].permitted || data[1].permitted)
                return true;
        return false;
}

int privs_drop_caps(void) {
        struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
        struct __user_cap_data_struct data[2] = {};

        (void) prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
        if (syscall(SYS_capset, &hdr, data) < 0)
                return -errno;
        return 0;
}
