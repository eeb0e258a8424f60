# SPDX-License-Identifier: MIT
"""SIGUSR2: the master re-executes its binary in place, keeping its pid,
its listeners and its workers. A session open across it echoes on, the new
image counts the old workers as its own (limits, records, the final
count), and an upgrade that cannot happen leaves the old image serving."""
import os
import shutil
import signal
import socket
import tempfile
import threading
import time

from echodtest import (ECHOD, EchodTestCase, cmdline, connect, echo, free_port, is_refused, main, read_exactly,
                       shim, wait_until)

MID_CLOSE = "b8891436a2ba4f56b2ec6232e48a8db5"
MID_STOPPED = "c2bce8a5bcfc41a98fcb139594e895b6"
MID_UPGRADED = "411324fa52a3440786b34798504ae04b"


def fd_targets(pid):
    return {fd: os.readlink("/proc/%d/fd/%s" % (pid, fd)) for fd in os.listdir("/proc/%d/fd" % pid)}


def pattern(offset, n):
    return bytes((offset + i) * 7 % 251 for i in range(n))


class Session:
    """A connection that echoes a known pattern, checked byte for byte."""

    def __init__(self, port):
        self.sock = connect(port)
        self.sent = 0

    def round_trip(self, n):
        data = pattern(self.sent, n)
        self.sock.sendall(data)
        got = read_exactly(self.sock, n)
        if got != data:
            raise AssertionError("session echoed other bytes after offset %d" % self.sent)
        self.sent += n


class UpgradeTest(EchodTestCase):
    def upgrade(self, d):
        """SIGUSR2, then the READY=1 that ends it (the new image's, or the
        old one's after a failed upgrade). Returns the notifications since."""
        d._drain_notify()
        mark = len(d.notifications)
        d.kill(signal.SIGUSR2)
        d.wait_notify("RELOADING=1", after=mark)
        d.wait_notify("READY=1", after=mark)
        return d.notifications[mark:]

    def echod_from_copy(self):
        """An echod started from a copy of the binary, which the test may
        then change; returns it and the copy's path."""
        tmp = tempfile.mkdtemp(prefix="echod-test-")
        self.addCleanup(shutil.rmtree, tmp, True)
        os.chmod(tmp, 0o755)
        binary = os.path.join(tmp, "echod")
        shutil.copy2(ECHOD, binary)
        import echodtest
        saved, echodtest.ECHOD = echodtest.ECHOD, binary
        try:
            return self.echod(), binary
        finally:
            echodtest.ECHOD = saved

    def test_session_survives_and_is_counted(self):
        d = self.echod(journal="reading")
        s = Session(d.port)
        s.round_trip(1000)
        worker = d.wait_until_workers(1)[0]
        pid = d.pid

        notes = self.upgrade(d)
        rec = d.journal.wait(MESSAGE_ID=MID_UPGRADED)[0]
        self.assertEqual(rec["ADOPTED"], "1")
        self.assertIn("MAINPID=%d" % pid, "\n".join(notes).split("\n"))
        self.assertIsNone(d.proc.poll())
        self.assertEqual(d.pid, pid)
        self.assertEqual(d.workers(), [worker])
        # The old session echoes on, byte for byte, in both directions.
        s.round_trip(200000)
        self.assertEqual(echo(d.port, b"new image"), b"new image")

        port = s.sock.getsockname()[1]
        s.sock.shutdown(socket.SHUT_WR)
        self.assertEqual(s.sock.recv(1), b"")
        s.sock.close()
        close = d.journal.wait(MESSAGE_ID=MID_CLOSE, REMOTE_PORT=str(port))[0]
        self.assertEqual(close["REMOTE_ADDR"], "127.0.0.1")
        self.assertEqual(close["LOCAL_PORT"], str(d.port))
        self.assertEqual(close["WORKER_PID"], str(worker))
        self.assertEqual(close["BYTES"], str(s.sent))
        self.assertEqual(close["CLOSE_REASON"], "eof")
        d.wait_workers(0)
        self.assertEqual(d.stop(), 0, d.read_log())
        stopped = d.journal.wait(MESSAGE_ID=MID_STOPPED)[0]
        self.assertEqual(stopped["SERVED"], "2")

    def test_no_connection_refused_during_the_upgrade(self):
        # The probe is one source in a tight loop: the shipped per-source
        # rate (20/s, burst 40) would refuse it whenever the upgrade takes
        # long enough for 40 probes, which is not what is tested here.
        d = self.echod("rate_limit_per_source = 0\n")
        stop = threading.Event()
        results = []

        def probe():
            i = 0
            deadline = time.monotonic() + 30
            while not stop.is_set() and i < 5000 and time.monotonic() < deadline:
                try:
                    results.append(echo(d.port, b"probe %d" % i, timeout=10) == b"probe %d" % i)
                except OSError as e:
                    results.append(e)
                i += 1
        t = threading.Thread(target=probe)
        t.start()
        try:
            wait_until(lambda: len(results) >= 5, what="probes before the upgrade")
            before = len(results)
            self.upgrade(d)
            d.wait_log(r"upgraded in place to echod")
            n = len(results)
            wait_until(lambda: len(results) >= n + 5, what="probes after the upgrade")
        finally:
            stop.set()
            t.join()
        self.assertGreater(len(results), before)
        self.assertEqual([r for r in results if r is not True], [])

    def test_per_source_limit_counts_the_old_session(self):
        d = self.echod("max_connections_per_source = 1\n")
        s = Session(d.port)
        s.round_trip(10)
        self.upgrade(d)
        d.wait_log(r"took over 1 running connection")
        c = connect(d.port)
        self.assertTrue(is_refused(c))
        c.close()
        d.wait_log(r"max_connections_per_source \(1\) reached")
        s.round_trip(10)
        s.sock.close()
        d.wait_workers(0)
        self.assertEqual(echo(d.port, b"now"), b"now")

    def test_broken_config_is_a_logged_noop(self):
        d = self.echod()
        s = Session(d.port)
        s.round_trip(10)
        pid = d.pid
        d.write_config("max_connections = banana\n")
        notes = self.upgrade(d)
        d.wait_log(r"upgrade failed: .* --test-config --config .* exited with status 6 \(invalid configuration\); "
                   r"still serving with this image")
        self.assertNotIn("upgraded in place", d.read_log())
        self.assertNotIn("MAINPID=%d" % pid, "\n".join(notes).split("\n"))
        self.assertIsNone(d.proc.poll())
        s.round_trip(1000)
        self.assertEqual(echo(d.port, b"old image"), b"old image")

    def test_udp_is_served_by_one_new_udp_worker(self):
        uport = free_port()
        d = self.echod('listen_udp = { "127.0.0.1:%d" }\nudp_deny_source_ports = { "0-1023" }\n' % uport)
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(u.close)
        u.settimeout(10)

        def udp_workers():
            return [p for p in d.workers() if cmdline(p).startswith("echod: udp")]
        old = wait_until(lambda: udp_workers() or None, what="the UDP worker")
        u.sendto(b"before", ("127.0.0.1", uport))
        self.assertEqual(u.recv(100), b"before")
        self.upgrade(d)
        d.wait_log(r"upgraded in place to echod")
        # The old image's worker is gone, the new image's serves: one, not two.
        new = wait_until(lambda: (lambda w: w if len(w) == 1 and w != old else None)(udp_workers()),
                         what="one new UDP worker")
        self.assertNotEqual(new, old)
        u.sendto(b"after", ("127.0.0.1", uport))
        self.assertEqual(u.recv(100), b"after")
        self.assertEqual(d.stop(), 0)

    def test_failed_execve_leaves_the_old_image_serving(self):
        tmp = tempfile.mkdtemp(prefix="echod-test-")
        self.addCleanup(shutil.rmtree, tmp, True)
        so = shim("failsyscall", tmp)
        asan = os.environ.get("ASAN_OPTIONS", "")
        d = self.echod(env={"LD_PRELOAD": so, "FAILSYSCALL": "upgrade-execve",
                            "ASAN_OPTIONS": (asan + ":" if asan else "") + "verify_asan_link_order=0"})
        s = Session(d.port)
        s.round_trip(10)
        pid = d.pid
        before = fd_targets(pid)
        self.upgrade(d)
        # The checks passed; only the execve() itself failed.
        d.wait_log(r"upgrade failed: cannot execute .*echod: Cannot allocate memory; still serving with this image")
        self.assertIsNone(d.proc.poll())
        self.assertEqual(d.pid, pid)
        # Its descriptors were put back where they were (the listener, the
        # report socket, the loop's own), and the workers' table is gone.
        # (before may hold a connection the master was handing to its
        # worker; nothing new may be left after.)
        after = fd_targets(pid)
        self.assertEqual(after, {fd: t for fd, t in before.items() if fd in after})
        s.round_trip(1000)
        self.assertEqual(echo(d.port, b"old image"), b"old image")
        s.sock.close()
        self.assertEqual(d.stop(), 0)

    def test_unexecutable_binary_is_a_logged_noop(self):
        d, binary = self.echod_from_copy()
        os.chmod(binary, 0o644)
        self.upgrade(d)
        d.wait_log(r"upgrade failed: %s is not executable" % binary)
        self.assertIsNone(d.proc.poll())
        self.assertEqual(echo(d.port, b"still"), b"still")

    def test_replaced_binary_is_the_one_executed(self):
        # What a package upgrade does: the new file is renamed over the
        # old one, which the running master keeps as "(deleted)".
        d, binary = self.echod_from_copy()
        s = Session(d.port)
        s.round_trip(10)
        shutil.copy2(ECHOD, binary + ".new")
        os.rename(binary + ".new", binary)
        self.assertTrue(os.readlink("/proc/%d/exe" % d.pid).endswith(" (deleted)"))
        self.upgrade(d)
        d.wait_log(r"upgraded in place to echod")
        self.assertEqual(os.readlink("/proc/%d/exe" % d.pid), binary)
        s.round_trip(1000)

    def test_detached_daemon_with_relative_paths(self):
        # A detached echod runs in "/": the new image must get the
        # configuration and pid file it started with, not "./echod.conf".
        import subprocess
        from echodtest import free_port
        tmp = tempfile.mkdtemp(prefix="echod-test-")
        self.addCleanup(shutil.rmtree, tmp, True)
        os.chmod(tmp, 0o755)
        port = free_port()
        with open(os.path.join(tmp, "echod.conf"), "w") as f:
            f.write('listen = { "127.0.0.1:%d" }\n' % port)
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.addCleanup(notify.close)
        notify.bind(os.path.join(tmp, "notify"))
        os.chmod(os.path.join(tmp, "notify"), 0o777)
        notify.settimeout(20)
        env = dict(os.environ, NOTIFY_SOCKET=os.path.join(tmp, "notify"))
        r = subprocess.run([ECHOD, "-c", "echod.conf", "-p", "echod.pid", "--log-target", "stderr"],
                           cwd=tmp, env=env, capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(os.path.join(tmp, "echod.pid")) as f:
            pid = int(f.read())
        self.addCleanup(lambda: os.path.exists("/proc/%d" % pid) and os.kill(pid, signal.SIGKILL))
        s = Session(port)
        s.round_trip(100)

        def recv_until(needle):
            while True:
                if needle in notify.recv(4096).decode().split("\n"):
                    return
        os.kill(pid, signal.SIGUSR2)
        recv_until("MAINPID=%d" % pid)
        recv_until("READY=1")
        s.round_trip(1000)
        self.assertEqual(echo(port, b"detached"), b"detached")
        with open(os.path.join(tmp, "echod.pid")) as f:
            self.assertEqual(int(f.read()), pid)
        s.sock.close()
        os.kill(pid, signal.SIGTERM)
        wait_until(lambda: not os.path.exists("/proc/%d" % pid), what="the daemon to exit")

    def test_socket_activated_sockets_stay_socket_activated(self):
        from echodtest import free_port
        self.require_socket_activate()
        port = free_port()
        d = self.echod(port=free_port(), wait_ready=False)
        d.start_activated(["127.0.0.1:%d" % port])
        s = Session(port)
        s.round_trip(10)
        d.wait_notify("READY=1")
        self.upgrade(d)
        d.wait_log(r"upgraded in place")
        d.wait_log(r"using socket 127\.0\.0\.1:%d passed by systemd" % port, count=2)
        d.wait_log(r"socket activated: the 'listen' setting", count=2)
        s.round_trip(1000)
        self.assertEqual(echo(port, b"activated"), b"activated")

    def test_bad_memfd_makes_the_new_image_exit_with_a_reason(self):
        d = self.echod(env={"ECHOD_UPGRADE_TEST_CORRUPT": "1"})
        d.kill(signal.SIGUSR2)
        code = d.proc.wait(20)
        self.assertNotEqual(code, 0)
        d.wait_log(r"upgrade failed: cannot take over from the previous image: the memfd's length does not match")


if __name__ == "__main__":
    main()
