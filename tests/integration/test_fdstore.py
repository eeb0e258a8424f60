# SPDX-License-Identifier: MIT
"""Listeners in systemd's fd store: echod hands every listener it binds to
the service manager (FDSTORE=1, a name per listener), and a restarted
echod takes them back from LISTEN_FDS instead of binding, so that a client
who connects while no echod runs waits in the backlog and is served. The
harness plays systemd 252 (echodtest.Echod's fdstore and restart())."""
import socket

from echodtest import EchodTestCase, connect, echo, free_port, main, read_exactly


def name(addr):
    return "tcp@" + addr.replace(":", "_")


class FdStoreTest(EchodTestCase):
    def wait_stored(self, d, names):
        from echodtest import wait_until
        want = sorted(names)
        wait_until(lambda: d.stored_names() == want, what="fd store %s (have %s)" % (want, d.stored_names()))

    def test_connection_queued_across_restart_is_served(self):
        d = self.echod(fdstore=True)
        addr = "127.0.0.1:%d" % d.port
        self.wait_stored(d, [name(addr)])
        self.assertEqual(d.stop(), 0, d.read_log())
        # No echod runs: the kernel still queues the connection, as the
        # store keeps the listener open.
        c = connect(d.port)
        c.sendall(b"queued across the restart")
        d.restart()
        self.assertEqual(read_exactly(c, 25), b"queued across the restart")
        c.close()
        d.wait_log(r"listening on %s \(kept open across the restart\)" % addr.replace(".", r"\."))
        self.assertNotIn("cannot listen", d.read_log())
        self.assertEqual(d.stored_names(), [name(addr)])
        self.assertEqual(echo(d.port, b"after"), b"after")

    def test_restart_follows_the_configuration(self):
        kept, gone, new = free_port(), free_port(), free_port()
        listen = ["127.0.0.1:%d" % p for p in (kept, gone)]
        d = self.echod(listen=listen, fdstore=True)
        self.wait_stored(d, [name(a) for a in listen])
        d.write_config("", listen=["127.0.0.1:%d" % kept, "127.0.0.1:%d" % new])
        d.restart()
        self.wait_stored(d, [name("127.0.0.1:%d" % kept), name("127.0.0.1:%d" % new)])
        d.wait_log(r"closing tcp listener 127\.0\.0\.1:%d kept by systemd: no longer in the configuration" % gone)
        self.assertEqual(echo(kept, b"kept"), b"kept")
        self.assertEqual(echo(new, b"new"), b"new")
        # Closed by echod and by the store: nobody holds it any more.
        with self.assertRaises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", gone), timeout=5)

    def test_reload_updates_the_store(self):
        a, b = free_port(), free_port()
        d = self.echod(listen=["127.0.0.1:%d" % a], fdstore=True)
        self.wait_stored(d, [name("127.0.0.1:%d" % a)])
        d.write_config("", listen=["127.0.0.1:%d" % a, "[::1]:%d" % b])
        d.reload()
        self.wait_stored(d, [name("127.0.0.1:%d" % a), "tcp@[__1]_%d" % b])
        d.write_config("", listen=["[::1]:%d" % b])
        d.reload()
        self.wait_stored(d, ["tcp@[__1]_%d" % b])
        with self.assertRaises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", a), timeout=5)
        self.assertEqual(echo(b, b"v6", host="::1", family=socket.AF_INET6), b"v6")

    def test_socket_unit_sockets_win_over_stored_ones(self):
        d = self.echod(fdstore=True)
        stored_addr = "127.0.0.1:%d" % d.port
        self.wait_stored(d, [name(stored_addr)])
        unit = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(unit.close)
        unit.bind(("127.0.0.1", 0))
        unit.listen(16)
        unit_port = unit.getsockname()[1]
        d.restart(extra_fds=[("echod.socket", unit.fileno())])
        d.wait_log(r"using socket 127\.0\.0\.1:%d passed by systemd" % unit_port)
        d.wait_log(r"closing tcp listener %s kept by systemd: socket activated" % stored_addr.replace(".", r"\."))
        self.wait_stored(d, [])
        self.assertEqual(echo(unit_port, b"unit"), b"unit")

    def test_without_a_manager_store_nothing_is_kept(self):
        # A manager without FileDescriptorStoreMax= drops the descriptors:
        # a stop then closes the port as it always did.
        d = self.echod()
        d.wait_notify("READY=1")
        self.assertIn("FDSTORE=1", "\n".join(d.notifications))
        self.assertEqual(d.stop(), 0, d.read_log())
        with self.assertRaises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", d.port), timeout=5)


if __name__ == "__main__":
    main()
