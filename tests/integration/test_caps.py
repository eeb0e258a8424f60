# SPDX-License-Identifier: MIT
"""Workers never keep the master's capabilities: a master that holds
CAP_NET_BIND_SERVICE (as under the shipped unit) forks workers without it,
and a worker whose capability drop fails closes its connection unserved."""
import os
import shutil
import socket
import tempfile
import unittest

from echodtest import EchodTestCase, connect, is_refused, main, read_exactly, shim

SETPRIV = shutil.which("setpriv")
NET_BIND_SERVICE = 1 << 10


def caps(pid):
    """{'CapEff': int, 'CapPrm': int, ...} of a process."""
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("Cap"):
                key, value = line.split(":")
                out[key] = int(value, 16)
    return out


class CapsTest(EchodTestCase):
    def setUp(self):
        if os.getuid() != 0 or not SETPRIV:
            if os.environ.get("CI") == "true":
                self.fail("needs root and setpriv(1) (package util-linux)")
            raise unittest.SkipTest("needs root and setpriv(1)")

    def echod_with_caps(self, env=()):
        # As the unit runs it: an unprivileged user with CAP_NET_BIND_SERVICE
        # ambient. env goes to echod only, not to setpriv.
        prefix = [SETPRIV, "--reuid=65534", "--regid=65534", "--clear-groups",
                  "--inh-caps=+net_bind_service", "--ambient-caps=+net_bind_service", "env"] + list(env)
        d = self.echod("", prefix=prefix)
        self.assertTrue(caps(d.pid)["CapEff"] & NET_BIND_SERVICE, "the master should hold the capability")
        return d

    def test_workers_have_no_capabilities(self):
        d = self.echod_with_caps()
        s = connect(d.port)
        s.sendall(b"x")
        self.assertEqual(read_exactly(s, 1), b"x")
        d.wait_workers(1)
        (worker,) = d.workers()
        self.assertEqual({k: v for k, v in caps(worker).items() if k != "CapBnd"},
                         {"CapInh": 0, "CapPrm": 0, "CapEff": 0, "CapAmb": 0})
        s.close()

    def test_failed_drop_closes_unserved(self):
        tmp = tempfile.mkdtemp(prefix="echod-test-")
        self.addCleanup(shutil.rmtree, tmp, True)
        so = shim("failsyscall", tmp)
        asan = os.environ.get("ASAN_OPTIONS", "")
        d = self.echod_with_caps(env=["LD_PRELOAD=" + so, "FAILSYSCALL=capset",
                                      "ASAN_OPTIONS=" + (asan + ":" if asan else "") + "verify_asan_link_order=0"])
        s = connect(d.port)
        s.sendall(b"secret")
        # Closed without a byte of echo, and said why.
        self.assertTrue(is_refused(s))
        s.close()
        d.wait_log(r"worker cannot drop its capabilities, closing the connection unserved")
        d.wait_log(r"worker \d+ \(client 127\.0\.0\.1 port \d+\) exited with unexpected status 1")
        d.wait_workers(0)


if __name__ == "__main__":
    main()
