# SPDX-License-Identifier: MIT
"""Workers are forked without the libraries only the master calls
(MADV_DONTFORK). A worker must still be able to run any code it has:
here an LD_PRELOAD shim (tests/shim/lateresolve.c) makes each worker
call C library functions nothing called before the fork, among them
asprintf() with a 70-byte result, which makes glibc call realloc()
through its own PLT. Bound lazily, each of those calls would look the
symbol up through every loaded library, the unmapped ones included,
and the worker would die of SIGSEGV."""
import os
import re
import shutil
import socket
import tempfile
import unittest

from echodtest import ECHOD, EchodTestCase, connect, main, read_exactly, recv_all, shim

PROBE = re.compile(r"lateresolve: pid (\d+) resolved late: (late-bound-asprintf +pid +\d+ "
                   r"70 bytes from a worker +\|) libconfuse=(-?\d)")


def lateresolve_shim(tmpdir):
    # -z lazy, as meson builds it: its own calls are bound on first use too.
    return shim("lateresolve", tmpdir, ["-Wl,-z,lazy"])


def sanitized_build():
    """Sanitizer builds keep every library in workers."""
    if os.environ.get("ECHOD_TEST_SANITIZED") == "1":
        return True
    with open(ECHOD, "rb") as f:
        image = f.read()
    return b"__asan_init" in image or b"__ubsan_handle_" in image


class ForkTrimTest(EchodTestCase):
    def setUp(self):
        self.shimdir = tempfile.mkdtemp(prefix="echod-shim-")
        self.addCleanup(shutil.rmtree, self.shimdir, True)
        self.shim = lateresolve_shim(self.shimdir)
        self.sanitized = sanitized_build()

    def start(self, log_target, **env):
        env["LD_PRELOAD"] = self.shim
        # An ASan build insists on coming first in the library list.
        asan = os.environ.get("ASAN_OPTIONS", "")
        env["ASAN_OPTIONS"] = (asan + ":" if asan else "") + "verify_asan_link_order=0"
        return self.echod(log_target=log_target, env=env)

    def serve_one(self, d, payload):
        """One connection whose worker resolves new symbols before echoing;
        returns the probe's report (pid, 70-byte string, libconfuse mapped)."""
        with connect(d.port) as c:
            try:
                c.sendall(payload)
                got = read_exactly(c, len(payload))
                c.shutdown(socket.SHUT_WR)
                rest = recv_all(c)
            except OSError as e:
                d.wait_workers(0)
                self.fail("connection failed: %s; log:\n%s" % (e, d.read_log()))
        self.assertEqual(got, payload)
        self.assertEqual(rest, b"")
        d.wait_workers(0)
        reports = [m for m in PROBE.findall(d.read_log())]
        self.assertTrue(reports, "no report from the shim; log:\n" + d.read_log())
        pid, text, confuse = reports[-1]
        self.assertNotEqual(int(pid), d.pid, "the probe ran in the master")
        self.assertEqual(len(text), 70)
        return int(pid), int(confuse)

    def check(self, log_target, **env):
        d = self.start(log_target, **env)
        for i in range(3):
            pid, confuse = self.serve_one(d, b"late binding %d\n" % i * 100)
            # The probe ran where the trim is in effect, or the test proves nothing.
            self.assertEqual(confuse, 1 if self.sanitized else 0,
                             "worker %d: libconfuse mapped=%d" % (pid, confuse))
        log = d.read_log()
        if log_target == "stderr":
            self.assertEqual(len(re.findall(r"connection from \S+ closed: ", log)), 3)
        self.assertNotIn("killed by signal", log)
        self.assertNotIn("exited with unexpected status", log)
        self.assertEqual(d.stop(), 0)

    def test_worker_resolves_symbols_the_master_never_used(self):
        self.check("stderr")

    def test_with_journal_logging(self):
        self.check("journal")

    def test_with_ld_bind_now_given(self):
        self.check("stderr", LD_BIND_NOW="1")

    def test_with_ld_bind_now_empty(self):
        # The dynamic linker reads an empty LD_BIND_NOW as unset.
        self.check("stderr", LD_BIND_NOW="")


class RseqTest(EchodTestCase):
    """The re-exec also turns glibc's restartable sequences off (see
    fork-trim.c), unless the operator's GLIBC_TUNABLES names them; the
    master says which way it went, from glibc's own __rseq_size."""

    def rseq(self, **env):
        d = self.echod("log_level = debug\n", env=env)
        said = d.wait_log(r"restartable sequences are (on|off)")
        self.assertEqual(d.stop(), 0)
        return said[0]

    def test_off_after_the_re_exec(self):
        # Sanitizer builds do not re-exec (fork-trim.c): rseq stays on.
        self.assertEqual(self.rseq(), "on" if sanitized_build() else "off")

    def test_added_to_the_operators_tunables(self):
        self.assertEqual(self.rseq(GLIBC_TUNABLES="glibc.malloc.perturb=0"),
                         "on" if sanitized_build() else "off")

    def test_operators_choice_is_kept(self):
        self.assertEqual(self.rseq(GLIBC_TUNABLES="glibc.pthread.rseq=1"), "on")


if __name__ == "__main__":
    main()
