/* SPDX-License-Identifier: MIT */
/*
 * What of the master's address space a forked worker gets. fork() copies
 * every mapping of the parent, and the kernel's work for it, and again when
 * the worker exits, grows with the number of mappings far more than with
 * their size: echod links libconfuse, and libsystemd, which brings libcap,
 * libgcrypt, libgpg-error, liblzma, libzstd and liblz4, about five mappings
 * each, none of which a worker ever calls. Marking them MADV_DONTFORK
 * leaves them out of every worker (26 mappings instead of 69); the master
 * keeps them.
 *
 * Only those libraries, known by name, are left out: anything else loaded
 * (an LD_PRELOAD interposer around fork() or malloc(), say) stays, since a
 * worker may run its code. libsystemd itself stays when workers log to the
 * journal. AddressSanitizer builds (and clang's UndefinedBehaviorSanitizer
 * ones, where the compiler says so) keep everything: their error reports
 * walk every loaded object.
 */
#include <elf.h>
#include <errno.h>
#include <link.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fork-trim.h"
#include "macro.h"

#if defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(undefined_behavior_sanitizer)
#define SANITIZED 1
#endif
#endif
#ifndef SANITIZED
#define SANITIZED 0
#endif

/* Linked for the master's sake only: the configuration parser, and what
 * libsystemd needs for features workers never use (compression, hashing,
 * capabilities). */
static const char *const master_only[] = {
        "libconfuse.so.",
        "libcap.so.",
        "libgcrypt.so.",
        "libgpg-error.so.",
        "liblzma.so.",
        "libzstd.so.",
        "liblz4.so.",
};

struct trim {
        bool keep_libsystemd;
        uintptr_t page;
        size_t objects;
        int error;
};

static bool has_prefix(const char *s, const char *prefix) {
        return strncmp(s, prefix, strlen(prefix)) == 0;
}

static bool leave_out(const char *name, const struct trim *t) {
        const char *base;

        if (!name || !*name)
                return false;           /* the program itself */
        base = strrchr(name, '/');
        base = base ? base + 1 : name;
        for (size_t i = 0; i < ARRAY_SIZE(master_only); i++)
                if (has_prefix(base, master_only[i]))
                        return true;
        return !t->keep_libsystemd && has_prefix(base, "libsystemd.so.");
}

static int trim_object(struct dl_phdr_info *info, size_t size, void *userdata) {
        struct trim *t = userdata;

        (void) size;
        if (!leave_out(info->dlpi_name, t))
                return 0;
        for (unsigned i = 0; i < info->dlpi_phnum; i++) {
                const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
                if (ph->p_type != PT_LOAD || ph->p_memsz == 0)
                        continue;
                uintptr_t start = (info->dlpi_addr + ph->p_vaddr) & ~(t->page - 1);
                uintptr_t end = (info->dlpi_addr + ph->p_vaddr + ph->p_memsz + t->page - 1) & ~(t->page - 1);
                if (madvise((void *) start, end - start, MADV_DONTFORK) < 0 && t->error == 0)
                        t->error = -errno;
        }
        t->objects++;
        return 0;
}

int fork_trim_libraries(bool workers_use_journal, size_t *ret_objects) {
        struct trim t = {
                .keep_libsystemd = workers_use_journal,
                .page = (uintptr_t) sysconf(_SC_PAGESIZE),
        };

        *ret_objects = 0;
        if (SANITIZED)
                return 0;
        (void) dl_iterate_phdr(trim_object, &t);
        *ret_objects = t.objects;
        return t.error;
}
