# SPDX-License-Identifier: MIT
"""Limits the master and the workers enforce: max_connections,
max_connections_per_source (by subnet, IPv4-mapped as IPv4), rate limits,
the bounded source table, idle and session timeouts, max_bytes."""
import socket
import time

from echodtest import (EchodTestCase, connect, echo, free_port, is_refused, main,
                       read_exactly, recv_all, try_echo, wait_until)


def hold(port, n, host="127.0.0.1", family=socket.AF_INET, source=None):
    """Opens n served connections (each proven by one echoed byte)."""
    socks = []
    for _ in range(n):
        s = socket.socket(family, socket.SOCK_STREAM)
        s.settimeout(20)
        if source:
            s.bind((source, 0))
        s.connect((host, port))
        s.sendall(b".")
        read_exactly(s, 1)
        socks.append(s)
    return socks


class LimitsTest(EchodTestCase):
    def test_max_connections_refuses_and_logs(self):
        d = self.echod("max_connections = 3\nmax_connections_per_source = 0\n")
        held = hold(d.port, 3)
        extra = connect(d.port)
        self.assertTrue(is_refused(extra))
        d.wait_log(r"refused connection from 127\.0\.0\.1:\d+: max_connections \(3\) reached, closing it")
        # A slot frees up: served again.
        held.pop().close()
        d.wait_workers(2)
        self.assertEqual(echo(d.port, b"again"), b"again")
        for s in held:
            s.close()

    def test_per_source_limit_counts_ipv4_mapped_as_ipv4(self):
        port = free_port()
        d = self.echod("max_connections_per_source = 2\n", port=port, listen=["[::]:%d" % port])
        # Over IPv4 to a dual-stack socket the peer is ::ffff:127.0.0.1: it must count as 127.0.0.1.
        held = hold(port, 2)
        self.assertTrue(is_refused(connect(port)))
        d.wait_log(r"refused connection from 127\.0\.0\.1:\d+: max_connections_per_source \(2\) reached for 127\.0\.0\.1/32")
        # Another source (127.0.0.2) is not affected.
        other = hold(port, 1, source="127.0.0.2")
        for s in held + other:
            s.close()

    def test_per_source_limit_by_ipv6_prefix(self):
        # ::1 and other loopback-free addresses are hard to come by; use the
        # v4 prefix instead: with /24, 127.0.0.1 and 127.0.0.2 are one source.
        d = self.echod("max_connections_per_source = 2\nsource_prefix_v4 = 24\nmax_connections = 0\n")
        held = hold(d.port, 1, source="127.0.0.1") + hold(d.port, 1, source="127.0.0.2")
        s = socket.socket()
        s.bind(("127.0.0.3", 0))
        s.settimeout(20)
        s.connect(("127.0.0.1", d.port))
        self.assertTrue(is_refused(s))
        d.wait_log(r"max_connections_per_source \(2\) reached for 127\.0\.0\.0/24")
        for x in held:
            x.close()

    def test_refusals_are_rate_limited_in_the_log(self):
        d = self.echod("max_connections = 1\nmax_connections_per_source = 0\n")
        held = hold(d.port, 1)
        for _ in range(200):
            c = connect(d.port)
            self.assertTrue(is_refused(c))
            c.close()
        # Within about a second of refusals there are at most a few lines, and
        # the held-back ones are counted in a summary.
        d.wait_log(r"more connections refused \(refused-limit\) and not logged individually|"
                   r"similar refusals not logged")
        self.assertLess(d.log_count(r"refused connection from"), 20)
        held[0].close()

    def test_idle_timeout_closes(self):
        d = self.echod("idle_timeout = 1\n")
        s = connect(d.port)
        s.sendall(b"hi")
        self.assertEqual(read_exactly(s, 2), b"hi")
        t0 = time.monotonic()
        self.assertEqual(recv_all(s), b"")      # closed by echod
        self.assertGreaterEqual(time.monotonic() - t0, 0.9)
        d.wait_log(r"closed: idle-timeout, 2 bytes echoed")

    def test_session_timeout_closes_a_busy_connection(self):
        d = self.echod("session_timeout = 1\nidle_timeout = 0\n")
        s = connect(d.port)
        t0 = time.monotonic()
        closed = False
        while time.monotonic() - t0 < 10:
            try:
                s.sendall(b"tick")
                if not s.recv(64):
                    closed = True
                    break
            except (ConnectionResetError, BrokenPipeError):
                closed = True
                break
            time.sleep(0.05)
        self.assertTrue(closed)
        d.wait_log(r"closed: session-timeout")

    def test_session_timeout_closes_a_connection_that_is_never_idle(self):
        import threading
        d = self.echod("session_timeout = 1\nidle_timeout = 0\n")
        s = connect(d.port)
        done = threading.Event()

        def pump():
            try:
                while not done.is_set():
                    s.sendall(b"s" * 65536)
            except OSError:
                pass
        t = threading.Thread(target=pump, daemon=True)
        t.start()
        t0 = time.monotonic()
        try:
            while s.recv(1 << 20):
                if time.monotonic() - t0 > 15:
                    break
        except OSError:
            pass
        done.set()
        self.assertLess(time.monotonic() - t0, 10)
        d.wait_log(r"closed: session-timeout")
        s.close()

    def test_max_bytes(self):
        d = self.echod("max_bytes = 1K\n")
        got = echo(d.port, b"z" * 5000)
        self.assertEqual(got, b"z" * 1024)
        d.wait_log(r"closed: max-bytes, 1024 bytes echoed")

    def test_rate_limit_refuses_but_never_closes_the_listener(self):
        d = self.echod("rate_limit = 1\nrate_limit_burst = 3\nmax_connections_per_source = 0\n")
        served = refused = 0
        for _ in range(10):
            if try_echo(d.port, b"r") == b"r":
                served += 1
            else:
                refused += 1
        self.assertGreaterEqual(served, 3)
        self.assertGreaterEqual(refused, 5)
        d.wait_log(r"rate_limit \(1/s, burst 3\) exceeded")
        # The bucket refills: served again without a restart (listener still open).
        wait_until(lambda: try_echo(d.port, b"back") == b"back", timeout=5, what="served after refill")

    def test_per_source_rate_limit(self):
        d = self.echod("rate_limit_per_source = 1\nrate_limit_per_source_burst = 2\n")
        results = [try_echo(d.port, b"p") for _ in range(6)]
        self.assertEqual(results[:2], [b"p", b"p"])
        self.assertIn(None, results[2:])
        d.wait_log(r"rate_limit_per_source \(1/s, burst 2\) exceeded by 127\.0\.0\.1/32")
        # Another source has its own bucket.
        s = socket.socket()
        s.bind(("127.0.0.9", 0))
        s.settimeout(20)
        s.connect(("127.0.0.1", d.port))
        s.sendall(b"q")
        self.assertEqual(read_exactly(s, 1), b"q")
        s.close()

    def test_source_table_full_refuses_new_sources_only(self):
        d = self.echod("max_sources = 2\nmax_connections_per_source = 0\n")
        a = hold(d.port, 1, source="127.0.0.1")
        b = hold(d.port, 1, source="127.0.0.2")
        s = socket.socket()
        s.bind(("127.0.0.3", 0))
        s.settimeout(20)
        s.connect(("127.0.0.1", d.port))
        self.assertTrue(is_refused(s))
        s.close()
        d.wait_log(r"source table full \(max_sources 2\)")
        # Known sources are still served.
        a += hold(d.port, 1, source="127.0.0.1")
        # Once a source has nothing left to remember, its entry is reused.
        for x in b:
            x.close()
        d.wait_workers(2)

        def third_served():
            try:
                c = hold(d.port, 1, source="127.0.0.3")
            except (ConnectionResetError, AssertionError, OSError):
                return False
            c[0].close()
            return True
        wait_until(third_served, timeout=10, what="a new source served after the table freed up")
        for x in a:
            x.close()


if __name__ == "__main__":
    main()
