# SPDX-License-Identifier: MIT
"""Closes that echod starts lose no byte: on a stop, at max_bytes, at
session_timeout and idle_timeout, a client that has sent without reading
gets back every byte its worker had read, then EOF, never a reset.

Each test first makes the state certain (the socket queues of both ends and
the worker's sleep, see StalledClient), then reads."""
import random
import re
import signal
import time

from echodtest import TIMEOUT, EchodTestCase, StalledClient, main, tcp_socket, wait_until

# An odd period, so that a lost or repeated chunk of any usual size shows.
BLOCK = random.Random(862).randbytes((1 << 20) - 3)


def payload(offset, n):
    out = bytearray()
    while n > 0:
        i = offset % len(BLOCK)
        k = min(n, len(BLOCK) - i)
        out += BLOCK[i:i + k]
        offset += k
        n -= k
    return bytes(out)


class LosslessCloseTest(EchodTestCase):
    def read_back(self, c):
        """Reads to EOF; a reset fails the test with what had come by then."""
        try:
            return c.read_to_end()
        except ConnectionResetError:
            self.fail("connection reset after %d of %d bytes sent" % (c.received, c.sent))

    def echoed_in_log(self, d, reason):
        m = d.wait_log(r"closed: %s, (\d+) bytes echoed" % re.escape(reason))
        return int(m[0])

    def stall_before(self, c, since, timeout):
        """Stalls c's worker and checks that this was certain before a
        timeout that runs from since could have fired: then the next wake
        of the worker is that timeout."""
        snap = c.stall()
        if snap["settled"] >= since(snap) + timeout:
            self.fail("the worker took too long to stall: %.1f s" % (snap["settled"] - since(snap)))
        return snap

    def test_stop_returns_every_byte_read(self):
        d = self.echod("shutdown_timeout = 30\nidle_timeout = 0\n")
        c = StalledClient(d, payload)
        self.addCleanup(c.close)
        snap = c.stall()
        d.kill(signal.SIGTERM)
        d.wait_notify("STOPPING=1")
        # Only the stop can wake a worker that waits to write to a client
        # that does not read.
        c.wait_woken(snap["switches"])
        self.read_back(c)
        self.assertGreaterEqual(c.received, snap["worker_read"])
        c.close()
        self.assertEqual(d.proc.wait(TIMEOUT), 0)
        self.assertEqual(self.echoed_in_log(d, "shutdown"), c.received)
        self.assertNotIn("killing them", d.read_log())

    def test_max_bytes_returns_every_byte(self):
        limit = 65536
        d = self.echod("max_bytes = %d\n" % limit)
        c = StalledClient(d, payload)
        self.addCleanup(c.close)
        # Twice the limit, never read: the worker reads the limit, writes it
        # back into its (much larger) send queue and ends the connection
        # with the rest of our bytes on their way in.
        try:
            c.send_all(2 * limit)
        except (ConnectionResetError, BrokenPipeError):
            self.fail("connection reset while sending")
        # The worker has shut down its write side: the close has begun.
        wait_until(lambda: (tcp_socket(d.port, c.port) or ("gone",))[0] != "ESTABLISHED",
                   what="the worker to end the connection")
        self.read_back(c)
        self.assertEqual(c.received, limit)
        c.close()
        self.assertEqual(self.echoed_in_log(d, "max-bytes"), limit)

    def test_session_timeout_returns_every_byte_read(self):
        t0 = time.monotonic()
        d = self.echod("session_timeout = 5\nidle_timeout = 0\n")
        c = StalledClient(d, payload)
        self.addCleanup(c.close)
        # The session starts after t0.
        snap = self.stall_before(c, lambda snap: t0, 5)
        # Nothing but session_timeout wakes the stalled worker now.
        c.wait_woken(snap["switches"])
        self.read_back(c)
        self.assertGreaterEqual(c.received, snap["worker_read"])
        c.close()
        self.assertEqual(self.echoed_in_log(d, "session-timeout"), c.received)

    def test_idle_timeout_returns_every_byte_read(self):
        d = self.echod("idle_timeout = 5\n")
        c = StalledClient(d, payload)
        self.addCleanup(c.close)
        # The worker's last progress came after it was last seen awake.
        snap = self.stall_before(c, lambda snap: snap["awake"], 5)
        # No progress either way: idle_timeout wakes the worker.
        c.wait_woken(snap["switches"])
        self.read_back(c)
        self.assertGreaterEqual(c.received, snap["worker_read"])
        c.close()
        self.assertEqual(self.echoed_in_log(d, "idle-timeout"), c.received)


if __name__ == "__main__":
    main()
