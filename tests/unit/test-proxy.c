/* SPDX-License-Identifier: MIT */
/* Unit tests for proxy.c: every valid and invalid PROXY header, in one
 * piece, byte by byte, and followed by echo data in the same buffer. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "proxy.h"
#include "unit.h"

static const char sig[] = "\r\n\r\n\0\r\nQUIT\n";

/* Builds a v2 header: the signature, ver_cmd, family, then body. */
static size_t v2(uint8_t *out, uint8_t ver_cmd, uint8_t fam, const void *body, size_t len) {
        memcpy(out, sig, 12);
        out[12] = ver_cmd;
        out[13] = fam;
        out[14] = (uint8_t) (len >> 8);
        out[15] = (uint8_t) len;
        if (len > 0)
                memcpy(out + 16, body, len);
        return 16 + len;
}

/* An address block of family (AF_INET or AF_INET6), then extra bytes (TLVs
 * or padding). */
static size_t body(uint8_t *b, int family, const char *src, uint16_t sport, const char *dst, uint16_t dport,
                   const void *extra, size_t extra_len) {
        size_t alen = family == AF_INET ? 4 : 16;

        ck_assert_int_eq(inet_pton(family, src, b), 1);
        ck_assert_int_eq(inet_pton(family, dst, b + alen), 1);
        b[2 * alen] = (uint8_t) (sport >> 8), b[2 * alen + 1] = (uint8_t) sport;
        b[2 * alen + 2] = (uint8_t) (dport >> 8), b[2 * alen + 3] = (uint8_t) dport;
        if (extra_len > 0)
                memcpy(b + 2 * alen + 4, extra, extra_len);
        return 2 * alen + 4 + extra_len;
}

/*
 * h (n bytes) must parse as one whole header: every shorter prefix asks
 * for more, the whole answers n, and so does the whole followed by echo
 * data in the same buffer, which the header's length leaves out.
 */
static struct proxy_header valid(const void *h, size_t n) {
        uint8_t buf[PROXY_HEADER_MAX + 64];
        struct proxy_header ph, again;
        const char *why;
        ssize_t r;

        ck_assert_uint_le(n + 10, sizeof buf);
        for (size_t k = 0; k < n; k++) {
                r = proxy_parse(h, k, &ph, &why);
                unit_assert(r == 0, "prefix of %zu of %zu bytes: %zd (%s)", k, n, r, why ? why : "");
        }
        r = proxy_parse(h, n, &ph, &why);
        ck_assert_msg(r == (ssize_t) n, "whole header of %zu bytes: %zd (%s)", n, r, why ? why : "");
        memcpy(buf, h, n);
        memcpy(buf + n, "hello\r\n\0xy", 10);
        r = proxy_parse(buf, n + 10, &again, &why);
        ck_assert_int_eq(r, (ssize_t) n);
        ck_assert_int_eq(again.has_addresses, ph.has_addresses);
        ck_assert(!ph.has_addresses || sockaddr_equal(&again.src, &ph.src));
        return ph;
}

/* h must be refused: in one piece, and fed byte by byte it asks for more
 * until it is refused, never accepting a prefix. */
static void invalid(const void *h, size_t n) {
        struct proxy_header ph;
        const char *why = NULL;
        ssize_t r = 0;
        size_t k;

        for (k = 1; k <= n; k++) {
                r = proxy_parse(h, k, &ph, &why);
                unit_assert(r <= 0, "prefix of %zu of %zu bytes accepted as %zd", k, n, r);
                if (r < 0)
                        break;
        }
        ck_assert_msg(r == -EBADMSG, "refused only at the end? %zd", r);
        ck_assert_ptr_nonnull(why);
        r = proxy_parse(h, n, &ph, &why);
        ck_assert_int_eq(r, -EBADMSG);
}

static void invalid_str(const char *s) {
        invalid(s, strlen(s));
}

static void check_addr(const struct sockaddr_any *a, int family, const char *host, uint16_t port) {
        char buf[ADDR_STR_MAX];

        ck_assert_int_eq(a->sa.sa_family, family);
        sockaddr_format_host(a, buf, sizeof buf);
        ck_assert_str_eq(buf, host);
        ck_assert_uint_eq(sockaddr_port(a), port);
}

START_TEST(test_v1_tcp4) {
        const char *s = "PROXY TCP4 192.0.2.7 198.51.100.1 51234 7\r\n";
        struct proxy_header h = valid(s, strlen(s));

        ck_assert_uint_eq(h.version, 1);
        ck_assert(h.has_addresses);
        check_addr(&h.src, AF_INET, "192.0.2.7", 51234);
        check_addr(&h.dst, AF_INET, "198.51.100.1", 7);

        s = "PROXY TCP4 0.0.0.0 255.255.255.255 0 65535\r\n";
        h = valid(s, strlen(s));
        check_addr(&h.src, AF_INET, "0.0.0.0", 0);
        check_addr(&h.dst, AF_INET, "255.255.255.255", 65535);
}
END_TEST

START_TEST(test_v1_tcp6) {
        const char *s = "PROXY TCP6 2001:db8::5 2001:db8::1 40022 7\r\n";
        struct proxy_header h = valid(s, strlen(s));

        check_addr(&h.src, AF_INET6, "2001:db8::5", 40022);
        check_addr(&h.dst, AF_INET6, "2001:db8::1", 7);

        /* The longest TCP6 line: 104 bytes. */
        s = "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
        ck_assert_uint_eq(strlen(s), 104);
        h = valid(s, strlen(s));

        /* IPv4-mapped is the IPv4 client. */
        s = "PROXY TCP6 ::ffff:192.0.2.9 ::1 1 7\r\n";
        h = valid(s, strlen(s));
        check_addr(&h.src, AF_INET, "192.0.2.9", 1);
}
END_TEST

START_TEST(test_v1_unknown) {
        const char *s = "PROXY UNKNOWN\r\n";
        struct proxy_header h = valid(s, strlen(s));

        ck_assert_uint_eq(h.version, 1);
        ck_assert(!h.has_addresses);
        /* The rest of the line is ignored, whatever it says. */
        s = "PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n";
        h = valid(s, strlen(s));
        ck_assert(!h.has_addresses);
}
END_TEST

START_TEST(test_v1_invalid) {
        char longline[200];

        invalid_str("GET / HTTP/1.0\r\n");
        invalid_str("PROXY\r\n");
        invalid_str("proxy TCP4 192.0.2.7 198.51.100.1 1 7\r\n");
        invalid_str("PROXY TCP5 192.0.2.7 198.51.100.1 1 7\r\n");
        invalid_str("PROXY UDP4 192.0.2.7 198.51.100.1 1 7\r\n");
        invalid_str("PROXY UNKNOWNX\r\n");
        invalid_str("PROXY TCP4 192.0.2.7 198.51.100.1 1 7\n");       /* no CR */
        invalid_str("PROXY TCP4 192.0.2.7 198.51.100.1 1 7\rX");      /* CR without LF */
        invalid_str("PROXY TCP4 192.0.2.7 198.51.100.1 1 7 \r\n");    /* a sixth field */
        invalid_str("PROXY TCP4 192.0.2.7 198.51.100.1 1\r\n");
        invalid_str("PROXY TCP4  192.0.2.7 198.51.100.1 1 7\r\n");    /* two spaces */
        invalid_str("PROXY TCP4 192.0.2.07 198.51.100.1 1 7\r\n");    /* leading zero */
        invalid_str("PROXY TCP4 192.0.2.256 198.51.100.1 1 7\r\n");
        invalid_str("PROXY TCP4 192.0.2 198.51.100.1 1 7\r\n");
        invalid_str("PROXY TCP4 192.0.2.7.1 198.51.100.1 1 7\r\n");
        invalid_str("PROXY TCP4 192.0.2.7 198.51.100.1 01 7\r\n");    /* port with a leading zero */
        invalid_str("PROXY TCP4 192.0.2.7 198.51.100.1 65536 7\r\n");
        invalid_str("PROXY TCP4 192.0.2.7 198.51.100.1 1 -7\r\n");
        invalid_str("PROXY TCP4 192.0.2.7 198.51.100.1 +1 7\r\n");
        invalid_str("PROXY TCP4 2001:db8::5 198.51.100.1 1 7\r\n");   /* TCP4 with IPv6 */
        invalid_str("PROXY TCP6 192.0.2.7 2001:db8::1 1 7\r\n");      /* TCP6 with IPv4 */
        invalid_str("PROXY TCP6 2001:db8::5%eth0 2001:db8::1 1 7\r\n");
        invalid_str("PROXY TCP4 192.0.2.7 198.51.100.1 1 7\t\r\n");
        invalid_str("PROXY TCP4 192.0.2.\x80 198.51.100.1 1 7\r\n");

        /* No CRLF within 107 bytes: refused at the 107th, not waited for. */
        memset(longline, 0, sizeof longline);
        memcpy(longline, "PROXY UNKNOWN ", 14);
        memset(longline + 14, 'a', sizeof longline - 15);
        invalid(longline, PROXY_V1_MAX);
        memcpy(longline + 105, "\r\n", 2);             /* 107 with CRLF: fine */
        ck_assert_int_eq(valid(longline, 107).version, 1);
        memcpy(longline + 105, "a\r\n", 3);            /* 108: too long */
        invalid(longline, 108);
}
END_TEST

START_TEST(test_v2_ipv4) {
        uint8_t h[PROXY_HEADER_MAX], b[PROXY_V2_MAX_PAYLOAD];
        size_t n = v2(h, 0x21, 0x11, b, body(b, AF_INET, "192.0.2.7", 51234, "198.51.100.1", 7, NULL, 0));
        struct proxy_header ph = valid(h, n);

        ck_assert_uint_eq(n, 28);
        ck_assert_uint_eq(ph.version, 2);
        ck_assert(ph.has_addresses);
        check_addr(&ph.src, AF_INET, "192.0.2.7", 51234);
        check_addr(&ph.dst, AF_INET, "198.51.100.1", 7);
}
END_TEST

START_TEST(test_v2_ipv6) {
        uint8_t h[PROXY_HEADER_MAX], b[PROXY_V2_MAX_PAYLOAD];
        size_t n = v2(h, 0x21, 0x21, b, body(b, AF_INET6, "2001:db8::5", 40022, "2001:db8::1", 7, NULL, 0));
        struct proxy_header ph = valid(h, n);

        ck_assert_uint_eq(n, 52);
        check_addr(&ph.src, AF_INET6, "2001:db8::5", 40022);
        check_addr(&ph.dst, AF_INET6, "2001:db8::1", 7);

        n = v2(h, 0x21, 0x21, b, body(b, AF_INET6, "::ffff:192.0.2.9", 1, "::1", 7, NULL, 0));
        ph = valid(h, n);
        check_addr(&ph.src, AF_INET, "192.0.2.9", 1);
}
END_TEST

START_TEST(test_v2_tlvs_and_padding) {
        /* PP2_TYPE_ALPN "echo", PP2_TYPE_AUTHORITY, an AWS VPC endpoint id (0xEA). */
        static const uint8_t tlvs[] = {
                0x01, 0x00, 0x04, 'e', 'c', 'h', 'o',
                0x02, 0x00, 0x0b, 'e', 'x', 'a', 'm', 'p', 'l', 'e', '.', 'c', 'o', 'm',
                0xEA, 0x00, 0x17, 0x01, 'v', 'p', 'c', 'e', '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9',
                'a', 'b', 'c', 'd', 'e', 'f', '0',
        };
        uint8_t h[PROXY_HEADER_MAX], b[PROXY_V2_MAX_PAYLOAD], pad[PROXY_V2_MAX_PAYLOAD] = { 0 };
        struct proxy_header ph;
        size_t n;

        n = v2(h, 0x21, 0x11, b, body(b, AF_INET, "192.0.2.7", 1, "198.51.100.1", 7, tlvs, sizeof tlvs));
        ph = valid(h, n);
        check_addr(&ph.src, AF_INET, "192.0.2.7", 1);

        n = v2(h, 0x21, 0x21, b, body(b, AF_INET6, "2001:db8::5", 2, "2001:db8::1", 7, tlvs, sizeof tlvs));
        ph = valid(h, n);
        check_addr(&ph.src, AF_INET6, "2001:db8::5", 2);

        /* Padded to 84 bytes with zeros (an NLB), and to the cap. */
        n = v2(h, 0x21, 0x11, b, body(b, AF_INET, "192.0.2.8", 3, "198.51.100.1", 7, pad, 84 - 28));
        ck_assert_uint_eq(n, 84);
        ph = valid(h, n);
        check_addr(&ph.src, AF_INET, "192.0.2.8", 3);
        n = v2(h, 0x21, 0x11, b, body(b, AF_INET, "192.0.2.8", 3, "198.51.100.1", 7, pad, PROXY_V2_MAX_PAYLOAD - 12));
        ck_assert_uint_eq(n, PROXY_HEADER_MAX);
        (void) valid(h, n);
}
END_TEST

START_TEST(test_v2_local_unspec) {
        uint8_t h[PROXY_HEADER_MAX], b[PROXY_V2_MAX_PAYLOAD];
        struct proxy_header ph;
        size_t n;

        /* LOCAL: whatever the family and addresses, they are not used. */
        ph = valid(h, v2(h, 0x20, 0x00, NULL, 0));
        ck_assert(!ph.has_addresses);
        n = v2(h, 0x20, 0x11, b, body(b, AF_INET, "10.9.9.9", 1, "10.0.0.1", 7, NULL, 0));
        ph = valid(h, n);
        ck_assert(!ph.has_addresses);
        ph = valid(h, v2(h, 0x20, 0x31, b, 5));        /* UNIX, short: ignored */
        ck_assert(!ph.has_addresses);
        /* PROXY over UNSPEC: no addresses either. */
        ph = valid(h, v2(h, 0x21, 0x00, b, 7));
        ck_assert(!ph.has_addresses);
}
END_TEST

START_TEST(test_v2_invalid) {
        uint8_t h[PROXY_HEADER_MAX + 16], b[PROXY_V2_MAX_PAYLOAD + 16] = { 0 };
        size_t n;

        /* Bad signature. */
        n = v2(h, 0x21, 0x11, b, 12);
        h[11] = 'X';
        invalid(h, n);
        /* Versions 1 and 3 in the binary form; commands 2 and 15. */
        invalid(h, v2(h, 0x11, 0x11, b, 12));
        invalid(h, v2(h, 0x31, 0x11, b, 12));
        invalid(h, v2(h, 0x22, 0x11, b, 12));
        invalid(h, v2(h, 0x2F, 0x11, b, 12));
        /* PROXY over UDP, UNIX, or unknown families. */
        invalid(h, v2(h, 0x21, 0x12, b, 12));
        invalid(h, v2(h, 0x21, 0x22, b, 36));
        invalid(h, v2(h, 0x21, 0x31, b, 216));
        invalid(h, v2(h, 0x21, 0x10, b, 12));
        invalid(h, v2(h, 0x21, 0x13, b, 12));
        invalid(h, v2(h, 0x21, 0x41, b, 12));
        /* Lengths too short for the addresses. */
        invalid(h, v2(h, 0x21, 0x11, b, 11));
        invalid(h, v2(h, 0x21, 0x21, b, 35));
        invalid(h, v2(h, 0x21, 0x21, b, 12));
        /* Beyond the cap: refused as soon as the length is read. */
        n = v2(h, 0x21, 0x11, b, PROXY_V2_MAX_PAYLOAD + 1);
        invalid(h, 16);
        invalid(h, n);
        h[14] = 0xFF, h[15] = 0xFF;
        invalid(h, 16);
}
END_TEST

START_TEST(test_garbage) {
        static const uint8_t zeros[32];

        invalid_str("hello world\r\n");
        invalid("\r\n\r\n\0\r\nQUIT\r", 12);
        invalid(zeros, sizeof zeros);
        invalid_str("\r\n\r\n\n");
        invalid_str("PROXYTCP4");
}
END_TEST

START_TEST(test_empty) {
        struct proxy_header h;
        const char *why;

        ck_assert_int_eq(proxy_parse("", 0, &h, &why), 0);
}
END_TEST

static Suite *proxy_suite(void) {
        Suite *s = suite_create("proxy");
        TCase *tc;

        tc = tcase_create("v1");
        tcase_add_test(tc, test_v1_tcp4);
        tcase_add_test(tc, test_v1_tcp6);
        tcase_add_test(tc, test_v1_unknown);
        tcase_add_test(tc, test_v1_invalid);
        suite_add_tcase(s, tc);

        tc = tcase_create("v2");
        tcase_add_test(tc, test_v2_ipv4);
        tcase_add_test(tc, test_v2_ipv6);
        tcase_add_test(tc, test_v2_tlvs_and_padding);
        tcase_add_test(tc, test_v2_local_unspec);
        tcase_add_test(tc, test_v2_invalid);
        suite_add_tcase(s, tc);

        tc = tcase_create("other");
        tcase_add_test(tc, test_garbage);
        tcase_add_test(tc, test_empty);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return unit_run(proxy_suite());
}
