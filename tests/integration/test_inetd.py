# SPDX-License-Identifier: MIT
"""--inetd: one connection on standard input, as under systemd Accept=yes,
tcpserver or inetd; limits and logging as in a worker."""
import os

from echodtest import ACTIVATE, EchodTestCase, connect, echo, free_port, main, read_exactly, recv_all

class InetdTest(EchodTestCase):
    def setUp(self):
        self.require_socket_activate()

    def start(self, config=""):
        port = free_port()
        d = self.echod(config, wait_ready=False)
        d.proc.kill()
        d.proc.wait()
        d.args = ["--inetd"]
        # --inetd -a: one echod --inetd per accepted connection, on fds 0 and 1.
        d.start(wait_ready=False, prefix=[ACTIVATE, "--inetd", "-a", "-l", "127.0.0.1:%d" % port])
        d.wait_log(r"Listening on 127\.0\.0\.1:%d" % port)
        return d, port

    def test_echo_per_connection_process(self):
        d, port = self.start()
        self.assertEqual(echo(port, b"inetd one"), b"inetd one")
        self.assertEqual(echo(port, bytes(range(256)) * 1000), bytes(range(256)) * 1000)
        d.wait_log(r"connection from 127\.0\.0\.1:\d+ to port %d opened" % port)
        d.wait_log(r"closed: eof, 9 bytes echoed")
        d.wait_log(r"closed: eof, 256000 bytes echoed")

    def test_limits_apply(self):
        d, port = self.start("idle_timeout = 1\nmax_bytes = 100\n")
        self.assertEqual(echo(port, b"m" * 1000), b"m" * 100)
        d.wait_log(r"closed: max-bytes, 100 bytes echoed")
        s = connect(port)
        s.sendall(b"idle")
        self.assertEqual(read_exactly(s, 4), b"idle")
        self.assertEqual(recv_all(s), b"")
        d.wait_log(r"closed: idle-timeout")
        s.close()

    def run_on_socketpair(self, config, data, stderr_too):
        import socket
        import subprocess
        from echodtest import ECHOD, recv_all
        conf = self.tmpfile("inetd.conf", config)
        ours, theirs = socket.socketpair()
        with ours, theirs:
            p = subprocess.Popen([ECHOD, "--inetd", "-c", conf], stdin=theirs, stdout=theirs,
                                 stderr=theirs if stderr_too else subprocess.DEVNULL,
                                 env={k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"})
            theirs.close()
            ours.settimeout(20)
            ours.sendall(data)
            got = ours.recv(len(data)) if data else b""
            while len(got) < len(data):
                got += ours.recv(len(data) - len(got))
            rest = recv_all(ours)           # idle timeout closes it
            return p.wait(20), got, rest

    def test_exit_status_is_zero_for_normal_endings(self):
        # An idle timeout is a normal end: a non-zero status would mark every
        # echod-inetd@ instance failed.
        code, got, rest = self.run_on_socketpair("idle_timeout = 1\n", b"bye", False)
        self.assertEqual((code, got, rest), (0, b"bye", b""))

    def test_logs_never_reach_the_client_through_stderr(self):
        # xinetd and openbsd-inetd pass the connection as stderr too.
        code, got, rest = self.run_on_socketpair("idle_timeout = 1\nlog_connections = true\n",
                                                 b"only this", True)
        self.assertEqual(got + rest, b"only this")
        self.assertEqual(code, 0)

    def test_refuses_test_config_combination(self):
        r = self.run_echod(["--inetd", "-t"])
        self.assertEqual(r.returncode, 2)


if __name__ == "__main__":
    main()
