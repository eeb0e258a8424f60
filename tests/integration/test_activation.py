# SPDX-License-Identifier: MIT
"""Socket activation through systemd-socket-activate: echod uses the passed
socket and binds none of its `listen` addresses."""
import os
import shutil
import socket
import tempfile

from echodtest import EchodTestCase, connect, echo, free_port, main, read_exactly, shim


class ActivationTest(EchodTestCase):
    def setUp(self):
        self.require_socket_activate()

    def start(self, config="", env=()):
        port = free_port()
        unused = free_port()
        d = self.echod(config, port=unused, wait_ready=False)
        d.start_activated(["127.0.0.1:%d" % port], env=env)
        return d, port, unused

    def test_uses_passed_socket_and_ignores_listen(self):
        d, port, unused = self.start()
        # systemd-socket-activate starts echod on the first connection.
        first = connect(port)
        first.sendall(b"first")
        d.wait_notify("READY=1")
        self.assertEqual(read_exactly(first, 5), b"first")
        first.close()
        self.assertEqual(echo(port, b"second"), b"second")
        d.wait_log(r"using socket 127\.0\.0\.1:%d passed by systemd" % port)
        d.wait_log(r"socket activated: the 'listen' setting in .* is ignored")
        with self.assertRaises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", unused), timeout=5)
        self.assertEqual(d.stop(), 0, d.read_log())

    def test_reload_keeps_passed_socket(self):
        d, port, unused = self.start()
        c = connect(port)
        c.sendall(b"x")
        d.wait_notify("READY=1")
        read_exactly(c, 1)
        d.write_config("max_connections = 5\n")
        d.reload()
        d.wait_log(r"sockets from systemd kept")
        self.assertEqual(echo(port, b"after reload"), b"after reload")
        c.close()

    def test_workers_without_clone3(self):
        # systemd's seccomp filter answers clone3() with ENOSYS under
        # RestrictNamespaces=: workers are then made with clone(), never
        # with glibc's fork(), whose atfork handlers (libsystemd registers
        # one once sd_listen_fds() ran) live in libraries workers lack.
        tmp = tempfile.mkdtemp(prefix="echod-test-")
        self.addCleanup(shutil.rmtree, tmp, True)
        asan = os.environ.get("ASAN_OPTIONS", "")
        d, port, _ = self.start(env=["LD_PRELOAD=" + shim("failsyscall", tmp), "FAILSYSCALL=clone3",
                                     "ASAN_OPTIONS=" + (asan + ":" if asan else "") + "verify_asan_link_order=0"])
        first = connect(port)
        first.sendall(b"first")
        d.wait_notify("READY=1")
        self.assertEqual(read_exactly(first, 5), b"first")
        first.close()
        for i in range(5):
            self.assertEqual(echo(port, b"clone %d" % i), b"clone %d" % i)
        d.wait_workers(0)
        self.assertNotIn("killed by signal", d.read_log())
        self.assertEqual(d.stop(), 0, d.read_log())


if __name__ == "__main__":
    main()
