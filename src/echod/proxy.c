/* SPDX-License-Identifier: MIT */
/* The PROXY protocol header parser (see proxy.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "proxy.h"

static const uint8_t v2_signature[12] = {
        0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A,
};
static const char v1_signature[] = "PROXY ";

static ssize_t invalid(const char **ret_why, const char *why) {
        *ret_why = why;
        return -EBADMSG;
}

/* Whether the size bytes at p could begin s (or s whole). */
static bool could_begin(const void *p, size_t size, const void *s, size_t slen) {
        return memcmp(p, s, size < slen ? size : slen) == 0;
}

/* ---- version 1: one text line ---- */

/* A decimal number from 0 to max, without leading zeros or sign. */
static bool parse_number(const char *s, size_t len, unsigned max, unsigned *ret) {
        unsigned v = 0;

        if (len == 0 || len > 5 || (len > 1 && s[0] == '0'))
                return false;
        for (size_t i = 0; i < len; i++) {
                if (s[i] < '0' || s[i] > '9')
                        return false;
                v = v * 10 + (unsigned) (s[i] - '0');
        }
        if (v > max)
                return false;
        *ret = v;
        return true;
}

/* Four dotted decimals from 0 to 255, none with a leading zero (which
 * inet_aton() would read as octal). */
static bool parse_v1_ipv4(const char *s, size_t len, struct in_addr *ret) {
        uint8_t b[4];
        size_t start = 0;

        for (int i = 0; i < 4; i++) {
                size_t end = start;
                unsigned v;

                while (end < len && s[end] != '.')
                        end++;
                if (!parse_number(s + start, end - start, 255, &v))
                        return false;
                b[i] = (uint8_t) v;
                if (i < 3 && end >= len)
                        return false;
                if (i == 3 && end != len)
                        return false;
                start = end + 1;
        }
        memcpy(ret, b, 4);
        return true;
}

static bool parse_v1_ipv6(const char *s, size_t len, struct in6_addr *ret) {
        char buf[INET6_ADDRSTRLEN];

        if (len == 0 || len >= sizeof buf)
                return false;
        for (size_t i = 0; i < len; i++)
                if (!strchr("0123456789abcdefABCDEF:.", s[i]))
                        return false;
        memcpy(buf, s, len);
        buf[len] = '\0';
        return inet_pton(AF_INET6, buf, ret) == 1;
}

static void set_inet(struct sockaddr_any *a, const struct in_addr *addr, unsigned port) {
        memset(a, 0, sizeof *a);
        a->in.sin_family = AF_INET;
        a->in.sin_addr = *addr;
        a->in.sin_port = htons((uint16_t) port);
        a->len = sizeof a->in;
}

static void set_inet6(struct sockaddr_any *a, const struct in6_addr *addr, unsigned port) {
        memset(a, 0, sizeof *a);
        a->in6.sin6_family = AF_INET6;
        a->in6.sin6_addr = *addr;
        a->in6.sin6_port = htons((uint16_t) port);
        a->len = sizeof a->in6;
        /* A client behind an IPv6 balancer may be IPv4: the same source as
         * the same client connecting directly. */
        sockaddr_unmap(a);
}

/* "TCP4 SRC DST SPORT DPORT" or "TCP6 ...", the line without "PROXY " and CRLF. */
static ssize_t parse_v1_addresses(const char *s, size_t len, struct proxy_header *h, const char **ret_why) {
        const char *field[5];
        size_t flen[5], n = 0, start = 0;
        unsigned sport, dport;
        bool v6;

        for (size_t i = 0; i <= len && n < 5; i++)
                if (i == len || s[i] == ' ') {
                        field[n] = s + start;
                        flen[n++] = i - start;
                        start = i + 1;
                }
        if (n != 5 || start != len + 1)
                return invalid(ret_why, "v1: expected TCP4|TCP6 SOURCE DESTINATION SPORT DPORT, single spaces");
        if (flen[0] == 4 && memcmp(field[0], "TCP4", 4) == 0)
                v6 = false;
        else if (flen[0] == 4 && memcmp(field[0], "TCP6", 4) == 0)
                v6 = true;
        else
                return invalid(ret_why, "v1: unknown protocol (expected TCP4, TCP6 or UNKNOWN)");
        if (!parse_number(field[3], flen[3], 65535, &sport) || !parse_number(field[4], flen[4], 65535, &dport))
                return invalid(ret_why, "v1: a port is not a number from 0 to 65535 without leading zeros");
        if (v6) {
                struct in6_addr a, b;
                if (!parse_v1_ipv6(field[1], flen[1], &a) || !parse_v1_ipv6(field[2], flen[2], &b))
                        return invalid(ret_why, "v1: TCP6 with an address that is not IPv6");
                set_inet6(&h->src, &a, sport);
                set_inet6(&h->dst, &b, dport);
        } else {
                struct in_addr a, b;
                if (!parse_v1_ipv4(field[1], flen[1], &a) || !parse_v1_ipv4(field[2], flen[2], &b))
                        return invalid(ret_why, "v1: TCP4 with an address that is not dotted IPv4 without leading zeros");
                set_inet(&h->src, &a, sport);
                set_inet(&h->dst, &b, dport);
        }
        h->has_addresses = true;
        return 0;
}

static ssize_t parse_v1(const char *s, size_t size, struct proxy_header *h, const char **ret_why) {
        size_t len, lim = size < PROXY_V1_MAX ? size : PROXY_V1_MAX;
        const char *cr = NULL;
        ssize_t r;

        for (size_t i = 0; i < lim; i++) {
                if (s[i] == '\n')
                        return invalid(ret_why, "v1: line ends without CRLF");
                if (s[i] == '\r') {
                        cr = s + i;
                        break;
                }
                /* Printable ASCII only: nothing a log or a parser could trip on. */
                if ((unsigned char) s[i] < 0x20 || (unsigned char) s[i] > 0x7e)
                        return invalid(ret_why, "v1: control or non-ASCII byte in the line");
        }
        if (!cr) {
                if (size >= PROXY_V1_MAX)
                        return invalid(ret_why, "v1: no CRLF within 107 bytes");
                /* The protocol word can be judged before the line ends. */
                if (size > 6 && !could_begin(s + 6, size - 6, "TCP4 ", 5) && !could_begin(s + 6, size - 6, "TCP6 ", 5) &&
                    !could_begin(s + 6, size - 6, "UNKNOWN", 7))
                        return invalid(ret_why, "v1: unknown protocol (expected TCP4, TCP6 or UNKNOWN)");
                return 0;
        }
        len = (size_t) (cr - s);
        if (len + 2 > PROXY_V1_MAX)
                return invalid(ret_why, "v1: no CRLF within 107 bytes");
        if (len + 1 >= size)
                return 0;       /* the LF may still come */
        if (cr[1] != '\n')
                return invalid(ret_why, "v1: CR not followed by LF");

        *h = (struct proxy_header) { .version = 1 };
        /* UNKNOWN: whatever follows it on the line is ignored, as the spec says. */
        if (len >= 13 && memcmp(s + 6, "UNKNOWN", 7) == 0 && (len == 13 || s[13] == ' '))
                return (ssize_t) (len + 2);
        r = parse_v1_addresses(s + 6, len - 6, h, ret_why);
        if (r < 0)
                return r;
        return (ssize_t) (len + 2);
}

/* ---- version 2: a binary prefix, then exactly its length ---- */

static ssize_t parse_v2(const uint8_t *p, size_t size, struct proxy_header *h, const char **ret_why) {
        size_t len, total;
        unsigned cmd, fam;

        if (size > 12 && (p[12] & 0xF0) != 0x20)
                return invalid(ret_why, "v2: unknown version");
        if (size > 12 && (p[12] & 0x0F) > 1)
                return invalid(ret_why, "v2: unknown command (expected LOCAL or PROXY)");
        if (size > 13 && (p[12] & 0x0F) == 1 && p[13] != 0x00 && p[13] != 0x11 && p[13] != 0x21)
                return invalid(ret_why, "v2: PROXY with a family other than TCP over IPv4 or IPv6, or UNSPEC");
        if (size < PROXY_V2_PREFIX)
                return 0;

        cmd = p[12] & 0x0F;
        fam = p[13];
        len = (size_t) p[14] << 8 | p[15];
        if (len > PROXY_V2_MAX_PAYLOAD)
                return invalid(ret_why, "v2: header longer than 1024 bytes after its prefix");
        if (cmd == 1 && fam == 0x11 && len < 12)
                return invalid(ret_why, "v2: too short for its IPv4 addresses");
        if (cmd == 1 && fam == 0x21 && len < 36)
                return invalid(ret_why, "v2: too short for its IPv6 addresses");
        total = PROXY_V2_PREFIX + len;
        if (size < total)
                return 0;

        /* What follows the address block (TLVs, padding) is skipped unread:
         * none of it changes what echod does. */
        *h = (struct proxy_header) { .version = 2 };
        p += PROXY_V2_PREFIX;
        if (cmd == 1 && fam == 0x11) {
                struct in_addr s, d;
                memcpy(&s, p, 4);
                memcpy(&d, p + 4, 4);
                set_inet(&h->src, &s, (unsigned) p[8] << 8 | p[9]);
                set_inet(&h->dst, &d, (unsigned) p[10] << 8 | p[11]);
                h->has_addresses = true;
        } else if (cmd == 1 && fam == 0x21) {
                struct in6_addr s, d;
                memcpy(&s, p, 16);
                memcpy(&d, p + 16, 16);
                set_inet6(&h->src, &s, (unsigned) p[32] << 8 | p[33]);
                set_inet6(&h->dst, &d, (unsigned) p[34] << 8 | p[35]);
                h->has_addresses = true;
        }
        return (ssize_t) total;
}

ssize_t proxy_parse(const void *buf, size_t size, struct proxy_header *ret, const char **ret_why) {
        const uint8_t *p = buf;

        *ret_why = NULL;
        if (size == 0)
                return 0;
        if (could_begin(p, size, v2_signature, sizeof v2_signature)) {
                if (size < sizeof v2_signature)
                        return 0;
                return parse_v2(p, size, ret, ret_why);
        }
        if (could_begin(p, size, v1_signature, strlen(v1_signature))) {
                if (size <= strlen(v1_signature))
                        return 0;
                return parse_v1(buf, size, ret, ret_why);
        }
        return invalid(ret_why, "no PROXY protocol signature");
}
