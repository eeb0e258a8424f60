# SPDX-License-Identifier: MIT
"""Echo semantics of the real daemon: round trips, concurrency, a 64 MiB
stream, half-close, one worker per client and no zombies, what workers
map, SIGTERM."""
import os
import random
import signal
import socket
import threading

from echodtest import EchodTestCase, connect, echo, main, read_exactly, recv_all, wait_until, cmdline


def mapped_libraries(pid):
    """Names of the shared objects pid maps ("libc" for libc.so.6)."""
    with open("/proc/%d/maps" % pid) as f:
        paths = {line.split()[5] for line in f if len(line.split()) >= 6}
    return {os.path.basename(p).split(".so")[0] for p in paths if ".so" in os.path.basename(p)}


class BasicTest(EchodTestCase):
    def test_round_trip(self):
        d = self.echod()
        self.assertEqual(echo(d.port, b"hello, echo\n"), b"hello, echo\n")

    def test_empty_session(self):
        d = self.echod()
        self.assertEqual(echo(d.port, b""), b"")

    def test_binary_all_bytes(self):
        d = self.echod()
        data = bytes(range(256)) * 64
        self.assertEqual(echo(d.port, data), data)

    def test_ipv6_and_dual_stack(self):
        if not socket.has_ipv6:
            self.fail("no IPv6 on this machine")
        from echodtest import free_port
        port = free_port()
        d = self.echod("log_connections = all\n", port=port, listen=["[::]:%d" % port])
        self.assertEqual(echo(port, b"six\n", host="::1", family=socket.AF_INET6), b"six\n")
        # "[::]:P" is dual-stack: IPv4 clients are served too, and logged as IPv4.
        self.assertEqual(echo(port, b"four\n"), b"four\n")
        d.wait_log(r"connection from 127\.0\.0\.1:\d+ to port %d opened" % port)

    def test_100_concurrent_clients_random_data(self):
        # All from 127.0.0.1: lift the per-source limit (32 by default).
        d = self.echod("max_connections_per_source = 0\nrate_limit_per_source = 0\n")
        errors = []
        socks = []
        payloads = [os.urandom(random.randint(1, 200000)) for _ in range(100)]
        for _ in payloads:
            socks.append(connect(d.port))

        def run(s, data):
            try:
                with s:
                    def sender():
                        s.sendall(data)
                        s.shutdown(socket.SHUT_WR)
                    t = threading.Thread(target=sender)
                    t.start()
                    got = recv_all(s)
                    t.join()
                    if got != data:
                        errors.append("mismatch: sent %d got %d" % (len(data), len(got)))
            except Exception as e:  # noqa: BLE001 - collected and asserted below
                errors.append(repr(e))

        threads = [threading.Thread(target=run, args=(s, p)) for s, p in zip(socks, payloads)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertEqual(errors, [])
        d.wait_workers(0)

    def test_64mib_stream_while_sending(self):
        d = self.echod()
        size = 64 * 1024 * 1024
        rng = random.Random(862)
        block = rng.randbytes(1 << 20)
        s = connect(d.port, timeout=120)
        received = []

        def reader():
            n = 0
            while True:
                b = s.recv(1 << 20)
                if not b:
                    break
                received.append(b)
                n += len(b)
        t = threading.Thread(target=reader)
        t.start()
        for _ in range(size // len(block)):
            s.sendall(block)
        s.shutdown(socket.SHUT_WR)
        t.join(120)
        s.close()
        data = b"".join(received)
        self.assertEqual(len(data), size)
        for i in range(0, size, len(block)):
            if data[i:i + len(block)] != block:
                self.fail("stream differs in the MiB at offset %d" % i)
        d.wait_log(r"closed: eof, %d bytes echoed" % size)

    def test_half_close_returns_everything(self):
        d = self.echod()
        s = connect(d.port)
        payload = b"x" * 300000
        s.sendall(payload[:1000])
        # Full duplex: the echo arrives while the client is still connected.
        self.assertEqual(read_exactly(s, 1000), payload[:1000])
        s.sendall(payload[1000:])
        s.shutdown(socket.SHUT_WR)
        self.assertEqual(recv_all(s), payload[1000:])
        s.close()

    def test_one_worker_per_client_and_no_zombies(self):
        d = self.echod()
        clients = [connect(d.port) for _ in range(5)]
        for c in clients:
            c.sendall(b"ping")
            self.assertEqual(read_exactly(c, 4), b"ping")
        workers = d.wait_workers(5) and d.workers()
        for w in workers:
            self.assertRegex(cmdline(w), r"^echod: worker \[127\.0\.0\.1\]:\d+$")
        self.assertEqual(cmdline(d.pid), "echod: master")
        for c in clients:
            c.close()
        d.wait_workers(0)
        self.assertEqual(d.zombies(), [])

    def test_workers_leave_out_the_masters_libraries(self):
        """Workers are forked without the libraries only the master calls
        (fewer mappings make fork() and exit() cheaper), libsystemd too:
        the master writes every journal record. Sanitizer
        builds keep everything for their reports."""
        master_only = {"libconfuse", "libsystemd", "libcap", "libgcrypt", "libgpg-error", "liblzma", "libzstd", "liblz4"}
        sanitized = os.environ.get("ECHOD_TEST_SANITIZED") == "1"
        for target in ("stderr", "journal"):
            d = self.echod(log_target=target)
            c = connect(d.port)
            c.sendall(b"libs")
            self.assertEqual(read_exactly(c, 4), b"libs")
            worker = d.wait_workers(1) and d.workers()[0]
            master, mine = mapped_libraries(d.pid), mapped_libraries(worker)
            self.assertLessEqual(master_only | {"libc"}, master)
            if sanitized:
                self.assertEqual(mine, master)
            else:
                self.assertEqual(mine & master_only, set(), "worker %d maps %s" % (worker, mine))
                self.assertIn("libc", mine)
                # What the master loaded later (NSS modules for the user
                # lookup, and their own libraries) is the master's alone.
                late = (master - mine) - master_only
                self.assertEqual({l for l in mine if l.startswith("libnss_")}, set(),
                                 "worker %d maps %s (master %s, only there: %s)" % (worker, mine, master, late))
            # And it still works: echo, close record, exit status.
            c.sendall(b" more")
            c.shutdown(socket.SHUT_WR)
            self.assertEqual(recv_all(c), b" more")
            c.close()
            d.wait_workers(0)
            self.assertNotIn("killed by signal", d.read_log())
            self.assertEqual(d.stop(), 0)

    def test_sigterm_exits_zero_and_leaves_no_worker(self):
        d = self.echod()
        c = connect(d.port)
        c.sendall(b"a")
        read_exactly(c, 1)
        d.wait_workers(1)
        workers = d.workers()
        self.assertEqual(d.stop(signal.SIGTERM), 0)
        for w in workers:
            wait_until(lambda: not os.path.exists("/proc/%d" % w), what="worker %d gone" % w)
        c.close()

    def test_sigpipe_never_kills(self):
        d = self.echod()
        # A client that sends and resets without reading: the worker must not die of SIGPIPE.
        for _ in range(20):
            s = connect(d.port)
            s.sendall(b"y" * 200000)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            s.close()
        d.wait_workers(0)
        self.assertNotIn("killed by signal", d.read_log())
        self.assertEqual(echo(d.port, b"still here"), b"still here")


if __name__ == "__main__":
    main()
