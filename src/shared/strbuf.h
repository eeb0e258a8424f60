/* SPDX-License-Identifier: MIT */
/*
 * Builds a string by appending pieces, without printf: workers format
 * their process title with it, so that a forked worker does not fault in
 * stdio's formatting code. Always NUL-terminated; what does not fit is cut off.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

struct strbuf {
        char *p, *end;          /* next byte to write; the last byte (for the NUL) */
};

/* size must be at least 1. */
static inline void strbuf_init(struct strbuf *sb, char *buf, size_t size) {
        sb->p = buf;
        sb->end = buf + size - 1;
        *buf = '\0';
}

void strbuf_add(struct strbuf *sb, const char *s);
void strbuf_add_u64(struct strbuf *sb, uint64_t v);
/* usec as seconds with three decimals: "1.250". */
void strbuf_add_seconds(struct strbuf *sb, uint64_t usec);
