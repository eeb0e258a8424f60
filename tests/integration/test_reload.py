# SPDX-License-Identifier: MIT
"""SIGHUP: a valid file is applied without hurting running sessions or the
listen backlog; an invalid one changes nothing and says why."""
import signal
import socket

from echodtest import EchodTestCase, connect, echo, free_port, is_refused, main, read_exactly, try_echo


class ReloadTest(EchodTestCase):
    def test_add_and_remove_listeners_keeps_sessions(self):
        d = self.echod("")
        first = d.port
        session = connect(first)
        session.sendall(b"before")
        self.assertEqual(read_exactly(session, 6), b"before")

        second = free_port()
        d.write_config("", listen=["127.0.0.1:%d" % first, "127.0.0.1:%d" % second])
        d.reload()
        d.wait_log(r"reloaded .*: 2 listeners \(1 added, 0 closed\)")
        self.assertEqual(echo(second, b"new port"), b"new port")
        self.assertEqual(echo(first, b"old port"), b"old port")

        # Remove the first listener: the running session is untouched.
        d.write_config("", listen=["127.0.0.1:%d" % second])
        d.reload()
        d.wait_log(r"reloaded .*: 1 listener \(0 added, 1 closed\)")
        self.assertIsNone(try_echo(first, b"gone"))
        session.sendall(b"after")
        self.assertEqual(read_exactly(session, 5), b"after")
        session.close()

    def test_backlog_survives_reload(self):
        # Connections waiting in the kernel's queue of an unchanged listener
        # are not lost by a reload: fill the queue while the master is stopped.
        d = self.echod("backlog = 16\n")
        d.kill(signal.SIGSTOP)
        try:
            waiting = []
            for _ in range(5):
                s = socket.socket()
                s.settimeout(20)
                s.connect(("127.0.0.1", d.port))
                s.sendall(b"queued")
                waiting.append(s)
            d.write_config("backlog = 32\n")
            d.kill(signal.SIGHUP)
        finally:
            d.kill(signal.SIGCONT)
        d.wait_log(r"reloaded")
        for s in waiting:
            self.assertEqual(read_exactly(s, 6), b"queued")
            s.close()

    def test_invalid_config_keeps_everything(self):
        d = self.echod("max_connections = 10\n")
        session = connect(d.port)
        d.write_config("max_connections = lots\nidle_timeout = soon\n")
        d.reload()
        path = d.config_path.replace(".", r"\.")
        d.wait_log(r"%s:2: max_connections: invalid value 'lots'" % path)
        d.wait_log(r"%s:3: idle_timeout: invalid duration 'soon'" % path)
        d.wait_log(r"reload failed: .* is invalid \(2 errors\); still serving with the previous configuration")
        self.assertTrue(any("STATUS=Reload failed" in n for n in d.notifications) or
                        d.wait_notify("READY=1"))
        self.assertEqual(echo(d.port, b"still"), b"still")
        session.sendall(b"x")
        self.assertEqual(read_exactly(session, 1), b"x")
        session.close()

    def test_reload_failure_when_a_new_port_is_taken(self):
        d = self.echod("")
        busy = socket.socket()
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        taken = busy.getsockname()[1]
        d.write_config("", listen=["127.0.0.1:%d" % d.port, "127.0.0.1:%d" % taken])
        d.reload()
        d.wait_log(r"reload failed: cannot listen on 127\.0\.0\.1:%d: Address already in use" % taken)
        self.assertEqual(echo(d.port, b"old ok"), b"old ok")
        busy.close()

    def test_limits_apply_to_new_connections_only(self):
        d = self.echod("max_connections_per_source = 5\n")
        held = [connect(d.port) for _ in range(3)]
        for s in held:
            s.sendall(b".")
            read_exactly(s, 1)
        d.write_config("max_connections_per_source = 2\n")
        d.reload()
        # The three running sessions stay; a fourth is refused.
        for s in held:
            s.sendall(b"!")
            self.assertEqual(read_exactly(s, 1), b"!")
        self.assertIsNone(try_echo(d.port, b"no"))
        for s in held:
            s.close()

    def test_prefix_change_keeps_counts(self):
        # Running workers are counted under the new source prefixes at once,
        # and every count returns to 0 when they end.
        d = self.echod("max_connections_per_source = 2\nsource_prefix_v4 = 32\n")

        def session(src):
            s = connect(d.port, source=src)
            s.sendall(b".")
            self.assertEqual(read_exactly(s, 1), b".")
            return s

        def status(n):
            d.kill(signal.SIGUSR1)
            active, top = d.wait_log(r"status: (\d+) active, \d+ served.*top sources: (.*)", count=n)[n - 1]
            return active, " ".join(sorted(top.split()))  # ties come in hash order

        held = [session("127.0.0.1"), session("127.0.0.2")]
        self.assertEqual(status(1), ("2", "127.0.0.1/32=1 127.0.0.2/32=1"))
        d.write_config("max_connections_per_source = 2\nsource_prefix_v4 = 24\n")
        d.reload()
        d.wait_log(r"reloaded")
        self.assertEqual(status(2), ("2", "127.0.0.0/24=2"))
        # The /24 already holds two.
        s = connect(d.port, source="127.0.0.3")
        self.assertTrue(is_refused(s))
        s.close()
        d.wait_log(r"refused connection from 127\.0\.0\.3:\d+: max_connections_per_source \(2\) reached for 127\.0\.0\.0/24")

        # Back to /32 while they run, then they end: nothing stays counted.
        d.write_config("max_connections_per_source = 2\nsource_prefix_v4 = 32\n")
        d.reload()
        self.assertEqual(status(3), ("2", "127.0.0.1/32=1 127.0.0.2/32=1"))
        for s in held:
            s.close()
        d.wait_workers(0)
        self.assertEqual(status(4), ("0", "none"))
        held = [session("127.0.0.1"), session("127.0.0.1")]
        self.assertEqual(status(5), ("2", "127.0.0.1/32=2"))
        for s in held:
            s.close()

    def test_notify_protocol(self):
        d = self.echod("")
        mark = len(d.notifications)
        d.reload()
        msgs = d.notifications[mark:]
        reloading = [m for m in msgs if "RELOADING=1" in m.split("\n")]
        self.assertTrue(reloading)
        self.assertRegex(reloading[0], r"MONOTONIC_USEC=\d+")


if __name__ == "__main__":
    main()
