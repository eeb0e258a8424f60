#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Connection records: written by the master, one per connection, from the
worker's report joined with what the master knows; the log_connections
modes; a lying worker; the record budget and its summary; a journal that
takes nothing; and slots given back the moment a worker exits.

Records go to a journal socket of the test's own (echodtest.FakeJournal),
read in journald's native protocol, so every field is seen."""
import os
import signal
import socket
import struct
import threading
import time

from echodtest import (ECHOD, TIMEOUT, EchodTestCase, connect, echo, main, read_exactly,
                       recv_all, wait_until)

MID_OPEN = "fb8492e167704a2bbbc8cb13f049d770"
MID_CLOSE = "b8891436a2ba4f56b2ec6232e48a8db5"
MID_STATUS = "466d07f2ce9e45dd9d2f5d5ad69848da"
MID_SUMMARY = "6bdb164a2dbf48a08f7bfadc62fb1b9f"
MID_STOPPED = "c2bce8a5bcfc41a98fcb139594e895b6"


def shim(name):
    build_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(ECHOD))))
    return os.path.join(build_root, "tests", "shim", name + ".so")


def reset(s):
    """Closes s with RST (SO_LINGER 0)."""
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()


class RecordsTest(EchodTestCase):
    def journal_echod(self, config="", **kwargs):
        base = "max_connections_per_source = 0\nrate_limit = 0\nrate_limit_per_source = 0\n"
        return self.echod(base + config, journal="reading", **kwargs)

    def fence(self, d):
        """Waits until every worker is reaped, then for a status record
        (SIGUSR1): records are written at the reap, in order, so every
        record of those connections came before it. Returns it."""
        d.wait_workers(0)
        n = len(d.journal.select(MESSAGE_ID=MID_STATUS))
        d.kill(signal.SIGUSR1)
        return d.journal.wait(count=n + 1, MESSAGE_ID=MID_STATUS)[n]

    def closes(self, d, **match):
        return d.journal.select(MESSAGE_ID=MID_CLOSE, **match)

    def test_one_record_per_connection_with_every_field(self):
        d = self.journal_echod()
        ports = []
        for payload in (b"one", b"two two", b"x" * 70000):
            with connect(d.port) as s:
                ports.append(s.getsockname()[1])
                s.sendall(payload)
                s.shutdown(socket.SHUT_WR)
                self.assertEqual(recv_all(s), payload)
        # A reset: the worker waits for more when the client resets.
        s = connect(d.port)
        ports.append(s.getsockname()[1])
        s.sendall(b"rst")
        self.assertEqual(read_exactly(s, 3), b"rst")
        reset(s)
        self.fence(d)

        self.assertEqual(d.journal.select(MESSAGE_ID=MID_OPEN), [])
        recs = self.closes(d)
        self.assertEqual(sorted(int(r["REMOTE_PORT"]) for r in recs), sorted(ports))
        by_port = {int(r["REMOTE_PORT"]): r for r in recs}
        pids = set()
        for port, size in zip(ports, (3, 7, 70000, 3)):
            r = by_port[port]
            self.assertEqual(r["REMOTE_ADDR"], "127.0.0.1")
            self.assertEqual(r["LOCAL_PORT"], str(d.port))
            self.assertEqual(r["BYTES"], str(size))
            self.assertGreater(int(r["DURATION_USEC"]), 0)
            self.assertEqual(r["SYSLOG_IDENTIFIER"], "echod")
            self.assertIn("connection from 127.0.0.1:%d closed: " % port, r["MESSAGE"])
            pids.add(int(r["WORKER_PID"]))
        self.assertEqual(len(pids), 4)
        for port in ports[:3]:
            self.assertEqual(by_port[port]["CLOSE_REASON"], "eof")
            self.assertEqual(by_port[port]["PRIORITY"], "6")
            self.assertNotIn("ERRNO", by_port[port])
        self.assertEqual(by_port[ports[3]]["CLOSE_REASON"], "reset")
        self.assertEqual(by_port[ports[3]]["ERRNO"], "104")
        self.assertIn("closed: reset: Connection reset by peer, 3 bytes echoed", by_port[ports[3]]["MESSAGE"])

    def test_killed_worker_gets_a_record_without_bytes(self):
        d = self.journal_echod()
        s = connect(d.port)
        self.addCleanup(s.close)
        s.sendall(b"k")
        self.assertEqual(read_exactly(s, 1), b"k")
        (pid,) = d.wait_until_workers(1)
        os.kill(pid, signal.SIGKILL)
        self.fence(d)
        (r,) = self.closes(d)
        self.assertEqual((r["WORKER_PID"], r["CLOSE_REASON"], r["SIGNAL"], r["PRIORITY"]),
                         (str(pid), "killed", "9", "4"))
        self.assertEqual(r["REMOTE_PORT"], str(s.getsockname()[1]))
        self.assertNotIn("BYTES", r)
        self.assertIn("bytes unknown", r["MESSAGE"])

    def run_mix(self, d):
        """One clean connection and one reset; returns their ports."""
        with connect(d.port) as s:
            clean = s.getsockname()[1]
            s.sendall(b"clean")
            s.shutdown(socket.SHUT_WR)
            self.assertEqual(recv_all(s), b"clean")
        s = connect(d.port)
        rst = s.getsockname()[1]
        s.sendall(b"r")
        self.assertEqual(read_exactly(s, 1), b"r")
        reset(s)
        self.fence(d)
        return clean, rst

    def test_all_writes_open_then_close(self):
        d = self.journal_echod("log_connections = all\n")
        clean, rst = self.run_mix(d)
        with d.journal.lock:
            recs = [r for r in d.journal.records if r.get("MESSAGE_ID") in (MID_OPEN, MID_CLOSE)]
        for port in (clean, rst):
            mine = [r for r in recs if r["REMOTE_PORT"] == str(port)]
            self.assertEqual([r["MESSAGE_ID"] for r in mine], [MID_OPEN, MID_CLOSE])
            self.assertEqual(mine[0]["WORKER_PID"], mine[1]["WORKER_PID"])
            self.assertEqual(mine[0]["LOCAL_PORT"], str(d.port))
            self.assertEqual(mine[0]["REMOTE_ADDR"], "127.0.0.1")

    def test_errors_writes_only_abnormal_ends(self):
        d = self.journal_echod("log_connections = errors\n")
        clean, rst = self.run_mix(d)
        self.assertEqual(d.journal.select(MESSAGE_ID=MID_OPEN), [])
        self.assertEqual([r["REMOTE_PORT"] for r in self.closes(d)], [str(rst)])

    def test_off_writes_none(self):
        for spelling in ("off", "false"):
            d = self.journal_echod("log_connections = %s\n" % spelling)
            self.run_mix(d)
            self.assertEqual(d.journal.select(MESSAGE_ID=MID_OPEN), [])
            self.assertEqual(self.closes(d), [])

    def test_old_spelling_true_is_close(self):
        d = self.journal_echod("log_connections = true\n")
        clean, rst = self.run_mix(d)
        self.assertEqual(d.journal.select(MESSAGE_ID=MID_OPEN), [])
        self.assertEqual(sorted(r["REMOTE_PORT"] for r in self.closes(d)), sorted([str(clean), str(rst)]))

    def test_a_report_claiming_another_pid_is_ignored(self):
        so = shim("forgereport")
        if not os.path.exists(so):
            self.fail("%s is missing (built by tests/shim)" % so)
        env = {"LD_PRELOAD": so,
               "ASAN_OPTIONS": (os.environ.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0").lstrip(":")}
        d = self.journal_echod(env=env)
        victim = connect(d.port)
        self.addCleanup(victim.close)
        victim.sendall(b"aaa")
        self.assertEqual(read_exactly(victim, 3), b"aaa")
        (victim_pid,) = d.wait_until_workers(1)
        with connect(d.port) as liar:
            liar.sendall(b"bbbbb")
            self.assertEqual(read_exactly(liar, 5), b"bbbbb")
            liar_pid = [p for p in d.wait_until_workers(2) if p != victim_pid][0]
            liar_port = liar.getsockname()[1]
            liar.shutdown(socket.SHUT_WR)
            self.assertEqual(recv_all(liar), b"")
        # The liar's own record is true; it tried both forgeries.
        (r,) = d.journal.wait(MESSAGE_ID=MID_CLOSE, REMOTE_PORT=str(liar_port))
        self.assertEqual((r["WORKER_PID"], r["CLOSE_REASON"], r["BYTES"]), (str(liar_pid), "eof", "5"))
        d.wait_log(r"forgereport: the kernel refused a report claiming pid %d: Operation not permitted" % victim_pid)
        # The victim is still served, and its record says what it did.
        victim.sendall(b"a")
        self.assertEqual(read_exactly(victim, 1), b"a")
        victim.shutdown(socket.SHUT_WR)
        self.assertEqual(recv_all(victim), b"")
        status = self.fence(d)
        (r,) = d.journal.select(MESSAGE_ID=MID_CLOSE, WORKER_PID=str(victim_pid))
        self.assertEqual((r["CLOSE_REASON"], r["BYTES"]), ("eof", "4"))
        self.assertNotIn("ERRNO", r)
        self.assertEqual(status["REPORTS_IGNORED"], "1")
        self.assertEqual(len(self.closes(d)), 2)

    def burst(self, port, n, threads=8, payload=b"burst"):
        """n connections from threads clients at once; returns (served, failures)."""
        lock = threading.Lock()
        state = {"left": n, "served": 0, "failed": []}

        def run():
            while True:
                with lock:
                    if state["left"] == 0:
                        return
                    state["left"] -= 1
                try:
                    got = echo(port, payload)
                except OSError as e:
                    got = e
                with lock:
                    if got == payload:
                        state["served"] += 1
                    else:
                        state["failed"].append(got)
        ts = [threading.Thread(target=run) for _ in range(threads)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        return state["served"], state["failed"]

    def accounted(self, d):
        """(connections, bytes) in close records plus the summaries."""
        recs = self.closes(d)
        sums = d.journal.select(MESSAGE_ID=MID_SUMMARY)
        return (len(recs) + sum(int(s["CONNECTIONS"]) for s in sums),
                sum(int(r["BYTES"]) for r in recs) + sum(int(s["BYTES"]) for s in sums))

    def test_budget_and_summary_under_a_2000_connection_burst(self):
        d = self.journal_echod("log_rate = 50\nlog_rate_burst = 100\n")
        start = time.monotonic()
        served, failed = self.burst(d.port, 2000)
        elapsed = time.monotonic() - start
        self.assertEqual((served, failed), (2000, []))
        # The summary comes within 10 s of the first connection it holds.
        (s,) = d.journal.wait(MESSAGE_ID=MID_SUMMARY, timeout=TIMEOUT)[:1]
        self.assertGreater(int(s["CONNECTIONS"]), 0)
        self.assertEqual(int(s["UNLOGGED_EOF"]), int(s["CONNECTIONS"]))
        self.assertIn("ended without a record of their own", s["MESSAGE"])
        # The rest at the stop, after the drain.
        self.assertEqual(d.stop(), 0)
        d.journal.wait(MESSAGE_ID=MID_STOPPED)
        self.assertEqual(self.accounted(d), (2000, 2000 * 5))
        records = len(self.closes(d))
        self.assertGreater(records, 0)
        self.assertLessEqual(records, 100 + 50 * (elapsed + 1))

    def stuck_journal_echod(self):
        return self.echod("max_connections_per_source = 0\nrate_limit = 0\nrate_limit_per_source = 0\n"
                          "log_rate = 0\n", journal="stuck")

    def test_a_slow_journal_delays_records_never_accepts_or_loses_them(self):
        d = self.stuck_journal_echod()
        served, failed = self.burst(d.port, 300)
        self.assertEqual((served, failed), (300, []))
        d.wait_workers(0)
        # Nothing was read: the socket holds net.unix.max_dgram_qlen records
        # and the master queues the rest; as the journal reads, they follow.
        d.journal.start_reading()
        self.assertEqual(len(d.journal.wait(count=300, MESSAGE_ID=MID_CLOSE)), 300)
        d.kill(signal.SIGUSR1)
        (status,) = d.journal.wait(MESSAGE_ID=MID_STATUS)
        self.assertEqual(status["LOG_DROPPED"], "0")
        self.assertEqual(status["SERVED"], "300")
        self.assertEqual(d.stop(), 0)
        d.journal.wait(MESSAGE_ID=MID_STOPPED)
        self.assertEqual(self.accounted(d), (300, 300 * 5))
        self.assertEqual(d.journal.select(MESSAGE_ID=MID_SUMMARY), [])

    def test_a_stuck_journal_costs_records_not_accepts(self):
        # Past the queue's bound (4,096 records), records are dropped and
        # counted; the connections are still served and summarised.
        n = 4600
        d = self.stuck_journal_echod()
        served, failed = self.burst(d.port, n)
        self.assertEqual((served, failed), (n, []))
        d.wait_workers(0)
        d.journal.start_reading()
        d.kill(signal.SIGUSR1)
        (status,) = d.journal.wait(MESSAGE_ID=MID_STATUS)
        with open("/proc/sys/net/unix/max_dgram_qlen") as f:
            qlen = int(f.read())
        self.assertGreaterEqual(int(status["LOG_DROPPED"]), n - 4096 - qlen - 1)
        self.assertEqual(status["SERVED"], str(n))
        self.assertEqual(d.stop(), 0)
        d.journal.wait(MESSAGE_ID=MID_STOPPED)
        self.assertEqual(self.accounted(d), (n, n * 5))

    def test_16_clients_from_one_address_are_never_refused(self):
        # Each worker gives its slot back as it exits: 16 clients looping
        # never hold more than 32 at once.
        d = self.echod("max_connections_per_source = 32\nrate_limit = 0\nrate_limit_per_source = 0\n",
                       journal="reading")
        served, failed = self.burst(d.port, 16 * 60, threads=16)
        status = self.fence(d)
        self.assertEqual((served, failed), (16 * 60, []), status)
        self.assertEqual(status["REFUSED_PER_SOURCE"], "0")
        self.assertEqual(status["SERVED"], str(16 * 60))


if __name__ == "__main__":
    main()
