# SPDX-License-Identifier: MIT
"""Classic daemon mode: the starter exits 0 once the detached daemon listens
(pid file written), or non-zero with the error when it cannot bind."""
import os
import signal
import socket
import subprocess
import tempfile
import shutil

from echodtest import ECHOD, EchodTestCase, echo, free_port, main, wait_until, cmdline


class DaemonTest(EchodTestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="echod-daemon-")
        os.chmod(self.tmp, 0o755)
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.conf = os.path.join(self.tmp, "echod.conf")
        self.pidfile = os.path.join(self.tmp, "echod.pid")

    def start(self, listen):
        with open(self.conf, "w") as f:
            f.write('listen = { "%s" }\n' % listen)
        env = dict(os.environ)
        env.pop("NOTIFY_SOCKET", None)
        return subprocess.run([ECHOD, "-c", self.conf, "-p", self.pidfile, "--log-target", "stderr"],
                              capture_output=True, text=True, timeout=30, env=env)

    def test_detaches_and_writes_pid_file(self):
        port = free_port()
        r = self.start("127.0.0.1:%d" % port)
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(self.pidfile) as f:
            pid = int(f.read())
        self.addCleanup(self._kill, pid)
        self.assertEqual(cmdline(pid), "echod: master")
        # Listening before the starter returned: no wait needed.
        self.assertEqual(echo(port, b"daemon"), b"daemon")
        # Detached: another session, and not a session leader (double fork).
        self.assertNotEqual(os.getsid(pid), os.getsid(0))
        self.assertNotEqual(os.getsid(pid), pid)
        os.kill(pid, signal.SIGTERM)
        wait_until(lambda: not os.path.exists("/proc/%d" % pid), what="daemon exit")

    def _kill(self, pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

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


if __name__ == "__main__":
    main()
