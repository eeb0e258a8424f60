#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The real balancer: HAProxy (mode tcp) in front of echod's proxy
listener, one server line with send-proxy-v2 and one with send-proxy (v1),
both with `check check-send-proxy`, so that its health checks arrive as
LOCAL headers (v2) and PROXY lines (v1). Clients connect to HAProxy from
127.0.0.2 and 127.0.0.3: echod's records name them, not HAProxy; a deny on
127.0.0.3 refuses only that client; the health checks keep both servers
UP, as HAProxy's stats socket says. README's "Scaling out" has the snippet."""
import os
import shutil
import signal
import socket
import subprocess
import unittest

from echodtest import EchodTestCase, free_port, main, recv_all, wait_until

MID_CLOSE = "b8891436a2ba4f56b2ec6232e48a8db5"
MID_STATUS = "466d07f2ce9e45dd9d2f5d5ad69848da"
HAPROXY = shutil.which("haproxy") or ("/usr/sbin/haproxy" if os.path.exists("/usr/sbin/haproxy") else None)

CONFIG = """\
global
    stats socket {tmp}/stats.sock mode 600 level admin
    pidfile {tmp}/haproxy.pid

defaults
    mode tcp
    timeout connect 5s
    timeout client 30s
    timeout server 30s

frontend echo_v2
    bind 127.0.0.1:{port_v2}
    default_backend echod_v2

backend echod_v2
    server echod 127.0.0.1:{echod_port} send-proxy-v2 check check-send-proxy inter 200ms fall 2 rise 1

frontend echo_v1
    bind 127.0.0.1:{port_v1}
    default_backend echod_v1

backend echod_v1
    server echod 127.0.0.1:{echod_port} send-proxy check check-send-proxy inter 200ms fall 2 rise 1
"""


def through(port, data, source):
    """data through HAProxy from source; what came back (b"" = refused)."""
    with socket.create_connection(("127.0.0.1", port), timeout=20, source_address=(source, 0)) as s:
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
            return recv_all(s)
        except OSError:
            return b""


class HAProxyTest(EchodTestCase):
    def setUp(self):
        if not HAPROXY:
            if os.environ.get("CI") == "true":
                self.fail("haproxy is missing (Debian package haproxy)")
            raise unittest.SkipTest("haproxy is missing")

    def start_haproxy(self, tmp, echod_port):
        self.port_v2, self.port_v1 = free_port(), free_port()
        self.stats = os.path.join(tmp, "stats.sock")
        cfg = os.path.join(tmp, "haproxy.cfg")
        with open(cfg, "w") as f:
            f.write(CONFIG.format(tmp=tmp, port_v2=self.port_v2, port_v1=self.port_v1, echod_port=echod_port))
        log = open(os.path.join(tmp, "haproxy.log"), "wb")
        self.addCleanup(log.close)
        proc = subprocess.Popen([HAPROXY, "-db", "-f", cfg], stdin=subprocess.DEVNULL, stdout=log, stderr=log)

        def stop():
            proc.kill()
            proc.wait()
        self.addCleanup(stop)
        # Ready when its stats socket answers (the file appears before
        # HAProxy listens on it).
        wait_until(lambda: proc.poll() is not None or self.try_status() is not None, what="HAProxy's stats socket")
        with open(os.path.join(tmp, "haproxy.log")) as f:
            self.assertIsNone(proc.poll(), f.read())
        return proc

    def try_status(self):
        try:
            return self.server_status()
        except OSError:
            return None

    def server_status(self):
        """{backend: status} of the echod servers, from 'show stat'."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(5)
            s.connect(self.stats)
            s.sendall(b"show stat\n")
            text = recv_all(s).decode()
        lines = text.splitlines()
        head = lines[0].lstrip("# ").split(",")
        out = {}
        for line in lines[1:]:
            row = dict(zip(head, line.split(",")))
            if row.get("svname") == "echod":
                out[row["pxname"]] = row["status"]
        return out

    def test_haproxy_in_front(self):
        echod_port = free_port()
        d = self.echod('rate_limit_per_source = 0\nlog_connections = all\n'
                       'proxy_listen = { "127.0.0.1:%d" }\nproxy_trusted = { "127.0.0.1" }\n'
                       'deny = { "127.0.0.3" }\n' % echod_port, journal="reading")
        self.start_haproxy(d.tmp, echod_port)
        # Its checks make both servers UP (rise 1: the first check that passes).
        wait_until(lambda: self.server_status() == {"echod_v2": "UP", "echod_v1": "UP"},
                   what="both servers UP")

        for port in (self.port_v2, self.port_v1):
            self.assertEqual(through(port, b"from .2", "127.0.0.2"), b"from .2")
            self.assertEqual(through(port, b"from .3", "127.0.0.3"), b"")

        served = d.journal.wait(count=2, MESSAGE_ID=MID_CLOSE, REMOTE_ADDR="127.0.0.2")
        for r in served:
            self.assertEqual(r["PROXY_ADDR"], "127.0.0.1")
            self.assertEqual(r["BYTES"], "7")
        # Refusals are logged once a second, the rest summed up: the
        # status record counts both.
        refused = [r for r in d.journal.wait(CLOSE_REASON="refused-access") if "REMOTE_ADDR" in r]
        self.assertEqual({r["REMOTE_ADDR"] for r in refused}, {"127.0.0.3"})
        d.kill(signal.SIGUSR1)
        self.assertEqual(d.journal.wait(MESSAGE_ID=MID_STATUS)[0]["REFUSED_ACCESS"], "2")

        # Health checks: v2's LOCAL and v1's PROXY line name HAProxy itself,
        # and are served as its own connections, never refused.
        checks = d.journal.wait(count=4, MESSAGE_ID=MID_CLOSE, REMOTE_ADDR="127.0.0.1")
        self.assertEqual({r["PROXY_ADDR"] for r in checks}, {"127.0.0.1"})
        self.assertEqual(d.journal.select(CLOSE_REASON="refused-proxy-header"), [])
        self.assertEqual(self.server_status(), {"echod_v2": "UP", "echod_v1": "UP"})


if __name__ == "__main__":
    main()
