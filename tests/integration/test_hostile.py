# SPDX-License-Identifier: MIT
"""Hostile and broken clients against the real daemon, workers killed from
outside, mass exits, and bad input to the daemon itself (command line,
unset ${VAR}s). Every session ends with the right CLOSE_REASON in the log
and no worker (or zombie) left behind."""
import os
import random
import re
import select
import signal
import socket
import struct
import threading
import time

from echodtest import (EchodTestCase, connect, echo, free_port, is_refused, keep_draining, main,
                       proc_state, read_exactly, recv_all, wait_until)

# 1 GiB through one connection. Measured on the 2-CPU CI machine: see
# test_one_gib; override with ECHOD_BIG_BYTES to try other sizes.
BIG_BYTES = int(os.environ.get("ECHOD_BIG_BYTES", str(1 << 30)))
IDLE = 2        # idle_timeout used where a test waits for it, seconds


def close_line(port):
    """The stderr close record of the client whose local port is port."""
    return r"connection from 127\.0\.0\.1:%d closed: ([a-z-]+)" % port


def hold(port, n):
    """n served connections, each proven by one echoed byte."""
    socks = []
    for _ in range(n):
        s = connect(port)
        s.sendall(b".")
        read_exactly(s, 1)
        socks.append(s)
    return socks


def reset(s):
    """Closes s with an RST instead of a FIN."""
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()


class HostileClientsTest(EchodTestCase):
    def echod_idle(self, extra=""):
        d = self.echod("idle_timeout = %d\nmax_connections_per_source = 0\n%s" % (IDLE, extra))
        keep_draining(self, d)
        return d

    def assert_closed(self, d, port, reason, timeout=20):
        got = d.wait_log(close_line(port), timeout=timeout)
        self.assertEqual(got[-1], reason, "close reason of the client on port %d" % port)

    def test_sends_but_never_reads(self):
        d = self.echod_idle()
        s = connect(d.port)
        s.setblocking(False)
        port = s.getsockname()[1]
        chunk = b"n" * 65536
        sent, deadline = 0, time.monotonic() + 20
        # Fill every buffer on the way (ours, echod's, and back) until nothing moves.
        while time.monotonic() < deadline and sent < (256 << 20):
            try:
                sent += s.send(chunk)
                continue
            except BlockingIOError:
                pass
            _, w, _ = select.select([], [s], [], 0.5)
            if not w:
                break
        self.assertGreater(sent, 0)
        stalled = time.monotonic()
        self.assert_closed(d, port, "idle-timeout", timeout=IDLE + 15)
        waited = time.monotonic() - stalled
        # Closed by the idle timeout: not before it, and not much after.
        self.assertLess(waited, IDLE + 5)
        d.wait_workers(0)
        s.close()

    def test_connects_and_says_nothing(self):
        d = self.echod_idle()
        s = connect(d.port)
        port = s.getsockname()[1]
        start = time.monotonic()
        self.assertEqual(s.recv(1), b"")        # echod closes it
        self.assertGreaterEqual(time.monotonic() - start, IDLE - 0.1)
        self.assert_closed(d, port, "idle-timeout")
        self.assertRegex(d.read_log(), r"closed: idle-timeout, 0 bytes echoed")
        d.wait_workers(0)
        s.close()

    def test_reset_mid_stream(self):
        d = self.echod_idle()
        for _ in range(5):
            s = connect(d.port)
            port = s.getsockname()[1]
            s.sendall(os.urandom(100000))
            read_exactly(s, 1000)               # the worker is busy echoing
            s.sendall(os.urandom(100000))
            reset(s)
            self.assert_closed(d, port, "reset")
        d.wait_workers(0)
        self.assertNotIn("killed by signal", d.read_log())

    def test_half_close(self):
        d = self.echod_idle()
        s = connect(d.port)
        port = s.getsockname()[1]
        data = os.urandom(300000)
        t = threading.Thread(target=lambda: (s.sendall(data), s.shutdown(socket.SHUT_WR)))
        t.start()
        self.assertEqual(recv_all(s), data)
        t.join(20)
        s.close()
        self.assert_closed(d, port, "eof")
        self.assertRegex(d.read_log(), r"127\.0\.0\.1:%d closed: eof, 300000 bytes echoed" % port)
        d.wait_workers(0)

    def test_one_byte_at_a_time(self):
        d = self.echod_idle()
        s = connect(d.port)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        port = s.getsockname()[1]
        data = bytes(random.Random(6).randrange(256) for _ in range(2000))
        for b in data:
            s.sendall(bytes([b]))
            self.assertEqual(read_exactly(s, 1), bytes([b]))
        s.shutdown(socket.SHUT_WR)
        self.assertEqual(recv_all(s), b"")
        s.close()
        self.assert_closed(d, port, "eof")
        self.assertRegex(d.read_log(), r"127\.0\.0\.1:%d closed: eof, 2000 bytes echoed" % port)
        d.wait_workers(0)

    def test_one_gib(self):
        d = self.echod_idle()
        s = connect(d.port, timeout=60)
        port = s.getsockname()[1]
        # A block whose length is prime, so that a lost or repeated chunk
        # cannot line up with the pattern again.
        block = random.Random(862).randbytes(1048573)
        view = memoryview(block + block)
        errors = []

        def reader():
            got = 0
            try:
                while got < BIG_BYTES + 1:
                    b = s.recv(1 << 20)
                    if not b:
                        break
                    off = got % len(block)
                    # b may be longer than block: compare slice by slice.
                    for i in range(0, len(b), len(block)):
                        part = b[i:i + len(block)]
                        o = (off + i) % len(block)
                        if view[o:o + len(part)] != part:
                            errors.append("mismatch near offset %d" % (got + i))
                            return
                    got += len(b)
            except OSError as e:
                errors.append(repr(e))
            if got != BIG_BYTES:
                errors.append("received %d of %d bytes" % (got, BIG_BYTES))

        start = time.monotonic()
        t = threading.Thread(target=reader)
        t.start()
        sent = 0
        while sent < BIG_BYTES:
            n = min(len(block), BIG_BYTES - sent)
            s.sendall(view[sent % len(block):sent % len(block) + n])
            sent += n
        s.shutdown(socket.SHUT_WR)
        t.join(300)
        elapsed = time.monotonic() - start
        s.close()
        self.assertFalse(t.is_alive(), "reader still running after 300 s")
        self.assertEqual(errors, [])
        print("\n%d MiB echoed in %.1f s (%.0f MiB/s)" % (BIG_BYTES >> 20, elapsed, BIG_BYTES / elapsed / (1 << 20)))
        self.assert_closed(d, port, "eof")
        self.assertRegex(d.read_log(), r"127\.0\.0\.1:%d closed: eof, %d bytes echoed" % (port, BIG_BYTES))
        d.wait_workers(0)


class WorkerFateTest(EchodTestCase):
    def test_sigkilled_workers_are_reaped_and_counted(self):
        d = self.echod("max_connections_per_source = 3\n")
        keep_draining(self, d)
        for rnd in range(3):
            held = hold(d.port, 3)
            with connect(d.port) as extra:
                self.assertTrue(is_refused(extra), "4th connection from one source")
            workers = d.wait_workers(3) and d.workers()
            for w in workers:
                os.kill(w, signal.SIGKILL)
            for w in workers:
                d.wait_log(r"worker %d \(client 127\.0\.0\.1 port \d+\) was killed by signal 9" % w)
            d.wait_workers(0)
            for s in held:
                self.assertEqual(s.recv(1), b"")
                s.close()
        # The per-source count went back to 0 each round: 3 are served again.
        held = hold(d.port, 3)
        for s in held:
            s.close()
        d.wait_workers(0)
        self.assertEqual(d.zombies(), [])
        # A clean stop: exit 0 (under ASan/LSan also: no errors, no leaks).
        self.assertEqual(d.stop(), 0)

    def test_stopped_and_continued_worker_is_not_mistaken_for_an_exit(self):
        # A stop or continue reaches the master as SIGCHLD (workers' exits
        # come as another signal): nothing is reaped or counted for it.
        d = self.echod("max_connections_per_source = 1\n")
        s = connect(d.port)
        s.sendall(b"a")
        self.assertEqual(read_exactly(s, 1), b"a")
        worker = d.wait_workers(1) and d.workers()[0]
        os.kill(worker, signal.SIGSTOP)
        wait_until(lambda: proc_state(worker) == "T", what="worker %d stopped" % worker)
        os.kill(worker, signal.SIGCONT)
        wait_until(lambda: proc_state(worker) in ("S", "R"), what="worker %d running again" % worker)
        # Still counted against the per-source limit, and still serving.
        with connect(d.port) as extra:
            self.assertTrue(is_refused(extra), "2nd connection from one source")
        s.sendall(b"b")
        self.assertEqual(read_exactly(s, 1), b"b")
        s.close()
        d.wait_workers(0)
        self.assertEqual(echo(d.port, b"next"), b"next")
        self.assertNotRegex(d.read_log(), r"killed by signal|unexpected status")
        self.assertEqual(d.stop(), 0)

    def test_500_children_exit_at_once(self):
        n = 500
        d = self.echod("max_connections = %d\nmax_connections_per_source = 0\nrate_limit_per_source = 0\nlog_connections = false\n" % n)
        keep_draining(self, d)
        for rnd in range(2):
            socks = []
            for _ in range(n):
                s = connect(d.port)
                s.sendall(b"!")
                socks.append(s)
            for s in socks:
                self.assertEqual(read_exactly(s, 1), b"!")
            d.wait_workers(n, timeout=60)
            # All of them go at once: many exits, few SIGCHLD records.
            for s in socks:
                s.shutdown(socket.SHUT_WR)
            for s in socks:
                self.assertEqual(s.recv(1), b"")
                s.close()
            d.wait_workers(0, timeout=60)
            self.assertEqual(d.zombies(), [])
        # The master's count went back to 0: exactly max_connections fit again
        # (the second round proved it too), and the status says so.
        wait_until(lambda: (d._drain_notify(), any(m.startswith("STATUS=0 active, %d served" % (2 * n))
                                                     for m in d.notifications))[1],
                   what="STATUS=0 active")
        self.assertNotRegex(d.read_log(), r"killed by signal|unexpected status|refused")
        # A clean stop: exit 0 (under ASan/LSan also: no errors, no leaks).
        self.assertEqual(d.stop(), 0)


class BadInvocationTest(EchodTestCase):
    """Bad command lines: exit 2, a message naming the problem, nothing started."""

    def check_usage(self, args, message):
        port = free_port()
        conf = self.tmpfile("ok.conf", 'listen = { "127.0.0.1:%d" }\n' % port)
        pid_file = conf + ".pid"
        argv = ["-c", conf, "-p", pid_file] + list(args)
        start = time.monotonic()
        r = self.run_echod(argv)
        self.assertEqual(r.returncode, 2, "%s: %s" % (argv, r.stderr))
        self.assertRegex(r.stderr, message, argv)
        self.assertEqual(r.stdout, "", argv)
        self.assertLess(time.monotonic() - start, 5)
        # Nothing started: no pid file, the port is free, no echod on it.
        self.assertFalse(os.path.exists(pid_file), argv)
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))

    def test_bad_options(self):
        cases = [
            (["--bogus"], r"unrecognized option '--bogus'"),
            (["-x"], r"invalid option -- 'x'"),
            (["-f", "extra"], r"unexpected argument 'extra'"),
            (["-l", "loud"], r"invalid log level 'loud'"),
            (["-l", ""], r"invalid log level ''"),
            (["--log-level=LOUD"], r"invalid log level 'LOUD'"),
            (["--log-target", "syslog"], r"invalid log target 'syslog'"),
            (["--foreground=yes"], r"option '--foreground' doesn't allow an argument"),
            (["--inetd", "-t"], r"--inetd cannot be combined with --test-config"),
            (["--inetd", "-T"], r"--inetd cannot be combined"),
            (["-c", "", "-f"], r"--config needs a file name"),
            (["-f", "-p"], r"option requires an argument -- 'p'"),
            (["-f", "--config"], r"option '--config' requires an argument"),
        ]
        for args, message in cases:
            with self.subTest(args=args):
                if "-c" in args or "--config" in args:
                    self.check_bare(args, message)
                else:
                    self.check_usage(args, message)

    def check_bare(self, args, message):
        r = self.run_echod(args)
        self.assertEqual(r.returncode, 2, "%s: %s" % (args, r.stderr))
        self.assertRegex(r.stderr, message)
        self.assertEqual(r.stdout, "")

    def test_help_and_version_are_not_errors(self):
        self.assertEqual(self.run_echod(["--help"]).returncode, 0)
        self.assertEqual(self.run_echod(["-V"]).returncode, 0)

    def test_unset_variables_are_caught_with_file_and_line(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith("ECHOD_UNSET")}
        keys = ["backlog", "max_connections", "max_connections_per_source", "source_prefix_v4",
                "source_prefix_v6", "max_sources", "rate_limit", "rate_limit_burst",
                "idle_timeout", "session_timeout", "shutdown_timeout", "max_bytes",
                "log_connections", "log_level", "user"]
        port = free_port()
        lines = ["# every value from the environment, none of them set",
                 'listen = { "127.0.0.1:${ECHOD_UNSET_PORT}" }']
        lines += ["%s = ${ECHOD_UNSET_%d}" % (k, i) for i, k in enumerate(keys)]
        path = self.tmpfile("env.conf", "\n".join(lines) + "\n")
        r = self.run_echod(["-t", "-c", path], env=env)
        self.assertEqual(r.returncode, 6, r.stderr)
        self.assertIn("%s:2: listen:" % path, r.stderr)
        for i, k in enumerate(keys):
            if k == "user":
                continue        # "" means "not set" for user; nothing to catch
            with self.subTest(key=k):
                self.assertRegex(r.stderr, r"%s:%d: %s: " % (re.escape(path), i + 3, k))
        # Starting with it: exit 6, nothing listening.
        with open(path, "w") as f:
            f.write('listen = { "127.0.0.1:%d" }\nmax_connections = ${ECHOD_UNSET_MAX}\n' % port)
        r = self.run_echod(["-f", "--log-target", "stderr", "-c", path], env=env)
        self.assertEqual(r.returncode, 6)
        self.assertIn("%s:2: max_connections: empty value" % path, r.stderr)
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))


if __name__ == "__main__":
    main()
