# SPDX-License-Identifier: MIT
"""SIGTERM/SIGINT drain: STOPPING=1, listeners closed at once, workers flush
what they read and close, stragglers are killed after shutdown_timeout."""
import os
import select
import signal
import socket
import time

from echodtest import TIMEOUT, EchodTestCase, connect, main, read_exactly, recv_all, wait_until


def stall(s):
    """Makes s a client that never reads, with more pending than the socket
    buffers hold: its worker cannot finish flushing. It sends until its
    socket stays full, that is until the worker, unable to write back, has
    stopped reading (how much that takes depends on the socket buffers and
    on how the worker holds what it read)."""
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.setblocking(False)
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        try:
            while True:
                s.send(b"w" * 65536)
        except BlockingIOError:
            pass
        _, writable, _ = select.select([], [s], [], 0.5)
        if not writable:
            return
    raise AssertionError("the worker kept reading from a client that never reads")


class StopTest(EchodTestCase):
    def test_drain_flushes_and_exits_zero(self):
        d = self.echod("")
        s = connect(d.port)
        s.sendall(b"in flight")
        self.assertEqual(read_exactly(s, 9), b"in flight")
        d.wait_workers(1)
        d.kill(signal.SIGTERM)
        d.wait_notify("STOPPING=1")
        # The worker closes its side after flushing: the client sees EOF.
        self.assertEqual(recv_all(s), b"")
        self.assertEqual(d.proc.wait(20), 0)
        d.wait_log(r"closed: shutdown")
        d.wait_log(r"stopped after serving 1 connection")
        s.close()

    def test_listeners_close_at_once(self):
        d = self.echod("shutdown_timeout = 30\n")
        s = connect(d.port)
        stall(s)
        d.wait_workers(1)
        d.kill(signal.SIGINT)
        d.wait_notify("STOPPING=1")
        d.wait_log(r"received SIGINT, stopping")
        # Still draining, but no longer accepting.
        wait_until(lambda: self._refused(d.port), what="listener closed")
        self.assertIsNone(d.proc.poll())
        # A second signal ends the wait.
        d.kill(signal.SIGTERM)
        self.assertEqual(d.proc.wait(20), 0)
        d.wait_log(r"1 worker still running after shutdown_timeout, killing them")
        s.close()

    def test_busy_stream_is_drained_promptly(self):
        # A client that keeps its worker busy (never idle in ppoll) must still
        # see the stop: flushed and closed, well before shutdown_timeout.
        import threading
        d = self.echod("shutdown_timeout = 60\n")
        s = connect(d.port)
        stop = threading.Event()

        def pump():
            try:
                while not stop.is_set():
                    s.sendall(b"b" * 65536)
            except OSError:
                pass
        t = threading.Thread(target=pump, daemon=True)
        t.start()
        read_exactly(s, 65536)
        d.wait_workers(1)
        t0 = time.monotonic()
        d.kill(signal.SIGTERM)
        try:
            while s.recv(1 << 20):
                pass
        except OSError:
            pass
        self.assertEqual(d.proc.wait(20), 0)
        self.assertLess(time.monotonic() - t0, 10)
        stop.set()
        self.assertNotIn("killing them", d.read_log())
        d.wait_log(r"closed: shutdown")
        s.close()

    def _refused(self, port):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
            return False
        except ConnectionRefusedError:
            return True

    def test_shutdown_timeout_kills_stragglers(self):
        d = self.echod("shutdown_timeout = 1\n")
        s = connect(d.port)
        stall(s)
        d.wait_workers(1)
        workers = d.workers()
        t0 = time.monotonic()
        self.assertEqual(d.stop(signal.SIGTERM), 0)
        self.assertGreaterEqual(time.monotonic() - t0, 0.9)
        d.wait_log(r"still running after shutdown_timeout, killing them")
        for w in workers:
            wait_until(lambda: not os.path.exists("/proc/%d" % w), what="worker gone")
        s.close()


if __name__ == "__main__":
    main()
