# SPDX-License-Identifier: MIT
"""STATUS= kept current and SIGUSR1 status records."""
import signal

from echodtest import EchodTestCase, connect, main, read_exactly, try_echo


class StatusTest(EchodTestCase):
    def test_status_notifications_follow_activity(self):
        d = self.echod("max_connections = 2\nmax_connections_per_source = 0\n")
        held = [connect(d.port) for _ in range(2)]
        for s in held:
            s.sendall(b".")
            read_exactly(s, 1)
        self.assertIsNone(try_echo(d.port, b"refused"))
        d.wait_notify("STATUS=2 active, 2 served, 1 refused (limit 1)")
        for s in held:
            s.close()
        d.wait_notify("STATUS=0 active, 2 served, 1 refused (limit 1)")

    def test_full_notify_queue_never_blocks_the_master(self):
        # libsystemd's sd_notify() blocks while the manager's queue is full;
        # the master must not: fill the queue, then make echod notify.
        import socket
        d = self.echod("")
        filler = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        filler.setblocking(False)
        try:
            while True:
                filler.sendto(b"X=filler", d.notify_path)
        except BlockingIOError:
            pass
        filler.close()
        for _ in range(3):
            d.kill(signal.SIGHUP)             # RELOADING=1 ... READY=1
            d.wait_log(r"reloaded")
        self.assertEqual(try_echo(d.port, b"not stuck"), b"not stuck")
        d.kill(signal.SIGUSR1)
        d.wait_log(r"status: ")
        self.assertEqual(d.stop(), 0)

    def test_sigusr1_logs_status_with_top_sources(self):
        d = self.echod("max_connections_per_source = 0\n")
        held = [connect(d.port) for _ in range(3)]
        for s in held:
            s.sendall(b".")
            read_exactly(s, 1)
        d.wait_workers(3)
        d.kill(signal.SIGUSR1)
        d.wait_log(r"status: 3 active, 3 served, 0 refused, 0 workers failed; top sources: 127\.0\.0\.1/32=3")
        for s in held:
            s.close()


if __name__ == "__main__":
    main()
