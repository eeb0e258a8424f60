#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""reuse_port: several echod instances on one port. Both serve; and when one
stops, the connections waiting in its accept queue go to the other when
the kernel migrates them (net.ipv4.tcp_migrate_req = 1), and are reset
when it does not.

The whole test runs in a network namespace of its own (unshare(2)), so
that it can set tcp_migrate_req, a per-namespace sysctl, without touching
the host's."""
import ctypes
import os
import re
import select
import signal
import socket
import subprocess
import unittest

from echodtest import TIMEOUT, EchodTestCase, main, read_exactly, wait_until

CLONE_NEWNET = 0x40000000
MIGRATE = "/proc/sys/net/ipv4/tcp_migrate_req"
CONFIG = ("reuse_port = true\nmax_connections_per_source = 0\nrate_limit = 0\n"
          "rate_limit_per_source = 0\nlog_rate = 0\n")


def setUpModule():
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNET) != 0:
        e = ctypes.get_errno()
        raise OSError(e, "unshare(CLONE_NEWNET): %s (the test needs root)" % os.strerror(e))
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True, timeout=TIMEOUT)


def set_migrate(on):
    if not on and not os.path.exists(MIGRATE):
        return                  # older kernels never migrate
    with open(MIGRATE, "w") as f:
        f.write("1\n" if on else "0\n")


def accept_queues(port):
    """{pid: connections waiting in its accept queue} of the listeners on
    port, from the kernel (ss -ltnp: Recv-Q of a listening socket)."""
    out = subprocess.run(["ss", "-Hltnp", "sport", "=", ":%d" % port], capture_output=True,
                         text=True, timeout=TIMEOUT, check=True).stdout
    queues = {}
    for line in out.splitlines():
        m = re.search(r"^LISTEN\s+(\d+)\s+\d+.*pid=(\d+)", line)
        if m:
            queues[int(m.group(2))] = int(m.group(1))
    return queues


def read_text(path):
    with open(path) as f:
        return f.read()


def closes(d):
    return d.log_count(r"connection from .* closed")


class ReusePortTest(EchodTestCase):
    def pair(self):
        a = self.echod(CONFIG)
        b = self.echod(CONFIG, port=a.port)
        return a, b

    def test_two_instances_share_the_port_and_both_serve(self):
        a, b = self.pair()
        n = 200
        for i in range(n):
            with socket.create_connection(("127.0.0.1", a.port), timeout=TIMEOUT) as s:
                s.sendall(b"%d" % i)
                s.shutdown(socket.SHUT_WR)
                self.assertEqual(read_exactly(s, len(b"%d" % i)), b"%d" % i)
        wait_until(lambda: closes(a) + closes(b) == n, what="a close record for each of %d connections" % n)
        # The kernel spreads them by a hash of the client's port: all 200 on
        # one would be a chance of 2^-199.
        self.assertGreater(closes(a), 0)
        self.assertGreater(closes(b), 0)

    def stop_one_with_connections_queued(self, migrate):
        """Stops instance a while connections wait in its accept queue;
        returns (the sockets that waited on a, [what became of each])."""
        set_migrate(migrate)
        a, b = self.pair()
        n = 64
        # a sleeps in epoll_wait(), then cannot accept: what the kernel
        # hands to a's listener waits in its queue.
        wait_until(lambda: read_text("/proc/%d/wchan" % a.pid) in ("do_epoll_wait", "ep_poll"),
                   what="a waiting in epoll_wait()")
        a.kill(signal.SIGSTOP)
        wait_until(lambda: re.search(r"^State:\s+T", read_text("/proc/%d/status" % a.pid), re.M),
                   what="a stopped")
        socks = []
        for i in range(n):
            s = socket.create_connection(("127.0.0.1", a.port), timeout=TIMEOUT)
            self.addCleanup(s.close)
            s.sendall(b"x%02d" % i)
            s.shutdown(socket.SHUT_WR)
            socks.append(s)
        # b echoes its share; the rest waits for a, in a's accept queue.
        served_by_b = []

        def settled():
            for s in socks:
                if s not in served_by_b and select.select([s], [], [], 0)[0]:
                    served_by_b.append(s)
            return len(served_by_b) + accept_queues(a.port).get(a.pid, 0) == n
        wait_until(settled, what="each connection echoed by b or queued for a")
        waiting = [s for s in socks if s not in served_by_b]
        self.assertEqual(len(waiting), accept_queues(a.port)[a.pid])
        self.assertGreater(len(waiting), 0)             # 2^-64 otherwise
        for s in served_by_b:
            i = socks.index(s)
            self.assertEqual(read_exactly(s, 3), b"x%02d" % i)
        # a stops: SIGTERM is read before any accept, and closes the listener.
        a.kill(signal.SIGTERM)
        os.kill(a.pid, signal.SIGCONT)
        self.assertEqual(a.proc.wait(timeout=TIMEOUT), 0)
        results = []
        for s in waiting:
            s.settimeout(TIMEOUT)
            try:
                results.append(read_exactly(s, 3) == b"x%02d" % socks.index(s))
            except ConnectionResetError:
                results.append("reset")
        return waiting, results, b

    def test_with_tcp_migrate_req_a_stopping_instance_hands_its_queue_over(self):
        if not os.path.exists(MIGRATE):
            if os.environ.get("CI") == "true":
                self.fail("the kernel has no net.ipv4.tcp_migrate_req (Linux 5.14 and later have it)")
            raise unittest.SkipTest("the kernel has no net.ipv4.tcp_migrate_req (before 5.14)")
        waiting, results, b = self.stop_one_with_connections_queued(True)
        self.assertEqual(results, [True] * len(waiting))
        b.wait_log(r"connection from .* closed", count=64)

    def test_without_tcp_migrate_req_its_queue_is_reset(self):
        # What the documentation says happens without the sysctl.
        waiting, results, _ = self.stop_one_with_connections_queued(False)
        self.assertEqual(results, ["reset"] * len(waiting))


if __name__ == "__main__":
    main()
