/* SPDX-License-Identifier: MIT */
/*
 * LD_PRELOAD shim for test_records.py: a worker that lies in its report.
 * When a worker sends its end-of-connection report (one struct
 * worker_report datagram, see worker.h) and a sibling worker runs, it
 * first tries what a compromised worker could: it claims the sibling's pid
 * in the report's payload and reports the sibling's connection as an error
 * with FORGED_BYTES bytes, once with the kernel's credentials left as they
 * are (they name the liar) and once with SCM_CREDENTIALS claiming the
 * sibling's pid (the kernel refuses that without CAP_SYS_ADMIN). Then it
 * sends its own, true report.
 */
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#define FORGED_BYTES 999999

struct report {                 /* the layout of struct worker_report */
        uint32_t magic;
        int32_t pid;
        uint32_t reason;
        int32_t error;
        uint64_t bytes;
};

static ssize_t (*real_send)(int, const void *, size_t, int);

/* Resolved at load time: workers must not look symbols up. */
__attribute__((constructor)) static void init(void) {
        real_send = (ssize_t (*)(int, const void *, size_t, int)) dlsym(RTLD_NEXT, "send");
}

/* Another worker of the same master, from /proc/PPID/task/PPID/children. */
static pid_t sibling(void) {
        char path[64];
        pid_t self = getpid(), ppid = getppid(), found = 0;
        FILE *f;
        int pid;

        snprintf(path, sizeof path, "/proc/%d/task/%d/children", (int) ppid, (int) ppid);
        f = fopen(path, "re");
        if (!f)
                return 0;
        while (fscanf(f, "%d", &pid) == 1)
                if (pid != self) {
                        found = pid;
                        break;
                }
        fclose(f);
        return found;
}

ssize_t send(int fd, const void *buf, size_t len, int flags) {
        struct report r;
        pid_t other;

        if (len == sizeof r && (memcpy(&r, buf, sizeof r), r.magic == 0x65636872) && (other = sibling()) > 0) {
                struct report forged = { .magic = r.magic, .pid = other, .reason = 5 /* error */, .error = 5,
                                         .bytes = FORGED_BYTES };
                union {
                        struct cmsghdr h;
                        char buf[CMSG_SPACE(sizeof(struct ucred))];
                } control = {};
                struct iovec iov = { &forged, sizeof forged };
                struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
                                     .msg_control = &control, .msg_controllen = sizeof control };
                struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
                struct ucred cred = { .pid = other, .uid = getuid(), .gid = getgid() };

                (void) real_send(fd, &forged, sizeof forged, flags);
                c->cmsg_level = SOL_SOCKET;
                c->cmsg_type = SCM_CREDENTIALS;
                c->cmsg_len = CMSG_LEN(sizeof cred);
                memcpy(CMSG_DATA(c), &cred, sizeof cred);
                if (sendmsg(fd, &mh, flags) < 0)
                        dprintf(2, "forgereport: the kernel refused a report claiming pid %d: %m\n", (int) other);
                else
                        dprintf(2, "forgereport: the kernel let a report claim pid %d\n", (int) other);
        }
        return real_send(fd, buf, len, flags);
}
