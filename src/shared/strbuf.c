/* SPDX-License-Identifier: MIT */
/* Appending to a fixed buffer without printf. */
#include "macro.h"
#include "strbuf.h"

void strbuf_add(struct strbuf *sb, const char *s) {
        while (*s && sb->p < sb->end)
                *sb->p++ = *s++;
        *sb->p = '\0';
}

void strbuf_add_u64(struct strbuf *sb, uint64_t v) {
        char digits[21], *d = digits + sizeof digits - 1;

        *d = '\0';
        do
                *--d = (char) ('0' + v % 10);
        while ((v /= 10) > 0);
        strbuf_add(sb, d);
}

void strbuf_add_seconds(struct strbuf *sb, uint64_t usec) {
        uint64_t ms = usec % USEC_PER_SEC / 1000;
        char frac[5] = { '.', (char) ('0' + ms / 100), (char) ('0' + ms / 10 % 10), (char) ('0' + ms % 10), '\0' };

        strbuf_add_u64(sb, usec / USEC_PER_SEC);
        strbuf_add(sb, frac);
}
