/* SPDX-License-Identifier: MIT */
/*
 * The UDP bench's ceiling: a non-forking recvmmsg/sendmmsg reflector that
 * checks nothing. udp-ref ADDR PORT [pktinfo]: with "pktinfo" it also asks
 * for IP_PKTINFO and sends each reply with it, as echod does, so that the
 * bench can tell what pktinfo costs apart from what echod's checks cost.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define BATCH 32
#define BUF 65536

int main(int argc, char **argv) {
        static char bufs[BATCH][BUF];
        static char ctl[BATCH][64];
        struct sockaddr_in addr = { .sin_family = AF_INET }, peers[BATCH];
        struct mmsghdr in[BATCH], out[BATCH];
        struct iovec iov[BATCH];
        int fd, one = 1, pktinfo = argc > 3 && strcmp(argv[3], "pktinfo") == 0;

        if (argc < 3 || inet_pton(AF_INET, argv[1], &addr.sin_addr) != 1)
                return 2;
        addr.sin_port = htons((unsigned short) atoi(argv[2]));
        fd = socket(AF_INET, SOCK_DGRAM, 0);
        if (fd < 0 || (pktinfo && setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof one) < 0) ||
            bind(fd, (struct sockaddr *) &addr, sizeof addr) < 0) {
                perror("udp-ref");
                return 1;
        }
        for (;;) {
                struct pollfd p = { .fd = fd, .events = POLLIN };
                int n, k = 0;

                for (int i = 0; i < BATCH; i++) {
                        iov[i] = (struct iovec) { bufs[i], BUF };
                        in[i].msg_hdr = (struct msghdr) { .msg_name = &peers[i], .msg_namelen = sizeof peers[i],
                                                          .msg_iov = &iov[i], .msg_iovlen = 1,
                                                          .msg_control = pktinfo ? ctl[i] : NULL,
                                                          .msg_controllen = pktinfo ? sizeof ctl[i] : 0 };
                }
                n = recvmmsg(fd, in, BATCH, MSG_DONTWAIT, NULL);
                if (n <= 0) {
                        (void) poll(&p, 1, -1);
                        continue;
                }
                for (int i = 0; i < n; i++) {
                        struct msghdr *mh = &in[i].msg_hdr;
                        iov[i].iov_len = in[i].msg_len;
                        out[k].msg_hdr = (struct msghdr) { .msg_name = &peers[i], .msg_namelen = mh->msg_namelen,
                                                           .msg_iov = &iov[i], .msg_iovlen = 1 };
                        if (pktinfo) {
                                struct cmsghdr *c = CMSG_FIRSTHDR(mh);
                                if (c && c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
                                        struct in_pktinfo *pi = (struct in_pktinfo *) CMSG_DATA(c);
                                        pi->ipi_spec_dst = pi->ipi_addr;
                                        pi->ipi_ifindex = 0;
                                        out[k].msg_hdr.msg_control = ctl[i];
                                        out[k].msg_hdr.msg_controllen = CMSG_SPACE(sizeof *pi);
                                }
                        }
                        k++;
                }
                for (int off = 0; off < k;) {
                        int r = sendmmsg(fd, out + off, (unsigned) (k - off), 0);
                        off += r > 0 ? r : 1;
                }
        }
}
