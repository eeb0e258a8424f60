# SPDX-License-Identifier: MIT
"""--inetd: one connection on standard input, as under systemd Accept=yes,
tcpserver or inetd; limits and logging as in a worker."""
import os
import shutil
import socket
import subprocess
import tempfile
import unittest

from echodtest import ACTIVATE, ECHOD, TIMEOUT, EchodTestCase, connect, echo, free_port, main, read_exactly, recv_all

UNSHARE = shutil.which("unshare")

# sh -c JOURNAL_NS_SCRIPT DIR ERRFD CMD...: runs CMD with a journal of the
# test's own, in a mount namespace where /run is empty but for
# /run/systemd/journal, the directory DIR that holds the test's socket. The
# setup's own errors go to ERRFD, never to fds 0-2, which may be a client's
# connection.
JOURNAL_NS_SCRIPT = (
    'd=$0 e=$1; shift; '
    '{ mount -t tmpfs tmpfs /run && mkdir -p /run/systemd/journal && '
    'mount --bind "$d" /run/systemd/journal; } 2>&"$e" || exit 125; '
    'eval "exec $e>&-"; exec "$@"')

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
        d, port = self.start("log_connections = all\n")
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

    def journal_of_our_own(self):
        """(argv prefix, journal socket): echod started under the prefix sees
        /run/systemd/journal/socket, which is the returned socket."""
        if not UNSHARE:
            raise unittest.SkipTest("unshare is missing (package util-linux)")
        d = tempfile.mkdtemp(prefix="echod-journal-")
        self.addCleanup(shutil.rmtree, d, True)
        os.chmod(d, 0o755)
        journal = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.addCleanup(journal.close)
        journal.bind(os.path.join(d, "socket"))
        os.chmod(os.path.join(d, "socket"), 0o777)
        ns = [UNSHARE, "--mount"] + ([] if os.geteuid() == 0 else ["--user", "--map-root-user"])
        probe = subprocess.run(ns + ["sh", "-c", JOURNAL_NS_SCRIPT, d, "2", "test", "-S", "/run/systemd/journal/socket"],
                               stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=TIMEOUT)
        if probe.returncode != 0:
            why = "cannot make a mount namespace with a journal socket of the test's own (exit %d: %s)" % (
                probe.returncode, probe.stderr.strip())
            if os.environ.get("CI") == "true":
                self.fail(why)
            raise unittest.SkipTest(why)
        return ns + ["sh", "-c", JOURNAL_NS_SCRIPT, d], journal

    def test_config_errors_never_reach_the_client_with_the_journal_as_target(self):
        # Under xinetd fds 0, 1 and 2 are all the connection. With the journal
        # as the target echod used to copy its config errors to stderr too,
        # i.e. to the client.
        prefix, journal = self.journal_of_our_own()
        conf = self.tmpfile("bad.conf", "idle_timeout = 1\n\nuser = svc-secret-name\n")
        setup_errors = tempfile.TemporaryFile()
        self.addCleanup(setup_errors.close)
        # A TCP connection, as xinetd passes. The client sends nothing: it
        # only reads, so echod's exit leaves no unread bytes that would
        # turn its close into a reset.
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen(1)
            ours = socket.create_connection(listener.getsockname(), timeout=TIMEOUT)
            self.addCleanup(ours.close)
            theirs, _ = listener.accept()
        with theirs:
            env = {k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"}
            p = subprocess.Popen(prefix + [str(setup_errors.fileno()), ECHOD, "--inetd", "--log-target", "journal",
                                           "-c", conf],
                                 stdin=theirs, stdout=theirs, stderr=theirs, pass_fds=(setup_errors.fileno(),),
                                 env=env)
        self.addCleanup(p.kill)
        got = recv_all(ours)
        code = p.wait(TIMEOUT)
        setup_errors.seek(0)
        self.assertNotEqual(code, 125, setup_errors.read())
        self.assertEqual(got, b"")
        self.assertEqual(code, 6)
        # The errors did go somewhere: to the journal.
        journal.settimeout(TIMEOUT)
        records = []
        while not any(b"not starting" in r for r in records):
            records.append(journal.recv(65536))
        self.assertTrue(any(b"bad.conf:3: user: no such user 'svc-secret-name'" in r for r in records), records)

    def test_refuses_test_config_combination(self):
        r = self.run_echod(["--inetd", "-t"])
        self.assertEqual(r.returncode, 2)


if __name__ == "__main__":
    main()
