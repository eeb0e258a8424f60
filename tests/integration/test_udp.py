# SPDX-License-Identifier: MIT
"""UDP echo (listen_udp): round trips, the reply's source address, every
drop reason, the rate limits, the UDP worker's restart and replacement,
socket activation.

The cases that need addresses loopback cannot have (a wildcard listener
with two addresses, spoofed sources, a subnet broadcast) run in a network
namespace the test creates (`ip netns`) with a veth pair, and deleted
after. Whether a datagram was dropped is never read from a silence: a
datagram that must be answered is sent after the ones that must not, on
the same socket queue, and once its reply is in, the counters of the
status record say what became of each one before it."""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import unittest

from echodtest import EchodTestCase, TIMEOUT, cmdline, free_port, have_ipv6, main, proc_state, wait_until

MID_STATUS = "466d07f2ce9e45dd9d2f5d5ad69848da"
MID_UDP_SUMMARY = "0d6b3f5e8a2c4f19b7e4c1a93d58f2a6"

# Runs inside the namespace: one action, its result as JSON on stdout.
NS_HELPER = r'''
import json, socket, struct, sys
a = json.loads(sys.argv[1])
out = {}
if a["op"] == "echo":
    fam = socket.AF_INET6 if ":" in a["dst"] else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((a["src"], a.get("sport", 0)))
    s.settimeout(a.get("timeout", 20))
    s.sendto(bytes.fromhex(a["data"]), (a["dst"], a["port"]))
    if a.get("wait", True):
        data, peer = s.recvfrom(70000)
        out = {"data": data.hex(), "from": peer[0], "port": peer[1]}
elif a["op"] == "raw":
    # A UDP datagram with any source, written whole (IP_HDRINCL): the
    # kernel fills in the IP checksum; a UDP checksum of 0 means none.
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    data = bytes.fromhex(a["data"])
    udp = struct.pack("!HHHH", a["sport"], a["port"], 8 + len(data), 0) + data
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0,
                     socket.inet_aton(a["src"]), socket.inet_aton(a["dst"]))
    s.sendto(ip + udp, (a["dst"], 0))
elif a["op"] == "broadcast":
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    s.bind((a["src"], 0))
    s.sendto(b"broadcast", (a["dst"], a["port"]))
print(json.dumps(out))
'''


def udp_queued(port):
    """Bytes waiting in the receive queues of the UDP sockets on port (this namespace)."""
    total = 0
    for name in ("/proc/net/udp", "/proc/net/udp6"):
        with open(name) as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                if int(fields[1].rsplit(":", 1)[1], 16) == port:
                    total += int(fields[4].split(":")[1], 16)
    return total


def drain(s):
    """Reads every datagram waiting in s and returns how many; s is left non-blocking."""
    s.setblocking(False)
    n = 0
    while True:
        try:
            s.recv(100)
            n += 1
        except BlockingIOError:
            return n


class UdpTestCase(EchodTestCase):
    def start(self, config="", udp=None, **kwargs):
        self.uport = free_port() if udp is None else None
        listen_udp = udp or ['[::]:%d' % self.uport]
        d = self.echod('listen_udp = { %s }\n' % ", ".join('"%s"' % a for a in listen_udp) + config,
                       journal="reading", **kwargs)
        return d

    def udp_worker(self, d):
        return wait_until(lambda: next((p for p in d.workers() if cmdline(p).startswith("echod: udp")), None),
                          what="the UDP worker")

    def status(self, d):
        n = len(d.journal.select(MESSAGE_ID=MID_STATUS))
        d.kill(signal.SIGUSR1)
        return d.journal.wait(count=n + 1, MESSAGE_ID=MID_STATUS)[n]

    def wait_record(self, d, pattern, count=1):
        rx = re.compile(pattern)
        return wait_until(lambda: (lambda rs: rs if len(rs) >= count else None)(
            [r for r in d.journal.select() if rx.search(r.get("MESSAGE", ""))]),
            what="a record /%s/" % pattern)

    def echo(self, data, host="127.0.0.1", port=None, family=socket.AF_INET, source=(None, 0), timeout=TIMEOUT):
        with socket.socket(family, socket.SOCK_DGRAM) as s:
            s.settimeout(timeout)
            if source[0]:
                s.bind(source)
            s.sendto(data, (host, port or self.uport))
            got, peer = s.recvfrom(70000)
            return got, peer


class LoopbackTest(UdpTestCase):
    def test_round_trip_v4_and_v6(self):
        d = self.start()
        got, peer = self.echo(b"hello v4")
        self.assertEqual((got, peer[0], peer[1]), (b"hello v4", "127.0.0.1", self.uport))
        big = os.urandom(65507)
        self.assertEqual(self.echo(big)[0], big)
        if have_ipv6():
            got, peer = self.echo(b"hello v6", "::1", family=socket.AF_INET6)
            self.assertEqual((got, peer[0], peer[1]), (b"hello v6", "::1", self.uport))
            big6 = os.urandom(65527)
            self.assertEqual(self.echo(big6, "::1", family=socket.AF_INET6)[0], big6)
        self.assertEqual(self.echo(b"")[0], b"")

        started = self.wait_record(d, r"started, serving RFC 862 echo on")[0]
        self.assertIn("udp:[::]:%d" % self.uport, started["LISTEN"].split())
        # One long-lived, unprivileged process, and not a connection.
        w = self.udp_worker(d)
        self.assertEqual(cmdline(w), "echod: udp [::]:%d" % self.uport)
        with open("/proc/%d/status" % w) as f:
            status = f.read()
        self.assertRegex(status, r"CapEff:\s+0+\n")
        self.assertNotRegex(status, r"Uid:\s+0\s")
        rec = self.status(d)
        self.assertEqual(rec["ACTIVE"], "0")
        self.assertEqual(rec["SERVED"], "0")
        self.assertEqual(rec["UDP_ECHOED"], rec["UDP_RECEIVED"])
        self.assertGreaterEqual(int(rec["UDP_ECHOED"]), 3)
        self.assertIn("; udp %s received" % rec["UDP_RECEIVED"], rec["MESSAGE"])
        d.wait_notify("STATUS=0 active, 0 served, 0 refused; udp %s received, %s echoed, 0 dropped"
                      % (rec["UDP_RECEIVED"], rec["UDP_ECHOED"]))
        # No record per datagram; the summary waits for its minute.
        self.assertEqual(d.journal.select(MESSAGE_ID=MID_UDP_SUMMARY), [])
        self.assertEqual(d.stop(), 0, d.read_log())
        # At exit, the traffic since the last summary is summed up.
        summary = d.journal.wait(MESSAGE_ID=MID_UDP_SUMMARY)[0]
        self.assertEqual(summary["UDP_RECEIVED"], rec["UDP_RECEIVED"])

    def test_rate_limit_per_source(self):
        d = self.start("udp_rate_limit_per_source = 1\nudp_rate_limit_per_source_burst = 5\n"
                       "udp_deny_source_ports = { \"0-1023\" }\n")
        sent, start = 40, time.monotonic()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            for i in range(sent):
                s.sendto(b"%d" % i, ("127.0.0.1", self.uport))
            # Another source is still served; its reply also means every
            # datagram of the first was decided (one socket queue, in order).
            self.assertEqual(self.echo(b"other", source=("127.0.0.2", 0))[0], b"other")
            elapsed = time.monotonic() - start
            replies = drain(s)
        self.assertGreaterEqual(replies, 5)
        self.assertLessEqual(replies, 5 + int(elapsed) + 1)
        rec = self.status(d)
        self.assertEqual(int(rec["UDP_DROPPED_PER_SOURCE_RATE"]), sent - replies)
        self.assertEqual(rec["UDP_DROPPED_RATE"], "0")

    def test_rate_limit_global_and_bytes(self):
        d = self.start("udp_rate_limit = 1\nudp_rate_limit_burst = 10\nudp_rate_limit_per_source = 0\n")
        start = time.monotonic()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            for i in range(30):
                s.sendto(b"%d" % i, ("127.0.0.1", self.uport))
            s.settimeout(TIMEOUT)
            # The datagrams are decided in order: count replies until the
            # counters say all 30 were taken.
            wait_until(lambda: int(self.status(d)["UDP_RECEIVED"]) >= 30, what="30 datagrams received")
            elapsed = time.monotonic() - start
            replies = drain(s)
        rec = self.status(d)
        self.assertLessEqual(replies, 10 + int(elapsed) + 1)
        self.assertEqual(int(rec["UDP_ECHOED"]), replies)
        self.assertEqual(int(rec["UDP_DROPPED_RATE"]), 30 - replies)

        d.write_config('listen_udp = { "[::]:%d" }\nudp_rate_limit = 0\nudp_max_bytes_per_second = 2K\n' % self.uport)
        d.reload()
        start = time.monotonic()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            for i in range(10):
                s.sendto(b"%d" % i * 1000, ("127.0.0.1", self.uport))
            before = int(rec["UDP_RECEIVED"])
            wait_until(lambda: int(self.status(d)["UDP_RECEIVED"]) >= before + 10, what="10 more datagrams")
            elapsed = time.monotonic() - start
        rec2 = self.status(d)
        echoed = int(rec2["UDP_ECHOED"]) - int(rec["UDP_ECHOED"])
        self.assertGreaterEqual(echoed, 2)
        self.assertLessEqual(echoed, 2 + 2 * (int(elapsed) + 1))
        self.assertEqual(int(rec2["UDP_DROPPED_BYTES"]), 10 - echoed)

    def test_access_list(self):
        d = self.start('deny = { "127.0.0.2" }\n')
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.2", 0))
            s.sendto(b"denied", ("127.0.0.1", self.uport))
        self.assertEqual(self.echo(b"allowed")[0], b"allowed")
        rec = self.status(d)
        self.assertEqual(rec["UDP_DROPPED_ACCESS"], "1")

    def test_empty_deny_list_is_warned_about(self):
        d = self.start("udp_deny_source_ports = { }\n")
        self.wait_record(d, r"udp_deny_source_ports is empty")
        d.reload()
        self.wait_record(d, r"udp_deny_source_ports is empty", count=2)

    def test_worker_killed_is_restarted(self):
        d = self.start()
        self.assertEqual(self.echo(b"before")[0], b"before")
        w = self.udp_worker(d)
        os.kill(w, signal.SIGKILL)
        killed = time.monotonic()
        # Sent while no worker runs: it waits in the socket for the next one.
        got, _ = self.echo(b"after", timeout=5)
        self.assertEqual(got, b"after")
        self.assertLess(time.monotonic() - killed, 2.0)
        self.assertNotEqual(self.udp_worker(d), w)
        self.wait_record(d, r"UDP worker %d was killed by signal 9 \(Killed\); restarting it in 1s" % w)
        self.assertEqual(self.status(d)["UDP_WORKER_RESTARTS"], "1")

    def test_reload_keeps_queued_datagram(self):
        d = self.start()
        self.assertEqual(self.echo(b"first")[0], b"first")
        w = self.udp_worker(d)
        # A worker that reads nothing, so the datagram stays queued.
        os.kill(w, signal.SIGSTOP)
        wait_until(lambda: proc_state(w) == "T", what="the UDP worker stopped")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(TIMEOUT)
            s.sendto(b"queued", ("127.0.0.1", self.uport))
            wait_until(lambda: udp_queued(self.uport) > 0, what="the datagram queued")
            # New UDP settings: the worker is replaced, the socket kept.
            d.write_config('listen_udp = { "[::]:%d" }\nudp_rate_limit = 5000\n' % self.uport)
            d.reload()
            self.wait_record(d, r"UDP worker replaced, its sockets kept")
            self.assertEqual(s.recv(100), b"queued")
        self.assertNotEqual(self.udp_worker(d), w)
        self.assertEqual(proc_state(w), None)
        # A reload that changes nothing for UDP keeps the worker.
        w2 = self.udp_worker(d)
        d.write_config('listen_udp = { "[::]:%d" }\nudp_rate_limit = 5000\nmax_connections = 7\n' % self.uport)
        d.reload()
        self.assertEqual(self.udp_worker(d), w2)
        self.assertEqual(self.echo(b"still")[0], b"still")

    def test_reload_adds_and_removes_udp_listeners(self):
        d = self.start()
        other = free_port()
        d.write_config('listen_udp = { "127.0.0.1:%d" }\n' % other)
        d.reload()
        self.assertEqual(self.echo(b"new", port=other)[0], b"new")
        self.assertEqual(cmdline(self.udp_worker(d)), "echod: udp 127.0.0.1:%d" % other)
        d.write_config("")
        d.reload()
        wait_until(lambda: not d.workers(), what="no UDP worker without UDP listeners")

    def test_stop_ends_worker_at_once(self):
        d = self.start()
        self.assertEqual(self.echo(b"x")[0], b"x")
        w = self.udp_worker(d)
        self.assertEqual(d.stop(), 0, d.read_log())
        self.assertIsNone(proc_state(w))

    def test_socket_activation(self):
        self.require_socket_activate()
        port = free_port()
        d = self.echod("", wait_ready=False, journal="reading")
        d.write_config('listen_udp = { "127.0.0.1:%d" }\n' % free_port())
        d.start_activated(["127.0.0.1:%d" % port], ["--datagram"], ["ECHOD_JOURNAL_SOCKET=" + d.journal.path])
        # systemd-socket-activate starts echod on the first datagram, which waits for it.
        self.assertEqual(self.echo(b"activated", port=port)[0], b"activated")
        d.wait_notify("READY=1")
        self.assertEqual(self.echo(b"again", port=port)[0], b"again")
        self.wait_record(d, r"using UDP socket 127\.0\.0\.1:%d passed by systemd" % port)
        self.wait_record(d, r"socket activated: the 'listen_udp' setting in .* is ignored")


ECHOC = os.environ.get("ECHOC", "")


class EchocTest(UdpTestCase):
    def echoc(self, args, data=b""):
        if not ECHOC:
            self.fail("ECHOC is not set (meson test sets it)")
        return subprocess.run([ECHOC] + [str(a) for a in args], input=data, capture_output=True, timeout=TIMEOUT + 30)

    def test_lines(self):
        self.start()
        r = self.echoc(["-u", "127.0.0.1", self.uport], b"one\ntwo\n")
        self.assertEqual((r.returncode, r.stdout), (0, b"one\ntwo\n"), r.stderr)
        if have_ipv6():
            r = self.echoc(["-u", "-6", "::1", self.uport], b"six\n")
            self.assertEqual((r.returncode, r.stdout), (0, b"six\n"), r.stderr)

    def test_lost_lines_fail(self):
        # echoc's port is the kernel's pick: a deny list of every port
        # makes echod drop each of its datagrams.
        d = self.start('udp_deny_source_ports = { "0-65535" }\n')
        r = self.echoc(["-u", "--retries", "2", "--timeout", "0.2", "127.0.0.1", self.uport], b"lost\n")
        self.assertEqual(r.returncode, 4, r.stderr)
        self.assertIn(b"after 3 attempts", r.stderr)
        self.assertEqual(self.status(d)["UDP_DROPPED_SOURCE_PORT"], "3")

    def test_bench(self):
        self.start("udp_rate_limit_per_source = 0\nudp_rate_limit = 0\nudp_max_bytes_per_second = 0\n")
        r = self.echoc(["--bench", "udp", "--concurrency", 8, "--size", 1400, "--requests", 2000, "--json",
                        "127.0.0.1", self.uport])
        self.assertEqual(r.returncode, 0, r.stderr)
        res = json.loads(r.stdout)
        self.assertEqual(res["mode"], "udp")
        self.assertEqual(res["errors"]["total"], 0)
        self.assertGreaterEqual(res["received"] + res["lost"], 2000)
        self.assertGreater(res["datagrams_per_s"], 0)
        self.assertGreaterEqual(res["latency_us"]["p99"], res["latency_us"]["p50"])


class NamespaceTest(UdpTestCase):
    """In a network namespace of the test's own: veth v0 with 10.77.0.1/24,
    10.77.0.2/24, 2001:db8:77::1/64 and 2001:db8:77::2/64, and lo."""

    def setUp(self):
        if os.geteuid() != 0 or not shutil_which("ip"):
            if os.environ.get("CI") == "true":
                self.fail("needs root and ip(8) for a network namespace")
            raise unittest.SkipTest("needs root and ip(8) for a network namespace")
        self.ns = "echod-udp-%d" % os.getpid()
        subprocess.run(["ip", "netns", "add", self.ns], check=True)
        self.addCleanup(subprocess.run, ["ip", "netns", "delete", self.ns])
        for cmd in ("ip link set lo up", "ip link add v0 type veth peer name v1",
                    "ip addr add 10.77.0.1/24 dev v0", "ip addr add 10.77.0.2/24 dev v0",
                    "ip addr add 2001:db8:77::1/64 dev v0 nodad", "ip addr add 2001:db8:77::2/64 dev v0 nodad",
                    "ip link set v1 up", "ip link set v0 up"):
            subprocess.run(["ip", "netns", "exec", self.ns] + cmd.split(), check=True)
        self.uport = 7007
        self.d = self.echod('listen_udp = { "[::]:7007" }\n', listen=["127.0.0.1:7007"], port=7007,
                            journal="reading", prefix=["ip", "netns", "exec", self.ns])

    def run_ns(self, **action):
        action.setdefault("port", self.uport)
        if "data" in action:
            action["data"] = action["data"].hex()
        r = subprocess.run(["ip", "netns", "exec", self.ns, sys.executable, "-c", NS_HELPER, json.dumps(action)],
                           capture_output=True, text=True, timeout=TIMEOUT + 10)
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)

    def control(self):
        """A datagram that must come back: once it has, every one sent
        before it was decided."""
        r = self.run_ns(op="echo", src="10.77.0.1", dst="10.77.0.1", data=b"control")
        self.assertEqual(bytes.fromhex(r["data"]), b"control")

    def test_reply_from_the_address_it_was_sent_to(self):
        sources = {"127.0.0.1": "127.0.0.1", "::1": "::1", "2001:db8:77::2": "2001:db8:77::1",
                   "2001:db8:77::1": "2001:db8:77::1"}
        for dst in ("10.77.0.2", "10.77.0.1", "127.0.0.1", "2001:db8:77::2", "2001:db8:77::1", "::1"):
            r = self.run_ns(op="echo", src=sources.get(dst, "10.77.0.1"), dst=dst, data=b"to " + dst.encode())
            self.assertEqual((bytes.fromhex(r["data"]), r["from"], r["port"]), (b"to " + dst.encode(), dst, 7007))

    def test_drop_reasons(self):
        for port in (7, 19, 53):
            self.run_ns(op="echo", src="10.77.0.1", sport=port, dst="10.77.0.2", data=b"from %d" % port, wait=False)
        self.run_ns(op="raw", src="10.77.0.1", sport=0, dst="10.77.0.2", data=b"port zero")
        for src in ("240.0.0.1", "0.0.0.5", "224.0.0.9", "127.0.0.1"):
            # 127.0.0.1 to an address that is not loopback is forged.
            self.run_ns(op="raw", src=src, sport=40000, dst="10.77.0.2", data=b"bogus")
        self.run_ns(op="broadcast", src="10.77.0.1", dst="10.77.0.255")
        self.control()
        rec = self.status(self.d)
        self.assertEqual(rec["UDP_DROPPED_SOURCE_PORT"], "4")
        self.assertEqual(rec["UDP_DROPPED_SOURCE_ADDRESS"], "4")
        self.assertEqual(rec["UDP_DROPPED_DESTINATION"], "1")
        self.assertEqual(rec["UDP_ECHOED"], "1")
        self.assertEqual(rec["UDP_RECEIVED"], "10")


def shutil_which(name):
    import shutil
    return shutil.which(name)


if __name__ == "__main__":
    main()
