/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target over the configuration parser and validator: any input
 * must be accepted or rejected with messages, never crash or leak (ASan,
 * UBSan). An accepted configuration must also survive the round trip
 * through --dump-config: its dump parses, and dumps the same again.
 */
#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *dump(const struct config *c, size_t *ret_size) {
        char *buf = NULL;
        FILE *f = open_memstream(&buf, ret_size);

        assert(f);
        config_dump(c, f);
        assert(fclose(f) == 0);
        return buf;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct config *c = NULL, *again = NULL;
        struct strv errors = {};
        char *text, *text2;
        size_t n, n2;
        int r;

        if (size > CONFIG_MAX_FILE_SIZE)
                return 0;
        log_set_level(LOG_ERR);
        r = config_load_text("fuzz.conf", (const char *) data, size, &c, &errors);
        if (r < 0) {
                /* Rejected: there is always a message saying why. */
                assert(errors.n > 0);
                for (size_t i = 0; i < errors.n; i++)
                        assert(strncmp(errors.items[i], "fuzz.conf", 9) == 0);
                strv_clear(&errors);
                assert(!c);
                return 0;
        }
        assert(c && errors.n == 0);

        text = dump(c, &n);
        r = config_load_text("fuzz.conf", text, n, &again, &errors);
        if (r < 0) {
                for (size_t i = 0; i < errors.n; i++)
                        fprintf(stderr, "%s\n", errors.items[i]);
                fprintf(stderr, "--- dump that does not parse:\n%s", text);
                abort();
        }
        text2 = dump(again, &n2);
        /* The first line names the source file; everything after it must match. */
        const char *body = strchr(text, '\n'), *body2 = strchr(text2, '\n');
        if (!body || !body2 || strcmp(body, body2) != 0) {
                fprintf(stderr, "--- dump:\n%s--- dump of the dump:\n%s", text, text2);
                abort();
        }
        free(text);
        free(text2);
        config_free(again);
        config_free(c);
        return 0;
}
