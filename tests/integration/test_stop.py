# SPDX-License-Identifier: MIT
"""SIGTERM/SIGINT drain: STOPPING=1, listeners closed at once, workers flush
what they read and close, stragglers are killed after shutdown_timeout."""
import os
import signal
import socket
import time

from echodtest import EchodTestCase, StalledClient, connect, main, read_exactly, recv_all, wait_until


def stalled_client(test, d):
    """A client whose worker holds bytes it has read but cannot write back,
    as the client never reads (the state is proven, see StalledClient): it
    cannot finish a drain on its own."""
    c = StalledClient(d, lambda offset, n: b"w" * n)
    test.addCleanup(c.close)
    c.stall()
    return c


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
        stalled_client(self, d)
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
        stalled_client(self, d)
        workers = d.workers()
        t0 = time.monotonic()
        self.assertEqual(d.stop(signal.SIGTERM), 0)
        self.assertGreaterEqual(time.monotonic() - t0, 0.9)
        d.wait_log(r"still running after shutdown_timeout, killing them")
        for w in workers:
            wait_until(lambda: not os.path.exists("/proc/%d" % w), what="worker gone")


if __name__ == "__main__":
    main()
