#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""metrics_file: the Prometheus text file after traffic, replaced atomically,
read by the real consumer (prometheus-node-exporter's textfile collector over
HTTP), and a write error that is logged while echod keeps serving."""
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request

from echodtest import (ECHOD, TIMEOUT, EchodTestCase, connect, echo, free_port,
                       is_refused, main, wait_until)

NODE_EXPORTER = shutil.which("prometheus-node-exporter")
VERSION = subprocess.run([ECHOD, "--version"], capture_output=True, text=True).stdout.split()[-1]

NAMES = [
    "echod_connections_total", "echod_connections_active", "echod_bytes_echoed_total",
    "echod_refused_total", "echod_log_records_dropped_total", "echod_workers_failed_total",
    "echod_reloads_total", "echod_upgrades_failed_total", "echod_udp_datagrams_received_total",
    "echod_udp_datagrams_echoed_total", "echod_udp_bytes_echoed_total", "echod_udp_dropped_total",
    "echod_udp_worker_restarts_total", "echod_start_time_seconds", "echod_build_info",
]
TYPES = {"echod_connections_active": "gauge", "echod_start_time_seconds": "gauge",
         "echod_build_info": "gauge"}
SAMPLE = re.compile(r'^([a-z_]+)(\{[a-z]+="[^"]*"\})? ([0-9.]+)$')
# Without the ones admit() never hands out unless a table or fork fails.
LIMITS = "rate_limit_per_source = 0\nsession_timeout = 0\n"


def parse(text):
    """{(name, labels): value} of a complete exposition; ValueError otherwise."""
    if not text.endswith("\n"):
        raise ValueError("does not end in a newline: %r" % text[-80:])
    samples, helps, types = {}, [], {}
    for line in text.splitlines():
        m = re.match(r"^# (HELP|TYPE) (\S+) (.+)$", line)
        if m:
            if m.group(1) == "HELP":
                helps.append(m.group(2))
            else:
                types[m.group(2)] = m.group(3)
            continue
        m = SAMPLE.match(line)
        if not m:
            raise ValueError("not a sample: %r" % line)
        samples[(m.group(1), m.group(2) or "")] = float(m.group(3))
    if helps != NAMES:
        raise ValueError("HELP lines for %s, expected %s" % (helps, NAMES))
    for n in NAMES:
        if types.get(n) != TYPES.get(n, "counter"):
            raise ValueError("TYPE of %s is %s" % (n, types.get(n)))
    if samples.get(("echod_build_info", '{version="%s"}' % VERSION)) != 1:
        raise ValueError("no echod_build_info: truncated")
    return samples


class Metrics(EchodTestCase):
    def metrics_dir(self, mode=0o777):
        d = tempfile.mkdtemp(prefix="echod-metrics-")
        self.addCleanup(shutil.rmtree, d, True)
        # Started as root, echod writes as nobody (or _echod).
        os.chmod(d, mode)
        return d

    def config(self, d, extra="", interval="1s"):
        path = os.path.join(d, "echod.prom")
        return 'metrics_file = "%s"\nmetrics_interval = %s\n%s%s' % (path, interval, LIMITS, extra)

    def start(self, d, extra="", interval="1s"):
        return self.echod(self.config(d, extra, interval)), os.path.join(d, "echod.prom")

    def read(self, path):
        with open(path) as f:
            return parse(f.read())

    def wait_sample(self, path, key, value):
        def ok():
            try:
                s = self.read(path)
            except FileNotFoundError:
                return None
            return s if s.get(key) == value else None
        try:
            return wait_until(ok, what="%s = %s in %s" % (key, value, path))
        except AssertionError:
            with open(path) as f:
                raise AssertionError("%s = %s never appeared; file:\n%s" % (key, value, f.read()))

    def test_udp(self):
        d = self.metrics_dir()
        uport = free_port()
        e, path = self.start(d, 'listen_udp = { "127.0.0.1:%d" }\n' % uport)
        # From a port on the deny list (1900, SSDP): dropped; then three
        # echoed, the last one's reply proving the drop came first.
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as bad:
            bad.bind(("127.0.0.1", 1900))
            bad.sendto(b"reflect me", ("127.0.0.1", uport))
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.settimeout(TIMEOUT)
            for i in range(3):
                u.sendto(b"dgram %d" % i, ("127.0.0.1", uport))
                self.assertEqual(u.recv(100), b"dgram %d" % i)
        s = self.wait_sample(path, ("echod_udp_datagrams_echoed_total", ""), 3)
        self.assertEqual(s[("echod_udp_datagrams_received_total", "")], 4)
        self.assertEqual(s[("echod_udp_bytes_echoed_total", "")], 3 * 7)
        self.assertEqual(s[("echod_udp_dropped_total", '{reason="source-port"}')], 1)
        self.assertEqual(s[("echod_udp_worker_restarts_total", "")], 0)

    def test_after_traffic(self):
        d = self.metrics_dir()
        before = time.time()
        e, path = self.start(d, 'deny = { "127.0.0.2" }\n')
        # Written at start, before READY=1.
        s = self.read(path)
        self.assertEqual(s[("echod_connections_active", "")], 0)
        self.assertEqual(s[("echod_connections_total", '{reason="eof"}')], 0)
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o644)
        self.assertGreaterEqual(s[("echod_start_time_seconds", "")], int(before))
        self.assertLessEqual(s[("echod_start_time_seconds", "")], time.time())

        for i in range(5):
            self.assertEqual(echo(e.port, b"metrics %d\n" % i), b"metrics %d\n" % i)
        with connect(e.port, source="127.0.0.2") as refused:
            self.assertTrue(is_refused(refused))
        held = connect(e.port)
        held.sendall(b"x")
        self.assertEqual(held.recv(1), b"x")
        e.reload()
        e.write_config(self.config(d, "max_connections = lots\n"))
        e.reload()

        s = self.wait_sample(path, ("echod_connections_total", '{reason="eof"}'), 5)
        self.assertEqual(s[("echod_connections_active", "")], 1)
        self.assertEqual(s[("echod_refused_total", '{reason="access"}')], 1)
        self.assertEqual(s[("echod_refused_total", '{reason="limit"}')], 0)
        self.assertEqual(s[("echod_reloads_total", '{result="ok"}')], 1)
        self.assertEqual(s[("echod_reloads_total", '{result="failed"}')], 1)
        self.assertEqual(s[("echod_workers_failed_total", "")], 0)
        held.close()
        s = self.wait_sample(path, ("echod_connections_total", '{reason="eof"}'), 6)
        self.assertEqual(s[("echod_connections_active", "")], 0)

        # And once more at a clean stop.
        os.unlink(path)
        self.assertEqual(e.stop(), 0)
        final = self.read(path)
        self.assertEqual(final[("echod_connections_total", '{reason="eof"}')], 6)
        # Five echoes of 10 bytes and the held connection's one, from the workers' reports.
        self.assertEqual(final[("echod_bytes_echoed_total", "")], 51)
        self.assertFalse(os.path.exists(path + ".tmp"))

    def test_replaced_atomically(self):
        """A reader polling the file sees every version whole: each reload
        writes it, so many replacements happen while it reads."""
        d = self.metrics_dir()
        e, path = self.start(d, interval="1h")
        stop = threading.Event()
        # Inode numbers are reused at once; each reload's count is not.
        seen = {"reads": 0, "versions": set(), "errors": []}

        def reader():
            while not stop.is_set():
                try:
                    with open(path) as f:
                        text = f.read()
                    version = parse(text)[("echod_reloads_total", '{result="ok"}')]
                except Exception as ex:     # noqa: BLE001 - every failure is reported
                    seen["errors"].append("%r" % ex)
                    return
                seen["reads"] += 1
                seen["versions"].add(version)
        t = threading.Thread(target=reader)
        t.start()
        try:
            for i in range(200):
                e.reload()
                if i % 20 == 0:
                    echo(e.port, b"y")
        finally:
            stop.set()
            t.join()
        self.assertEqual(seen["errors"], [])
        self.assertGreater(len(seen["versions"]), 20, seen)
        self.assertGreater(seen["reads"], 200, seen)
        self.assertEqual(self.read(path)[("echod_reloads_total", '{result="ok"}')], 200)

    def test_write_error(self):
        d = self.metrics_dir(0o555)
        e, path = self.start(d)
        e.wait_log(r"cannot write metrics file %s: Permission denied; still serving" % re.escape(path))
        self.assertEqual(echo(e.port, b"still here\n"), b"still here\n")
        self.assertIsNone(e.proc.poll())
        self.assertFalse(os.path.exists(path))
        # The next interval tries again.
        os.chmod(d, 0o777)
        self.wait_sample(path, ("echod_connections_active", ""), 0)

    def test_config(self):
        for value, message in (("echod.prom", "is not an absolute path"),
                               ("/tmp/echod.txt", "does not end in .prom")):
            cfg = self.tmpfile("echod.conf", 'metrics_file = "%s"\n' % value)
            r = self.run_echod(["--test-config", "--config", cfg])
            self.assertEqual(r.returncode, 6, r.stdout + r.stderr)
            self.assertRegex(r.stderr, r"echod.conf:1: metrics_file: .*%s" % message)
        cfg = self.tmpfile("echod.conf", "metrics_interval = 0\n")
        r = self.run_echod(["--test-config", "--config", cfg])
        self.assertEqual(r.returncode, 6, r.stdout + r.stderr)
        r = self.run_echod(["--dump-config", "--config", self.tmpfile("echod.conf", "")])
        self.assertIn('metrics_file = ""\nmetrics_interval = 15s\n', r.stdout)

    def node_exporter(self, d):
        if not NODE_EXPORTER:
            if os.environ.get("CI") == "true":
                self.fail("prometheus-node-exporter is missing (package prometheus-node-exporter)")
            self.skipTest("prometheus-node-exporter is missing")
        port = free_port()
        log = open(os.path.join(d, "node-exporter.log"), "wb")
        self.addCleanup(log.close)
        p = subprocess.Popen([NODE_EXPORTER, "--web.listen-address=127.0.0.1:%d" % port,
                              "--collector.disable-defaults", "--collector.textfile",
                              "--collector.textfile.directory=" + d],
                             stdin=subprocess.DEVNULL, stdout=log, stderr=log)

        def kill():
            os.kill(p.pid, signal.SIGKILL)
            p.wait()
        self.addCleanup(kill)
        url = "http://127.0.0.1:%d/metrics" % port

        def scrape():
            if p.poll() is not None:
                raise AssertionError("node-exporter exited with %s:\n%s"
                                     % (p.returncode, open(log.name).read()))
            try:
                with urllib.request.urlopen(url, timeout=TIMEOUT) as r:
                    return r.read().decode()
            except OSError:
                return None
        return lambda: wait_until(scrape, what="node-exporter on " + url)

    def test_node_exporter(self):
        d = self.metrics_dir()
        e, path = self.start(d)
        for i in range(3):
            echo(e.port, b"scraped\n")
        self.wait_sample(path, ("echod_connections_total", '{reason="eof"}'), 3)
        scrape = self.node_exporter(d)
        text = scrape()
        self.assertRegex(text, r"(?m)^node_textfile_scrape_error 0$")
        self.assertRegex(text, r'(?m)^node_textfile_mtime_seconds\{file="[^"]*echod\.prom"\} ')
        self.assertRegex(text, r'(?m)^echod_build_info\{version="%s"\} 1$' % re.escape(VERSION))
        self.assertRegex(text, r'(?m)^echod_connections_total\{reason="eof"\} 3$')
        self.assertRegex(text, r'(?m)^echod_refused_total\{reason="per-source"\} 0$')
        self.assertRegex(text, r'(?m)^echod_reloads_total\{result="ok"\} 0$')
        self.assertRegex(text, r"(?m)^# TYPE echod_connections_active gauge$")
        for n in NAMES:
            self.assertRegex(text, r"(?m)^%s[ {]" % n)


if __name__ == "__main__":
    main()
