# SPDX-License-Identifier: MIT
"""Classic daemon mode: the starter exits 0 once the detached daemon listens
(pid file written), or non-zero with the error when it cannot bind. Also
the account a root-started echod runs as."""
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import unittest

from echodtest import (ECHOD, TIMEOUT, EchodTestCase, activate_prefix, cmdline, connect, echo, free_port, main,
                       read_exactly, wait_until)

UNSHARE = shutil.which("unshare")


def gone(pid):
    return not os.path.exists("/proc/%d" % pid)


class DaemonTest(EchodTestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="echod-daemon-")
        os.chmod(self.tmp, 0o755)
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.conf = os.path.join(self.tmp, "echod.conf")
        self.pidfile = os.path.join(self.tmp, "echod.pid")
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.addCleanup(self.notify.close)
        self.notify_path = os.path.join(self.tmp, "notify")
        self.notify.bind(self.notify_path)
        os.chmod(self.notify_path, 0o777)
        self.notify.settimeout(TIMEOUT)

    def write_config(self, *listen):
        with open(self.conf, "w") as f:
            f.write('listen = { %s }\n' % ", ".join('"%s"' % a for a in listen))

    def start(self, listen, args=None, cwd=None):
        self.write_config(listen)
        env = dict(os.environ)
        env["NOTIFY_SOCKET"] = self.notify_path
        argv = [ECHOD] + (args if args is not None else ["-c", self.conf, "-p", self.pidfile]) + \
            ["--log-target", "stderr"]
        return subprocess.run(argv, capture_output=True, text=True, timeout=30, env=env, cwd=cwd)

    def daemon_pid(self, pidfile=None):
        with open(pidfile or self.pidfile) as f:
            pid = int(f.read())
        self.addCleanup(self._kill, pid)
        return pid

    def wait_notify(self, needle):
        while True:
            msg = self.notify.recv(4096).decode()
            if needle in msg.split("\n"):
                return msg

    def stop(self, pid):
        os.kill(pid, signal.SIGTERM)
        wait_until(lambda: gone(pid), what="daemon exit")

    def _kill(self, pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def test_detaches_and_writes_pid_file(self):
        port = free_port()
        r = self.start("127.0.0.1:%d" % port)
        self.assertEqual(r.returncode, 0, r.stderr)
        pid = self.daemon_pid()
        self.assertEqual(cmdline(pid), "echod: master")
        # Listening before the starter returned: no wait needed.
        self.assertEqual(echo(port, b"daemon"), b"daemon")
        # Detached: another session, and not a session leader (double fork).
        self.assertNotEqual(os.getsid(pid), os.getsid(0))
        self.assertNotEqual(os.getsid(pid), pid)
        self.stop(pid)

    def test_bind_failure_is_the_starters_exit_status(self):
        busy = socket.socket()
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        r = self.start("127.0.0.1:%d" % port)
        busy.close()
        self.assertEqual(r.returncode, 1)
        self.assertIn("cannot listen on 127.0.0.1:%d: Address already in use" % port, r.stderr)
        self.assertFalse(os.path.exists(self.pidfile))

    def test_relative_config_still_reloads(self):
        # The daemon runs in "/": "echod.conf" must still mean the file in
        # the directory it was started from when SIGHUP re-reads it.
        port, added = free_port(), free_port()
        pidfile = os.path.join(self.tmp, "run", "echod.pid")
        r = self.start("127.0.0.1:%d" % port, args=["-c", "echod.conf", "-p", "run/echod.pid"], cwd=self.tmp)
        self.assertEqual(r.returncode, 0, r.stderr)
        pid = self.daemon_pid(pidfile)
        self.wait_notify("READY=1")
        self.write_config("127.0.0.1:%d" % port, "127.0.0.1:%d" % added)
        os.kill(pid, signal.SIGHUP)
        self.wait_notify("RELOADING=1")
        status = self.wait_notify("READY=1")
        self.assertNotIn("Reload failed", status)
        self.assertEqual(echo(added, b"new listener"), b"new listener")
        self.stop(pid)
        # The relative pid file was in the start directory too, and is gone.
        self.assertFalse(os.path.exists(pidfile))

    def test_pid_file_is_removed_at_exit(self):
        # As root the file is written before the drop to the run user, who
        # must still be able to remove it: echod makes its missing directory
        # and gives it to that user.
        rundir = os.path.join(self.tmp, "run")
        pidfile = os.path.join(rundir, "echod.pid")
        r = self.start("127.0.0.1:%d" % free_port(), args=["-c", self.conf, "-p", pidfile])
        self.assertEqual(r.returncode, 0, r.stderr)
        pid = self.daemon_pid(pidfile)
        with open("/proc/%d/status" % pid) as f:
            uid = int([line for line in f if line.startswith("Uid:")][0].split()[1])
        self.assertEqual(os.stat(rundir).st_uid, uid)
        self.stop(pid)
        self.assertFalse(os.path.exists(pidfile))

    @unittest.skipUnless(os.geteuid() == 0, "needs root: the pid file is written before the privilege drop")
    def test_undeletable_pid_file_is_announced(self):
        # A directory of root's that the run user cannot write is not
        # chowned: echod says that the file will stay.
        r = self.start("127.0.0.1:%d" % free_port())
        self.assertEqual(r.returncode, 0, r.stderr)
        pid = self.daemon_pid()
        self.assertRegex(r.stderr, r"pid file %s will be left behind at exit: its directory does not let \S+ remove it"
                         % self.pidfile)
        self.assertEqual(os.stat(self.tmp).st_uid, 0)
        self.stop(pid)

    def test_failed_start_keeps_the_running_daemons_pid_file(self):
        port = free_port()
        r = self.start("127.0.0.1:%d" % port)
        self.assertEqual(r.returncode, 0, r.stderr)
        pid = self.daemon_pid()
        # A second echod with the same pid file cannot bind, exits 1, and
        # leaves the first one's pid file alone.
        r = self.start("127.0.0.1:%d" % port, args=["-f", "-c", self.conf, "-p", self.pidfile])
        self.assertEqual(r.returncode, 1, r.stderr)
        with open(self.pidfile) as f:
            self.assertEqual(int(f.read()), pid)
        self.stop(pid)

    def test_socket_activation_without_foreground(self):
        # The passed socket follows the daemon through the detach; it used to
        # stay open, never accepted, while echod bound `listen` instead.
        self.require_socket_activate()
        port, unused = free_port(), free_port()
        self.write_config("127.0.0.1:%d" % unused)
        argv = activate_prefix(["127.0.0.1:%d" % port], self.notify_path)
        argv += [ECHOD, "-c", self.conf, "-p", self.pidfile, "--log-target", "stderr"]
        starter = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT)
        self.addCleanup(starter.kill)
        # systemd-socket-activate prints that it listens, then starts echod
        # on the first connection.
        out = b""
        while b"Listening on" not in out:
            line = starter.stdout.readline()
            self.assertTrue(line, out)
            out += line
        first = connect(port)
        first.sendall(b"first")
        out += starter.communicate(timeout=TIMEOUT)[0]
        self.assertEqual(starter.returncode, 0, out)
        pid = self.daemon_pid()
        self.assertIn(b"using socket 127.0.0.1:%d passed by systemd" % port, out)
        self.assertEqual(read_exactly(first, 5), b"first")
        first.close()
        self.assertEqual(echo(port, b"second"), b"second")
        with self.assertRaises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", unused), timeout=5)
        self.stop(pid)


class RunUserTest(EchodTestCase):
    """Started as root with no `user`: the package's account _echod, or
    nobody, said so, when it does not exist."""

    def setUp(self):
        if os.geteuid() != 0:
            raise unittest.SkipTest("needs root: echod switches users only when started as root")

    def uid_of(self, pid):
        with open("/proc/%d/status" % pid) as f:
            return int([line for line in f if line.startswith("Uid:")][0].split()[1])

    def test_falls_back_to_nobody_without_echod_user(self):
        try:
            pwd.getpwnam("_echod")
            raise unittest.SkipTest("this machine has an _echod user")
        except KeyError:
            pass
        d = self.echod()
        d.wait_log(r"there is no user _echod \(the echod package creates it\): falling back to nobody")
        d.wait_log(r"dropped privileges to user nobody \(%d\), group nogroup" % pwd.getpwnam("nobody").pw_uid)
        self.assertEqual(self.uid_of(d.pid), pwd.getpwnam("nobody").pw_uid)

    def test_runs_as_echod_user(self):
        # The account exists only in a mount namespace of echod's own, where
        # /etc/passwd and /etc/group are copies with _echod added: nothing on
        # the machine changes.
        if not UNSHARE:
            raise unittest.SkipTest("unshare is missing (package util-linux)")
        uids = {p.pw_uid for p in pwd.getpwall()}
        uid = next(u for u in range(64000, 65000) if u not in uids)
        etc = tempfile.mkdtemp(prefix="echod-etc-")
        self.addCleanup(shutil.rmtree, etc, True)
        for name, line in (("passwd", "_echod:x:%d:%d::/nonexistent:/usr/sbin/nologin\n" % (uid, uid)),
                           ("group", "_echod:x:%d:\n" % uid)):
            with open("/etc/" + name) as f, open(os.path.join(etc, name), "w") as out:
                out.write(f.read() + line)
            os.chmod(os.path.join(etc, name), 0o644)
        script = ('mount --bind "$0/passwd" /etc/passwd && mount --bind "$0/group" /etc/group '
                  '&& if [ -d /run/nscd ]; then mount -t tmpfs tmpfs /run/nscd; fi && exec "$@"')
        probe = subprocess.run([UNSHARE, "--mount", "sh", "-c", script, etc, "getent", "passwd", "_echod"],
                               capture_output=True, text=True, timeout=TIMEOUT)
        if probe.returncode != 0:
            why = "cannot make a mount namespace with an _echod user (exit %d: %s)" % (
                probe.returncode, probe.stderr.strip())
            if os.environ.get("CI") == "true":
                self.fail(why)
            raise unittest.SkipTest(why)
        d = self.echod(wait_ready=False)
        d.proc.kill()
        d.proc.wait()
        mark = len(d.read_log())        # what the first start, outside the namespace, logged
        d.start(prefix=[UNSHARE, "--mount", "sh", "-c", script, etc])
        d.wait_log(r"dropped privileges to user _echod \(%d\), group _echod \(%d\)" % (uid, uid))
        self.assertNotIn("falling back", d.read_log()[mark:])
        self.assertEqual(self.uid_of(d.pid), uid)
        self.assertEqual(echo(d.port, b"as _echod"), b"as _echod")
        self.assertEqual(d.stop(), 0)


if __name__ == "__main__":
    main()
