# SPDX-License-Identifier: MIT
"""The harness's own promises that the other tests stand on: free_port()
hands out a port no client and no other test process can be given, and
that is free on every address echod may bind ("[::]:P" is dual-stack).
A port from bind(0) once made test_basic fail with "Address already in
use" in a parallel CI run."""
import os
import socket
import subprocess
import sys
import unittest

import echodtest
from echodtest import free_port


class FreePortTest(unittest.TestCase):
    def only(self, first, last):
        """Make free_port() choose from first..last for this test."""
        saved = echodtest._port_range
        echodtest._port_range = lambda: (first, last)
        self.addCleanup(setattr, echodtest, "_port_range", saved)

    def test_port_is_outside_the_ephemeral_range(self):
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low, high = (int(x) for x in f.read().split())
        for _ in range(20):
            port = free_port()
            self.assertFalse(low <= port <= high, "%d is in %d-%d" % (port, low, high))

    def test_one_process_never_gets_the_same_port_twice(self):
        ports = [free_port() for _ in range(50)]
        self.assertEqual(len(set(ports)), len(ports))

    def test_port_reserved_by_another_test_process_is_skipped(self):
        other = subprocess.Popen(
            [sys.executable, "-c",
             "import sys; sys.path.insert(0, %r)\n"
             "from echodtest import free_port\n"
             "print(free_port(), flush=True)\n"
             "sys.stdin.read()\n" % os.path.dirname(os.path.abspath(echodtest.__file__))],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.addCleanup(other.wait)
        self.addCleanup(other.stdout.close)
        self.addCleanup(other.stdin.close)
        held = int(other.stdout.readline())
        self.only(held, held)
        with self.assertRaisesRegex(AssertionError, "no free test port"):
            free_port()

    def test_released_port_that_nothing_holds_is_handed_out(self):
        # The other tests' "no free test port" comes from what holds it.
        port = free_port()
        os.close(echodtest._held_ports.pop(port))
        self.only(port, port)
        self.assertEqual(free_port(), port)

    def test_port_bound_on_ipv4_only_is_skipped(self):
        # A socket on 127.0.0.1:P makes "[::]:P" fail with EADDRINUSE.
        port = free_port()
        busy = socket.socket()
        self.addCleanup(busy.close)
        busy.bind(("127.0.0.1", port))
        os.close(echodtest._held_ports.pop(port))   # as if nobody reserved it
        self.only(port, port)
        with self.assertRaisesRegex(AssertionError, "no free test port"):
            free_port()

    def test_port_bound_for_udp_only_is_skipped(self):
        port = free_port()
        busy = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(busy.close)
        busy.bind(("127.0.0.1", port))
        os.close(echodtest._held_ports.pop(port))
        self.only(port, port)
        with self.assertRaisesRegex(AssertionError, "no free test port"):
            free_port()


if __name__ == "__main__":
    unittest.main(verbosity=2)
