# SPDX-License-Identifier: MIT
"""Resource exhaustion: the master out of descriptors (EMFILE), out of
processes (fork() failing with EAGAIN, through an LD_PRELOAD shim), and a
flood of connections far past max_connections. The master must not spin,
must log rate-limited with counts, must keep serving, and must leak
nothing."""
import os
import re
import resource
import select
import shutil
import socket
import subprocess
import tempfile
import time
import unittest

from echodtest import (Echod, EchodTestCase, connect, cpu_seconds, echo, is_refused,
                       keep_draining, main, open_fds, read_exactly, recv_all, rss_kib, try_echo,
                       shim, wait_until)



def proc_ids(pid):
    """(uid, gid) pid runs as."""
    ids = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(("Uid:", "Gid:")):
                ids[line[0]] = int(line.split()[1])
    return ids["U"], ids["G"]


def set_nofile(pid, soft, hard=None):
    """prlimit(RLIMIT_NOFILE) on a running echod. Started as root it runs as
    nobody, and without CAP_SYS_RESOURCE (containers) only its own user may
    change its limits: do it as that user."""
    uid, gid = proc_ids(pid)
    if uid == os.getuid():
        hard = hard or resource.prlimit(pid, resource.RLIMIT_NOFILE)[1]
        resource.prlimit(pid, resource.RLIMIT_NOFILE, (soft, hard))
        return
    prlimit = shutil.which("prlimit")
    if not prlimit:
        raise unittest.SkipTest("echod runs as uid %d and prlimit(1) is missing" % uid)
    subprocess.run([prlimit, "--pid", str(pid), "--nofile=%d:%s" % (soft, hard or "")],
                   check=True, user=uid, group=gid, extra_groups=[])


def failfork_shim(tmpdir):
    """The fork-failing shim, or the one $FAILFORK_SO names."""
    return os.environ.get("FAILFORK_SO") or shim("failfork", tmpdir)


def preload_env(shim, **extra):
    env = {"LD_PRELOAD": shim}
    # An ASan build insists on coming first in the library list.
    asan = os.environ.get("ASAN_OPTIONS", "")
    env["ASAN_OPTIONS"] = (asan + ":" if asan else "") + "verify_asan_link_order=0"
    env.update(extra)
    return env


class DescriptorsTest(EchodTestCase):
    def test_out_of_descriptors_backs_off_and_recovers(self):
        d = self.echod("max_connections_per_source = 0\n")
        keep_draining(self, d)
        self.assertEqual(echo(d.port, b"warm"), b"warm")
        d.wait_workers(0)
        fds = open_fds(d.pid)
        lowest_free = next(i for i in range(len(fds) + 1) if i not in fds)
        # The next descriptor the master opens is past its limit: accept() fails with EMFILE.
        set_nofile(d.pid, lowest_free)
        clients = []
        try:
            for i in range(20):
                s = connect(d.port)             # completes in the kernel's backlog
                s.sendall(b"queued %d\n" % i)
                clients.append(s)
            d.wait_log(r"cannot accept connections: Too many open files")
            cpu0, t0 = cpu_seconds(d.pid), time.monotonic()
            # Observe the master for a fixed window while every accept() fails.
            time.sleep(3)
            cpu = cpu_seconds(d.pid) - cpu0
            window = time.monotonic() - t0
            print("\nmaster CPU while out of descriptors: %.2f s in %.1f s" % (cpu, window))
            # A busy loop would burn the whole window; backing off 100 ms costs almost nothing.
            self.assertLess(cpu, 0.1 * window)
            lines = re.findall(r"cannot accept connections: Too many open files; not accepting for 100 ms "
                               r"\((\d+) similar errors since the last message\)", d.read_log())
            # Rate-limited: about one line a second, each with the count it stands for.
            self.assertGreaterEqual(len(lines), 2)
            self.assertLessEqual(len(lines), int(window) + 2)
            self.assertGreater(max(int(n) for n in lines), 3)
            self.assertEqual(d.workers(), [])
        finally:
            set_nofile(d.pid, 1024)
        # Descriptors are back: everything that waited in the backlog is served.
        for i, s in enumerate(clients):
            self.assertEqual(read_exactly(s, len(b"queued %d\n" % i)), b"queued %d\n" % i)
            s.shutdown(socket.SHUT_WR)
            self.assertEqual(recv_all(s), b"")
            s.close()
        d.wait_workers(0)
        self.assertEqual(open_fds(d.pid), fds)
        self.assertEqual(echo(d.port, b"after"), b"after")
        # A clean stop: exit 0 (under ASan/LSan also: no errors, no leaks).
        self.assertEqual(d.stop(), 0)


    def test_started_with_a_tiny_rlimit_nofile(self):
        prlimit = shutil.which("prlimit")
        if not prlimit:
            self.skipTest("no prlimit(1)")

        class Limited(Echod):
            def start(self, wait_ready=True, prefix=()):
                # stdio, listener, the signalfds of control signals and of
                # workers' exits, epoll, both ends of the report socket,
                # one connection at a time.
                return super().start(wait_ready, prefix=[prlimit, "--nofile=10:1024"])
        d = Limited("max_connections_per_source = 0\n")
        self.addCleanup(d.close)
        d.wait_log(r"RLIMIT_NOFILE is 10, too low: raise it to at least 17 \(LimitNOFILE=\)")
        with open("/proc/%d/limits" % d.pid) as f:
            self.assertRegex(f.read(), r"Max open files\s+10\s+1024")
        # The master holds no connection: it serves with 10 descriptors.
        for i in range(20):
            self.assertEqual(echo(d.port, b"tiny %d" % i), b"tiny %d" % i)
        d.wait_workers(0)


class ProcessesTest(EchodTestCase):
    def setUp(self):
        self.shimdir = tempfile.mkdtemp(prefix="echod-shim-")
        self.addCleanup(shutil.rmtree, self.shimdir, True)
        self.shim = failfork_shim(self.shimdir)

    def test_every_third_fork_fails(self):
        d = self.echod("max_connections_per_source = 0\n",
                       env=preload_env(self.shim, FAILFORK_EVERY="3"))
        keep_draining(self, d)
        fds = open_fds(d.pid)
        served = refused = 0
        for i in range(30):
            got = try_echo(d.port, b"n%d" % i)
            if got is None:
                refused += 1
            else:
                self.assertEqual(got, b"n%d" % i)
                served += 1
        self.assertEqual((served, refused), (20, 10))
        d.wait_log(r"cannot fork a worker, closing the connection: Resource temporarily unavailable; "
                   r"not accepting for 100 ms")
        d.wait_workers(0)
        self.assertEqual(d.zombies(), [])
        self.assertEqual(open_fds(d.pid), fds)
        # A clean stop: exit 0 (under ASan/LSan also: no errors, no leaks).
        self.assertEqual(d.stop(), 0)

    def test_fork_failing_for_a_while(self):
        flag = os.path.join(self.shimdir, "fail")
        os.chmod(self.shimdir, 0o755)           # echod runs as nobody
        d = self.echod("max_connections_per_source = 3\n",
                       env=preload_env(self.shim, FAILFORK_FILE=flag))
        keep_draining(self, d)
        fds = open_fds(d.pid)
        open(flag, "w").close()
        cpu0, t0 = cpu_seconds(d.pid), time.monotonic()
        # Keep knocking for 2 s: every connection is closed, none is served.
        knocks = 0
        while time.monotonic() - t0 < 2:
            with connect(d.port) as s:
                self.assertTrue(is_refused(s))
            knocks += 1
        cpu = cpu_seconds(d.pid) - cpu0
        window = time.monotonic() - t0
        print("\n%d connections while fork() fails: master CPU %.2f s in %.1f s" % (knocks, cpu, window))
        self.assertLess(cpu, 0.25 * window)
        lines = d.log_count(r"cannot fork a worker, closing the connection")
        self.assertGreaterEqual(lines, 1)
        self.assertLessEqual(lines, int(window) + 2)
        self.assertEqual(d.workers(), [])
        os.unlink(flag)
        # Nothing was left counted against the source: 3 are served again.
        held = []
        for _ in range(3):
            s = connect(d.port)
            s.sendall(b"+")
            self.assertEqual(read_exactly(s, 1), b"+")
            held.append(s)
        with connect(d.port) as extra:
            self.assertTrue(is_refused(extra))
        for s in held:
            s.close()
        d.wait_workers(0)
        self.assertEqual(d.zombies(), [])
        self.assertEqual(open_fds(d.pid), fds)
        # A clean stop: exit 0 (under ASan/LSan also: no errors, no leaks).
        self.assertEqual(d.stop(), 0)


class NotifyQueueTest(EchodTestCase):
    def test_full_notify_queue_does_not_stall_the_master(self):
        # A service manager that stops reading: its queue stays full
        # (net.unix.max_dgram_qlen). Found by the soak: sd_notify() blocked
        # the master there, with exited workers left as zombies.
        d = self.echod("max_connections_per_source = 0\nrate_limit_per_source = 0\n")
        filler = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.addCleanup(filler.close)
        filler.setblocking(False)
        for _ in range(100000):
            try:
                filler.sendto(b"X_FILLER=1", d.notify_path)
            except BlockingIOError:
                break
        else:
            self.skipTest("could not fill the notify queue")
        cpu0, t0, n = cpu_seconds(d.pid), time.monotonic(), 0
        while time.monotonic() - t0 < 3:        # STATUS= is due every second meanwhile
            self.assertEqual(echo(d.port, b"q%d" % n, timeout=5), b"q%d" % n)
            n += 1
        d.wait_workers(0)
        self.assertEqual(d.zombies(), [])
        # Once the manager reads again, echod's messages arrive again.
        d._drain_notify()
        mark = len(d.notifications)
        self.assertEqual(echo(d.port, b"last"), b"last")
        wait_until(lambda: (d._drain_notify(), any(m.startswith("STATUS=")
                                                     for m in d.notifications[mark:]))[1],
                   what="a STATUS= after the queue drained")
        print("\n%d sessions served in 3 s with the notify queue full" % n)
        self.assertEqual(d.stop(), 0)

class FloodTest(EchodTestCase):
    def test_2000_connections_against_max_100(self):
        total, limit, payload_len = 2000, 100, 1000
        d = self.echod("max_connections = %d\nmax_connections_per_source = 0\nrate_limit_per_source = 0\n" % limit)
        keep_draining(self, d)
        # Warm up: the tables reach the size they will have during the flood.
        warm = []
        for _ in range(limit):
            s = connect(d.port)
            s.sendall(b"w")
            read_exactly(s, 1)
            warm.append(s)
        for s in warm:
            s.close()
        d.wait_workers(0)
        fds0, rss0 = open_fds(d.pid), rss_kib(d.pid)
        log0 = d.read_log()

        ep = select.epoll()
        socks, state, got = {}, {}, {}
        start = time.monotonic()
        for i in range(total):
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", d.port))
            socks[s.fileno()] = s
            state[s.fileno()] = "connecting"
            got[s.fileno()] = bytearray()
            ep.register(s.fileno(), select.EPOLLOUT)
        payload = {fd: (b"%08d" % fd) * (payload_len // 8) for fd in socks}
        pending = total
        deadline = time.monotonic() + 120
        while pending and time.monotonic() < deadline:
            for fd, ev in ep.poll(1):
                s = socks[fd]
                if state[fd] == "connecting":
                    err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if err:
                        state[fd] = "error %d" % err
                        ep.unregister(fd)
                        pending -= 1
                        continue
                    try:
                        s.send(payload[fd])     # 1000 bytes always fit
                    except OSError:
                        pass
                    state[fd] = "sent"
                    ep.modify(fd, select.EPOLLIN)
                    continue
                try:
                    b = s.recv(65536)
                except OSError:
                    b = b""
                if not b:
                    state[fd] = "refused"
                    ep.unregister(fd)
                    pending -= 1
                    continue
                got[fd] += b
                if len(got[fd]) >= payload_len:
                    state[fd] = "served"     # held open until the end
                    ep.unregister(fd)
                    pending -= 1
        elapsed = time.monotonic() - start
        ep.close()
        self.assertEqual(pending, 0, "clients still waiting after 120 s")
        served = [fd for fd in socks if state[fd] == "served"]
        refused = [fd for fd in socks if state[fd] == "refused"]
        others = [state[fd] for fd in socks if state[fd] not in ("served", "refused")]
        print("\nflood: %d served, %d refused in %.1f s" % (len(served), len(refused), elapsed))
        self.assertEqual(others, [])
        self.assertEqual(len(served), limit)
        self.assertEqual(len(refused), total - limit)
        for fd in served:
            self.assertEqual(bytes(got[fd]), payload[fd])
        for s in socks.values():
            s.close()
        d.wait_workers(0, timeout=60)

        # Every refusal is accounted for in a handful of lines: individual
        # lines plus the counts of those held back. All are for
        # max_connections, unless a fork failed on a loaded machine: that
        # one is refused too, and counted as refused-resources.
        reasons = {r"max_connections \(%d\) reached" % limit: "refused-limit",
                   r"cannot fork a worker": "refused-resources"}

        def refusals_logged():
            text = d.read_log()[len(log0):]
            counts, lines = {}, 0
            for m in re.finditer(r"^echod: refused connection from [^:]+:\d+: (.*?), closing it"
                                 r"(?: \((\d+) similar refusals not logged in the last second\))?$", text, re.M):
                why = next((r for rx, r in reasons.items() if re.fullmatch(rx, m.group(1))), m.group(1))
                counts[why] = counts.get(why, 0) + 1 + int(m.group(2) or 0)
                lines += 1
            for m in re.finditer(r"^echod: (\d+) more connections refused \((refused-[a-z-]+)\)", text, re.M):
                counts[m.group(2)] = counts.get(m.group(2), 0) + int(m.group(1))
                lines += 1
            return lines, counts, text

        def all_counted():
            r = refusals_logged()
            return r if sum(r[1].values()) == total - limit else None
        try:
            lines, counts, _ = wait_until(all_counted, what="refusals of the flood all counted in the log")
        except AssertionError:
            lines, counts, text = refusals_logged()
            raise AssertionError("the log counts %s refusals, not %d:\n%s"
                                 % (counts, total - limit,
                                    "\n".join(l for l in text.splitlines() if "refused" in l or "fork" in l)))
        print("flood: refusals logged %s in %d lines" % (counts, lines))
        self.assertLessEqual(set(counts), set(reasons.values()))
        self.assertLessEqual(lines, 2 * (int(elapsed) + 2))

        # The master is back where it started.
        self.assertEqual(open_fds(d.pid), fds0)
        rss1 = rss_kib(d.pid)
        print("flood: master RSS %d KiB before, %d KiB after" % (rss0, rss1))
        self.assertLessEqual(rss1, rss0 + 256)
        self.assertEqual(echo(d.port, b"still serving"), b"still serving")
        # A clean stop: exit 0 (under ASan/LSan also: no errors, no leaks).
        self.assertEqual(d.stop(), 0)


if __name__ == "__main__":
    main()
