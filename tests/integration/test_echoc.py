#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Integration tests for echoc against real echo servers on loopback.

The servers here are small Python threads (one per connection) bound to
port 0 on 127.0.0.1 and ::1; besides a faithful echo they can corrupt,
truncate, pad or swallow the echo, so the client's verification and exit
codes are exercised. Run as:

    ECHOC=/path/to/echoc python3 tests/integration/test_echoc.py

Readiness never depends on sleeping: a server is listening before echoc
starts, and the hold test reads echoc's "holding" line. Every wait is
bounded.
"""

import json
import os
import pty
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
import unittest

from echodtest import free_port, have_ipv6

ECHOC = os.environ.get("ECHOC", "")
RUN_TIMEOUT = 60  # seconds; a hung echoc fails its test instead of the suite


class EchoServer:
    """A threaded TCP server on a kernel-picked loopback port.

    mode: "echo" echoes faithfully; "corrupt" flips the byte at stream
    offset `arg` of every connection; "truncate" echoes only the first
    `arg` bytes (it keeps reading to EOF, then closes cleanly); "extra"
    echoes and then sends b"EXTRA" before closing; "sink" reads and
    neither answers nor closes; "flood" echoes the first chunk it reads,
    then sends b"flood\n" lines without end; "babble" reads nothing and
    sends b"X" without end. The endless senders stop when the client
    goes away.
    """

    def __init__(self, family=socket.AF_INET, mode="echo", arg=0):
        self.mode, self.arg = mode, arg
        host = "::1" if family == socket.AF_INET6 else "127.0.0.1"
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.sock.listen(1024)
        self.host, self.port = host, self.sock.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)
        self._thread.start()

    def _accept_loop(self):
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        offset = 0
        with conn:
            try:
                if self.mode in ("flood", "babble"):
                    self._send_forever(conn)
                    return
                while True:
                    data = conn.recv(65536)
                    if not data:
                        break
                    out = data
                    if self.mode == "corrupt" and offset <= self.arg < offset + len(data):
                        i = self.arg - offset
                        out = data[:i] + bytes([data[i] ^ 0xFF]) + data[i + 1:]
                    elif self.mode == "truncate":
                        out = data[: max(0, self.arg - offset)]
                    elif self.mode == "sink":
                        out = b""
                    offset += len(data)
                    if out:
                        conn.sendall(out)
                if self.mode == "extra":
                    conn.sendall(b"EXTRA")
                if self.mode == "sink":
                    self._stop.wait(RUN_TIMEOUT)  # never answer, never close
            except OSError:
                pass

    def _send_forever(self, conn):
        if self.mode == "flood":
            conn.sendall(conn.recv(65536))
            chunk = b"flood\n" * 10000
        else:
            chunk = b"X" * 65536
        while not self._stop.is_set():
            conn.sendall(chunk)  # raises once the client has closed

    def close(self):
        self._stop.set()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        except OSError:
            pass
        self.sock.close()
        self._thread.join(5)


def run(args, data=b"", timeout=RUN_TIMEOUT):
    return subprocess.run([ECHOC] + [str(a) for a in args], input=data,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=timeout)


class Counted:
    """echoc with a pipe on standard input, and its standard output read
    by a thread that keeps the first KEEP bytes and counts the rest, so
    that a client that never stops reading fills neither memory nor disk."""

    KEEP = 1 << 20

    def __init__(self, args):
        self.proc = subprocess.Popen([ECHOC] + [str(a) for a in args], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.head, self.total, self.stderr = bytearray(), 0, ""
        self._thread = threading.Thread(target=self._drain, daemon=True)
        self._thread.start()

    def _drain(self):
        while chunk := self.proc.stdout.read1(65536):
            self.total += len(chunk)
            if len(self.head) < self.KEEP:
                self.head += chunk[: self.KEEP - len(self.head)]

    def wait(self, timeout=RUN_TIMEOUT):
        """The exit status; the timeout only guards against a hung echoc."""
        rc = self.proc.wait(timeout=timeout)
        self._thread.join(timeout)
        self.stderr = self.proc.stderr.read().decode()
        return rc

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._thread.join(RUN_TIMEOUT)
        for f in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            try:
                f.close()
            except OSError:
                pass


class ServerTestCase(unittest.TestCase):
    def server(self, **kw):
        srv = EchoServer(**kw)
        self.addCleanup(srv.close)
        return srv

    def counted(self, args):
        c = Counted(args)
        self.addCleanup(c.close)
        return c


class LineModeTest(ServerTestCase):
    def test_round_trip_ipv4(self):
        srv = self.server()
        data = b"a\nb\nhello, world\n"
        p = run([srv.host, srv.port], data)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout, data)
        self.assertEqual(p.stderr, b"")

    @unittest.skipUnless(have_ipv6(), "no IPv6 loopback")
    def test_round_trip_ipv6(self):
        srv = self.server(family=socket.AF_INET6)
        data = b"over ipv6\n"
        p = run(["-6", "::1", srv.port], data)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout, data)

    def test_last_line_without_newline(self):
        srv = self.server()
        p = run([srv.host, srv.port], b"one\ntwo")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout, b"one\ntwo")

    def test_empty_input(self):
        srv = self.server()
        p = run([srv.host, srv.port], b"")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout, b"")

    def test_stdin_closed(self):
        # Without care the socket would become descriptor 0.
        srv = self.server()
        p = subprocess.run([ECHOC, srv.host, str(srv.port)], preexec_fn=lambda: os.close(0),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=RUN_TIMEOUT)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout, b"")

    def test_large_binary_input(self):
        # Far more than the in-flight window and the socket buffers: proves
        # full duplex (no deadlock) and byte-exact verification of binary data.
        srv = self.server()
        data = os.urandom(6 * 1024 * 1024)
        p = run([srv.host, srv.port], data)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout, data)

    def test_terminal_input(self):
        srv = self.server()
        master, slave = pty.openpty()
        self.addCleanup(os.close, master)
        proc = subprocess.Popen([ECHOC, srv.host, str(srv.port)], stdin=slave,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        os.close(slave)
        os.write(master, b"typed line\n")
        os.write(master, b"\x04")  # ^D at the start of a line: end of input
        out, err = proc.communicate(timeout=RUN_TIMEOUT)
        self.assertEqual(proc.returncode, 0, err)
        self.assertEqual(out, b"typed line\n")

    def test_corrupted_echo(self):
        srv = self.server(mode="corrupt", arg=6)
        p = run([srv.host, srv.port], b"first\nsecond\n")
        self.assertEqual(p.returncode, 1)
        err = p.stderr.decode()
        self.assertIn("differs at byte 7 (line 2)", err)
        self.assertIn("sent 's'", err)

    def test_truncated_echo(self):
        srv = self.server(mode="truncate", arg=5)
        p = run([srv.host, srv.port], b"hello world\n")
        self.assertEqual(p.returncode, 1)
        self.assertEqual(p.stdout, b"hello")
        self.assertIn("short echo", p.stderr.decode())
        self.assertIn("5 of 12", p.stderr.decode())

    def test_extra_bytes(self):
        srv = self.server(mode="extra")
        p = run([srv.host, srv.port], b"abc\n")
        self.assertEqual(p.returncode, 1)
        self.assertIn("extra bytes", p.stderr.decode())

    def test_endless_echo_stops_at_once(self):
        # More than was sent is a mismatch at its first byte: echoc must not
        # read on, and must not wait for the end of its input to say so.
        srv = self.server(mode="flood")
        c = self.counted(["--timeout", "2", srv.host, srv.port])
        c.proc.stdin.write(b"abc\n")
        c.proc.stdin.flush()  # and standard input stays open
        self.assertEqual(c.wait(), 1, c.stderr)
        self.assertTrue(c.head.startswith(b"abc\nflood\n"), bytes(c.head[:64]))
        self.assertIn("echo has extra bytes: 4 bytes sent, %d received;" % c.total, c.stderr)
        self.assertIn("the first unexpected byte, 'f' (0x66), is byte 5 (line 2)", c.stderr)
        # It stopped at the read (of at most 64 KiB) that brought the first extra byte.
        self.assertLessEqual(c.total, 4 + 64 * 1024)

    def test_endless_garbage_stops_at_once(self):
        # A differing echo that then runs past what was sent stops as well.
        srv = self.server(mode="babble")
        c = self.counted(["--timeout", "2", srv.host, srv.port])
        try:
            c.proc.stdin.write(b"abc\n")
            c.proc.stdin.close()
        except BrokenPipeError:
            pass  # the first X came before the input: echoc is gone already
        self.assertEqual(c.wait(), 1, c.stderr)
        self.assertRegex(c.stderr, r"echo has extra bytes: [04] bytes sent, %d received;" % c.total)
        self.assertLessEqual(c.total, 4 + 64 * 1024)

    def test_timeout(self):
        srv = self.server(mode="sink")
        p = run(["--timeout", "0.5", srv.host, srv.port], b"anyone there?\n")
        self.assertEqual(p.returncode, 4)
        self.assertIn("timed out", p.stderr.decode())

    def test_user_think_time_is_not_a_timeout(self):
        # The timeout covers waiting for the network, not for the next line.
        srv = self.server()
        proc = subprocess.Popen([ECHOC, "--timeout", "0.3", srv.host, str(srv.port)],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.addCleanup(lambda: proc.poll() is None and proc.kill())
        proc.stdin.write(b"first\n")
        proc.stdin.flush()
        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ)
        self.assertTrue(sel.select(timeout=RUN_TIMEOUT))
        self.assertEqual(proc.stdout.readline(), b"first\n")
        time.sleep(0.8)  # the user thinks for longer than --timeout
        out, err = proc.communicate(b"second\n", timeout=RUN_TIMEOUT)
        self.assertEqual(proc.returncode, 0, err)
        self.assertEqual(out, b"second\n")

    def test_connection_refused(self):
        port = free_port()
        p = run(["127.0.0.1", port], b"x\n")
        self.assertEqual(p.returncode, 3)
        self.assertIn(f"connect to 127.0.0.1:{port}: Connection refused", p.stderr.decode())

    def test_unknown_service(self):
        p = run(["127.0.0.1", "no-such-service-echoc"], b"")
        self.assertEqual(p.returncode, 3)
        self.assertIn("unknown port or service", p.stderr.decode())

    def test_unknown_host(self):
        p = run(["no-such-host.invalid", "7"], b"")
        self.assertEqual(p.returncode, 3)
        self.assertIn("cannot resolve", p.stderr.decode())


class UsageTest(unittest.TestCase):
    BAD = [
        [],
        ["--bogus", "127.0.0.1"],
        ["-x", "127.0.0.1"],
        ["-4", "-6", "127.0.0.1"],
        ["127.0.0.1", "7", "extra"],
        ["--timeout", "0", "127.0.0.1"],
        ["--timeout", "soon", "127.0.0.1"],
        ["--timeout"],
        ["--concurrency", "4", "127.0.0.1"],
        ["--json", "127.0.0.1"],
        ["--source", "127.0.0.1", "127.0.0.1"],
        ["--bench", "nope", "127.0.0.1", "7"],
        ["--bench", "rate", "127.0.0.1"],
        ["--bench", "rate", "--concurrency", "0", "127.0.0.1", "7"],
        ["--bench", "rate", "--concurrency", "-3", "127.0.0.1", "7"],
        ["--bench", "rate", "--concurrency", "many", "127.0.0.1", "7"],
        ["--bench", "rate", "--size", "0", "127.0.0.1", "7"],
        ["--bench", "rate", "--size", "12Q", "127.0.0.1", "7"],
        ["--bench", "rate", "--size", "64k", "127.0.0.1", "7"],
        ["--bench", "rate", "--size", "2G", "127.0.0.1", "7"],
        ["--bench", "rate", "--duration", "-1", "127.0.0.1", "7"],
        ["--bench", "rate", "--requests", "0", "127.0.0.1", "7"],
        ["--bench", "rate", "--requests", "1e3", "127.0.0.1", "7"],
    ]

    def test_bad_usage_exits_2(self):
        for args in self.BAD:
            with self.subTest(args=args):
                p = run(args)
                self.assertEqual(p.returncode, 2, p.stderr)
                self.assertEqual(p.stdout, b"")
                self.assertRegex(p.stderr.decode(), r"^echoc: .+")

    def test_help(self):
        p = run(["--help"])
        self.assertEqual(p.returncode, 0)
        self.assertIn(b"Usage: echoc", p.stdout)

    def test_version(self):
        p = run(["-V"])
        self.assertEqual(p.returncode, 0)
        self.assertRegex(p.stdout.decode(), r"^echoc \S+\n$")


def bench(args, timeout=RUN_TIMEOUT):
    p = run(["--json"] + args, timeout=timeout)
    lines = p.stdout.decode().splitlines()
    result = json.loads(lines[-1]) if lines else None
    return p, lines, result


class BenchTest(ServerTestCase):
    def assertNoErrors(self, p, r):
        self.assertIsNotNone(r, p.stderr)
        self.assertEqual(r["errors"]["total"], 0, r["errors"])
        self.assertEqual(p.returncode, 0, p.stderr)

    def assertSaneLatency(self, lat, count):
        self.assertEqual(lat["count"], count)
        self.assertGreater(lat["p50"], 0)
        self.assertLessEqual(lat["p50"], lat["p90"])
        self.assertLessEqual(lat["p90"], lat["p99"])
        self.assertLessEqual(lat["p99"], lat["p999"])
        self.assertLessEqual(lat["p999"], lat["max"])
        self.assertLess(lat["max"], 10e6)  # no cycle took 10 s on loopback

    def test_rate_duration(self):
        srv = self.server()
        p, _, r = bench(["--bench", "rate", "-c", "4", "-d", "1", srv.host, srv.port])
        self.assertNoErrors(p, r)
        self.assertEqual(r["mode"], "rate")
        self.assertGreater(r["connections"], 10)
        self.assertGreater(r["conn_per_s"], 10)
        self.assertAlmostEqual(r["elapsed_s"], 1.0, delta=0.5)
        self.assertEqual(r["bytes"], r["connections"] * 64)
        self.assertSaneLatency(r["latency_us"], r["connections"])

    def test_rate_requests(self):
        srv = self.server()
        p, _, r = bench(["--bench", "rate", "-c", "8", "-n", "200", "-s", "1000", srv.host, srv.port])
        self.assertNoErrors(p, r)
        self.assertEqual(r["connections"], 200)
        self.assertEqual(r["bytes"], 200 * 1000)
        self.assertGreaterEqual(srv.connections, 200)

    @unittest.skipUnless(have_ipv6(), "no IPv6 loopback")
    def test_rate_ipv6(self):
        srv = self.server(family=socket.AF_INET6)
        p, _, r = bench(["--bench", "rate", "-6", "-n", "50", "::1", srv.port])
        self.assertNoErrors(p, r)
        self.assertEqual(r["target"], f"[::1]:{srv.port}")

    def test_source_address(self):
        srv = self.server()
        p, _, r = bench(["--bench", "rate", "-n", "20", "--source", "127.0.0.2", srv.host, srv.port])
        self.assertNoErrors(p, r)
        self.assertEqual(r["connections"], 20)
        p = run(["--bench", "rate", "-n", "20", "--source", "::1", srv.host, srv.port])
        self.assertEqual(p.returncode, 2)
        self.assertIn("--source", p.stderr.decode())

    def test_stream(self):
        srv = self.server()
        p, _, r = bench(["--bench", "stream", "-c", "2", "-d", "1", srv.host, srv.port])
        self.assertNoErrors(p, r)
        self.assertGreater(r["bytes"], 1 << 20)
        self.assertGreater(r["mb_per_s"], 1)

    def test_stream_requests(self):
        srv = self.server()
        p, _, r = bench(["--bench", "stream", "-c", "3", "-n", "20", "-s", "100000", srv.host, srv.port])
        self.assertNoErrors(p, r)
        self.assertEqual(r["bytes"], 3 * 20 * 100000)

    def test_latency(self):
        srv = self.server()
        p, _, r = bench(["--bench", "latency", "-n", "200", srv.host, srv.port])
        self.assertNoErrors(p, r)
        self.assertEqual(r["requests"], 200)
        self.assertSaneLatency(r["latency_us"], 200)

    def test_hold(self):
        srv = self.server()
        p, lines, r = bench(["--bench", "hold", "-c", "50", "-d", "0.5", srv.host, srv.port])
        self.assertNoErrors(p, r)
        self.assertEqual(lines[0], "holding 50 connections")
        self.assertEqual(r["held"], 50)
        self.assertEqual(r["held_at_end"], 50)
        self.assertGreaterEqual(r["hold_s"], 0.5)

    def test_hold_until_signalled(self):
        # The way tests/bench/run uses it: wait for the line, measure, SIGTERM.
        srv = self.server()
        proc = subprocess.Popen([ECHOC, "--bench", "hold", "-c", "20", "-d", "60", "--json",
                                 srv.host, str(srv.port)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.addCleanup(lambda: proc.poll() is None and proc.kill())
        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ)
        self.assertTrue(sel.select(timeout=RUN_TIMEOUT), "no 'holding' line")
        self.assertEqual(proc.stdout.readline(), b"holding 20 connections\n")
        self.assertEqual(srv.connections, 20)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=RUN_TIMEOUT)
        self.assertEqual(proc.returncode, 0, err)
        r = json.loads(out)
        self.assertTrue(r["interrupted"])
        self.assertEqual(r["held"], 20)
        self.assertEqual(r["errors"]["total"], 0)

    def test_human_summary(self):
        srv = self.server()
        p = run(["--bench", "rate", "-n", "20", srv.host, srv.port])
        self.assertEqual(p.returncode, 0, p.stderr)
        lines = p.stdout.decode().splitlines()
        self.assertEqual(len(lines), 1)
        self.assertRegex(lines[0], r"^rate 127\.0\.0\.1:\d+: 20 connections .* conn/s .*; errors 0$")

    def test_rate_mismatch_is_an_error(self):
        srv = self.server(mode="corrupt", arg=10)
        p, _, r = bench(["--bench", "rate", "-c", "2", "-n", "30", srv.host, srv.port])
        self.assertEqual(p.returncode, 1)
        self.assertEqual(r["errors"]["mismatch"], 30)
        self.assertEqual(r["connections"], 0)
        self.assertIn("mismatch", p.stderr.decode())
        self.assertIn("differs at byte 11", p.stderr.decode())

    def test_stream_mismatch_is_an_error(self):
        srv = self.server(mode="corrupt", arg=300000)
        p, _, r = bench(["--bench", "stream", "-d", "1", srv.host, srv.port])
        self.assertEqual(p.returncode, 1)
        self.assertEqual(r["errors"]["mismatch"], 1)

    def test_latency_mismatch_is_an_error(self):
        srv = self.server(mode="corrupt", arg=0)
        p, _, r = bench(["--bench", "latency", "-n", "10", srv.host, srv.port])
        self.assertEqual(p.returncode, 1)
        self.assertGreaterEqual(r["errors"]["mismatch"], 1)

    def test_truncated_echo_is_an_error(self):
        srv = self.server(mode="truncate", arg=10)
        p, _, r = bench(["--bench", "rate", "-n", "20", srv.host, srv.port])
        self.assertEqual(p.returncode, 1)
        self.assertEqual(r["errors"]["closed"], 20)
        self.assertIn("after echoing 10 of 64 bytes", p.stderr.decode())

    def test_timeout_is_an_error(self):
        srv = self.server(mode="sink")
        p, _, r = bench(["--bench", "latency", "--timeout", "0.3", "-d", "1", srv.host, srv.port])
        self.assertEqual(p.returncode, 1)
        self.assertGreaterEqual(r["errors"]["timeout"], 1)

    def test_refused(self):
        port = free_port()
        p, _, r = bench(["--bench", "rate", "-c", "2", "-n", "10", "127.0.0.1", port])
        self.assertEqual(p.returncode, 3)
        self.assertEqual(r["errors"]["refused"], 10)
        self.assertEqual(r["established"], 0)
        self.assertIn("Connection refused", p.stderr.decode())


ECHOD = os.environ.get("ECHOD", "")
HAVE_ECHOD = bool(ECHOD) and os.access(ECHOD, os.X_OK)
if HAVE_ECHOD:
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import echodtest  # the lead's harness: runs echod, waits for READY=1


@unittest.skipUnless(HAVE_ECHOD, "ECHOD not set")
class AgainstEchodTest(unittest.TestCase):
    """The same client against the real daemon."""

    def setUp(self):
        self.d = echodtest.Echod("max_connections = 0\nmax_connections_per_source = 0\nrate_limit_per_source = 0\n")
        self.addCleanup(self.d.close)

    def test_line_mode(self):
        data = b"".join(b"line %d\n" % i for i in range(1000))
        p = run(["127.0.0.1", self.d.port], data)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout, data)

    def test_bench_modes(self):
        for args in (["rate", "-c", "8", "-n", "300"], ["stream", "-c", "2", "-d", "1"],
                     ["latency", "-n", "300"]):
            with self.subTest(mode=args[0]):
                p, _, r = bench(["--bench"] + args + ["127.0.0.1", self.d.port])
                self.assertEqual(p.returncode, 0, p.stderr)
                self.assertEqual(r["errors"]["total"], 0, r["errors"])

    def test_hold_has_one_worker_per_connection(self):
        proc = subprocess.Popen([ECHOC, "--bench", "hold", "-c", "40", "-d", "60", "--json",
                                 "127.0.0.1", str(self.d.port)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.addCleanup(lambda: proc.poll() is None and proc.kill())
        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ)
        self.assertTrue(sel.select(timeout=RUN_TIMEOUT), "no 'holding' line")
        self.assertEqual(proc.stdout.readline(), b"holding 40 connections\n")
        self.assertEqual(len(self.d.workers()), 40)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=RUN_TIMEOUT)
        self.assertEqual(proc.returncode, 0, err)
        self.assertEqual(json.loads(out)["errors"]["total"], 0)
        self.d.wait_workers(0)


if __name__ == "__main__":
    if not ECHOC or not os.access(ECHOC, os.X_OK):
        sys.exit("test_echoc.py: set ECHOC to the echoc binary to test")
    unittest.main(verbosity=2)
