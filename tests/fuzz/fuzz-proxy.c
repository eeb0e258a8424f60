/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target over the PROXY header parser: any bytes must be taken
 * as a header, a beginning, or refused, never crash or read beyond them
 * (ASan, UBSan). A header it takes must be taken the same fed in pieces:
 * every shorter prefix asks for more (so reading byte by byte never stops
 * early or refuses what the whole accepts), and bytes after it change nothing.
 */
#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proxy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct proxy_header h, again;
        const char *why;
        uint8_t *copy;
        ssize_t n, r;

        /* An exact-size copy, so that ASan sees any read past the end. */
        copy = malloc(size ? size : 1);
        assert(copy);
        memcpy(copy, data, size);
        n = proxy_parse(copy, size, &h, &why);
        assert(n == 0 || n == -EBADMSG || (n > 0 && (size_t) n <= size));
        assert(n != -EBADMSG || why);
        if (n > 0) {
                assert((size_t) n <= PROXY_HEADER_MAX);
                assert(h.version == 1 || h.version == 2);
                assert(!h.has_addresses || h.src.sa.sa_family == AF_INET || h.src.sa.sa_family == AF_INET6);
                for (size_t k = 0; k < (size_t) n; k++) {
                        r = proxy_parse(copy, k, &again, &why);
                        assert(r == 0);
                }
                r = proxy_parse(copy, (size_t) n, &again, &why);
                assert(r == n && again.has_addresses == h.has_addresses);
                assert(!h.has_addresses || sockaddr_equal(&again.src, &h.src));
        } else if (n == -EBADMSG && size > 0) {
                /* Refused: so is any longer input beginning the same way
                 * (never accepted later), and a prefix never ran past it. */
                r = proxy_parse(copy, size - 1, &again, &why);
                assert(r <= 0);
        }
        free(copy);
        return 0;
}
