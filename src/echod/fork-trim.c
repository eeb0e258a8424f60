/* SPDX-License-Identifier: MIT */
/*
 * What of the master's address space a forked worker gets. fork() copies
 * every mapping of the parent, and the kernel's work for it, and again when
 * the worker exits, grows with the number of mappings far more than with
 * their size: echod links libconfuse, and libsystemd, which brings libcap,
 * libgcrypt, libgpg-error, liblzma, libzstd and liblz4, about five mappings
 * each, none of which a worker ever calls. Marking them MADV_DONTFORK
 * leaves them out of every worker; the master keeps them.
 *
 * Only those libraries, known by name, are left out: anything else loaded
 * (an LD_PRELOAD interposer around fork() or malloc(), say) stays, since a
 * worker may run its code. libsystemd goes too: the master writes every
 * journal record, through log.c's own socket.
 *
 * A library left out is still on the dynamic linker's lists, and a symbol
 * lookup walks the hash tables of every object in the global scope: in a
 * worker, the first lookup that reaches a library left out is a SIGSEGV.
 * The dynamic linker looks symbols up when a lazily bound PLT slot is first
 * called (the C library's own calls to realloc() and friends go through
 * such slots), and in dlopen() and dlsym(). Hence:
 *
 *  - Nothing is left out unless every PLT slot of every object was bound
 *    at load time: LD_BIND_NOW was set when the dynamic linker started
 *    (it then binds objects dlopen()ed later at once too), or every object
 *    loaded asks for it itself (DF_BIND_NOW, DF_1_NOW; the dynamic linker
 *    relocates itself at once). LD_AUDIT, LD_PROFILE and DT_AUDIT send PLT
 *    calls through the dynamic linker whatever the binding: none may be set.
 *  - So that this holds with libraries that bind lazily (Debian's
 *    libc.so.6 does), echod runs itself again, before main(), with
 *    LD_BIND_NOW=1 added to its environment. The new image finds it set
 *    and never does so again. Same pid, arguments and descriptors.
 *  - Workers do not call dlopen() or dlsym(), nor what calls them inside
 *    the C library: NSS lookups (getpwnam(), getaddrinfo() of names),
 *    iconv() and locales other than C, backtrace() and thread cancellation
 *    (they load libgcc_s to unwind). IFUNC resolvers run while relocating,
 *    so at start-up. A worker ends with _exit(), which runs no destructor
 *    of a library left out.
 *  - Sanitizer builds (meson's b_sanitize, passed as ECHOD_SANITIZED) keep
 *    everything: their reports unwind and walk every loaded object.
 *
 * The new image also runs with glibc.pthread.rseq=0 added to
 * GLIBC_TUNABLES, unless the operator's own GLIBC_TUNABLES names that
 * tunable. glibc registers every thread for restartable sequences, and the
 * kernel then writes the CPU number into the thread's TLS each time the
 * thread returns to user space after being scheduled or migrated. After a
 * fork that write lands on a page the worker still shares, which costs a
 * fault and a page copy: in the master after many a fork, and in nearly
 * every worker. echod is single-threaded and never asks which CPU it is on,
 * the only use glibc 2.36 makes of the registration.
 */
#include <elf.h>
#include <errno.h>
#include <link.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fork-trim.h"
#include "macro.h"

#ifndef ECHOD_SANITIZED
#define ECHOD_SANITIZED 0
#endif

/* Linked for the master's sake only: the configuration parser, and what
 * libsystemd needs for features workers never use (compression, hashing,
 * capabilities). */
static const char *const master_only[] = {
        "libconfuse.so.",
        "libsystemd.so.",
        "libcap.so.",
        "libgcrypt.so.",
        "libgpg-error.so.",
        "liblzma.so.",
        "libzstd.so.",
        "liblz4.so.",
};

/* What the dynamic linker was started with, read before main() can
 * change the environment. */
static bool env_bind_now, env_plt_hooks;

struct binding {
        uintptr_t interpreter;
        bool all_now;
        bool audit;
};

/* How many objects were loaded before main(): those dlopen()ed later (NSS
 * modules for the user lookup, and what they need) come after them in the
 * dynamic linker's list, and only the master ever calls them. */
static size_t initial_objects;

struct trim {
        uintptr_t page;
        size_t index;           /* of the object in the dynamic linker's list */
        size_t objects;
        int error;
};

static bool has_prefix(const char *s, const char *prefix) {
        return strncmp(s, prefix, strlen(prefix)) == 0;
}

static bool is_assignment(const char *entry, const char *name) {
        size_t len = strlen(name);

        return strncmp(entry, name, len) == 0 && entry[len] == '=';
}

/* As the dynamic linker reads it: set when not empty, the last one wins. */
static bool env_set(char **envp, const char *name) {
        bool set = false;

        for (; envp && *envp; envp++)
                if (is_assignment(*envp, name))
                        set = (*envp)[strlen(name) + 1] != '\0';
        return set;
}

static int check_object(struct dl_phdr_info *info, size_t size, void *userdata) {
        struct binding *b = userdata;
        const ElfW(Dyn) *dyn = NULL;
        bool plt = false, now = false;

        (void) size;
        for (unsigned i = 0; i < info->dlpi_phnum; i++)
                if (info->dlpi_phdr[i].p_type == PT_DYNAMIC)
                        dyn = (const ElfW(Dyn) *) (info->dlpi_addr + info->dlpi_phdr[i].p_vaddr);
        for (; dyn && dyn->d_tag != DT_NULL; dyn++)
                switch (dyn->d_tag) {
                case DT_JMPREL:
                        plt = true;
                        break;
                case DT_BIND_NOW:
                        now = true;
                        break;
                case DT_FLAGS:
                        now = now || (dyn->d_un.d_val & DF_BIND_NOW);
                        break;
                case DT_FLAGS_1:
                        now = now || (dyn->d_un.d_val & DF_1_NOW);
                        break;
                case DT_AUDIT:
                case DT_DEPAUDIT:
                        b->audit = true;
                        break;
                }
        if (plt && !now && info->dlpi_addr != b->interpreter)
                b->all_now = false;
        return 0;
}

static struct binding loaded_binding(void) {
        struct binding b = {
                .interpreter = (uintptr_t) getauxval(AT_BASE),
                .all_now = true,
        };

        (void) dl_iterate_phdr(check_object, &b);
        return b;
}

/* Runs before main(), with the arguments and the environment the process
 * was started with (glibc passes them to ELF constructors). */
static int count_object(struct dl_phdr_info *info, size_t size, void *userdata) {
        (void) info;
        (void) size;
        (*(size_t *) userdata)++;
        return 0;
}

#define RSEQ_TUNABLE "glibc.pthread.rseq"

/* "GLIBC_TUNABLES=..." for the new image: the operator's tunables (the last
 * assignment, as glibc reads them) and rseq off, or NULL to pass theirs on
 * as they are: they name rseq themselves, or there is no memory. */
static char *tunables_for_exec(char **envp) {
        const char *theirs = NULL;
        char *s;

        for (size_t i = 0; envp && envp[i]; i++)
                if (is_assignment(envp[i], "GLIBC_TUNABLES"))
                        theirs = envp[i] + strlen("GLIBC_TUNABLES=");
        if (theirs && strstr(theirs, RSEQ_TUNABLE "="))
                return NULL;
        if (asprintf(&s, "GLIBC_TUNABLES=%s%s" RSEQ_TUNABLE "=0",
                     theirs ? theirs : "", theirs && *theirs ? ":" : "") < 0)
                return NULL;
        return s;
}

__attribute__((constructor)) static void fork_trim_bind_now(int argc, char **argv, char **envp) {
        struct binding b;
        size_t n = 0, k = 0;

        if (ECHOD_SANITIZED)
                return;
        (void) dl_iterate_phdr(count_object, &initial_objects);
        env_bind_now = env_set(envp, "LD_BIND_NOW");
        env_plt_hooks = env_set(envp, "LD_AUDIT") || env_set(envp, "LD_PROFILE");
        if (env_bind_now || env_plt_hooks)
                return;
        b = loaded_binding();
        if (b.all_now || b.audit)
                return;
        /* Started as "ld.so echod ...": /proc/self/exe is the dynamic linker
         * (and AT_BASE 0, there being no interpreter). */
        if (b.interpreter == 0 || argc < 1 || !argv || argv[argc] != NULL)
                return;
        /* Under --inetd echod serves its one connection itself and forks no
         * worker: not worth an exec() per connection. Only a saving: what
         * fork_trim_libraries() does rests on the binding it finds. */
        for (int i = 1; i < argc; i++)
                if (strcmp(argv[i], "--inetd") == 0)
                        return;

        while (envp && envp[n])
                n++;
        char **env = malloc((n + 3) * sizeof *env);
        char *tunables = tunables_for_exec(envp);
        if (!env) {
                free(tunables);
                return;
        }
        for (size_t i = 0; i < n; i++)
                if (!is_assignment(envp[i], "LD_BIND_NOW") &&
                    !(tunables && is_assignment(envp[i], "GLIBC_TUNABLES")))
                        env[k++] = envp[i];
        env[k++] = (char *) "LD_BIND_NOW=1";
        if (tunables)
                env[k++] = tunables;
        env[k] = NULL;
        (void) execve("/proc/self/exe", argv, env);
        /* No /proc, or no memory: carry on, and leave nothing out. */
        free(tunables);
        free(env);
}

static bool leave_out(const char *name) {
        const char *base;

        if (!name || !*name)
                return false;           /* the program itself */
        base = strrchr(name, '/');
        base = base ? base + 1 : name;
        for (size_t i = 0; i < ARRAY_SIZE(master_only); i++)
                if (has_prefix(base, master_only[i]))
                        return true;
        return false;
}

static int trim_object(struct dl_phdr_info *info, size_t size, void *userdata) {
        struct trim *t = userdata;

        (void) size;
        bool late = initial_objects > 0 && t->index >= initial_objects;

        t->index++;
        if (!late && !leave_out(info->dlpi_name))
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

static bool all_bound(void) {
        struct binding b;

        if (env_plt_hooks)
                return false;
        b = loaded_binding();
        return !b.audit && (env_bind_now || b.all_now);
}

int fork_trim_libraries(size_t *ret_objects) {
        struct trim t = {
                .page = (uintptr_t) sysconf(_SC_PAGESIZE),
        };

        *ret_objects = 0;
        if (ECHOD_SANITIZED)
                return 0;
        if (!all_bound())
                return -ENOTSUP;
        (void) dl_iterate_phdr(trim_object, &t);
        *ret_objects = t.objects;
        return t.error;
}
