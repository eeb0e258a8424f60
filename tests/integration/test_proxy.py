#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""PROXY protocol listeners (proxy_listen): the header a trusted balancer
sends names the client, and access lists, per-source limits and records
apply to that client; untrusted balancers, garbage, a slow or missing
header are refused; bytes after the header (even in the same segment) are
echoed, the header's own TLVs and padding never.

The test plays the balancer itself with raw sockets, from 127.0.0.1 (or
::1); tests/integration/test_haproxy.py puts the real HAProxy in front."""
import re
import signal
import socket
import struct
import threading
import time

from echodtest import (EchodTestCase, connect, free_port, main, recv_all, wait_until)

MID_OPEN = "fb8492e167704a2bbbc8cb13f049d770"
MID_CLOSE = "b8891436a2ba4f56b2ec6232e48a8db5"
MID_STATUS = "466d07f2ce9e45dd9d2f5d5ad69848da"

SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def v1(src, sport, dst="192.0.2.1", dport=7):
    proto = "TCP6" if ":" in src else "TCP4"
    return ("PROXY %s %s %s %d %d\r\n" % (proto, src, dst, sport, dport)).encode()


def v2(src, sport, dst=None, dport=7, tlvs=b"", command=0x21):
    if command == 0x20:
        return SIG + bytes([0x20, 0x00]) + struct.pack("!H", len(tlvs)) + tlvs
    fam = socket.AF_INET6 if ":" in src else socket.AF_INET
    dst = dst or ("2001:db8::1" if fam == socket.AF_INET6 else "192.0.2.1")
    body = socket.inet_pton(fam, src) + socket.inet_pton(fam, dst) + struct.pack("!HH", sport, dport) + tlvs
    return SIG + bytes([0x21, 0x21 if fam == socket.AF_INET6 else 0x11]) + struct.pack("!H", len(body)) + body


def exchange(port, data, host="127.0.0.1", family=socket.AF_INET, source=None):
    """Sends data, half-closes, returns everything that came back (b"" when
    echod closed or reset the connection)."""
    with connect(port, host=host, family=family, source=source) as s:
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
            return recv_all(s)
        except OSError:         # reset, or ENOTCONN after one
            return b""


class ProxyTest(EchodTestCase):
    def proxy_echod(self, config="", trusted='"127.0.0.1"', listen_host="127.0.0.1", records="all",
                    journal="reading", **kwargs):
        self.pport = free_port()
        host = "[%s]" % listen_host if ":" in listen_host else listen_host
        base = ("rate_limit_per_source = 0\nlog_connections = %s\n"
                'proxy_listen = { "%s:%d" }\nproxy_trusted = { %s }\n' % (records, host, self.pport, trusted))
        return self.echod(base + config, journal=journal, **kwargs)

    def refusals(self, d, reason, count=1):
        return d.journal.wait(count=count, CLOSE_REASON=reason)

    def journal_says(self, d, pattern):
        return wait_until(lambda: [r for r in d.journal.select() if re.search(pattern, r.get("MESSAGE", ""))],
                          what="a journal record /%s/" % pattern)

    def status(self, d):
        n = len(d.journal.select(MESSAGE_ID=MID_STATUS))
        d.kill(signal.SIGUSR1)
        return d.journal.wait(count=n + 1, MESSAGE_ID=MID_STATUS)[n]

    # -- the header's client is the connection's source --

    def test_deny_applies_to_the_headers_client(self):
        d = self.proxy_echod('deny = { "192.0.2.66" }\n')
        self.assertEqual(exchange(self.pport, v1("192.0.2.7", 5001) + b"served"), b"served")
        self.assertEqual(exchange(self.pport, v2("192.0.2.66", 5002) + b"denied"), b"")
        refused = self.refusals(d, "refused-access")[0]
        self.assertEqual(refused["REMOTE_ADDR"], "192.0.2.66")
        self.assertEqual(refused["PROXY_ADDR"], "127.0.0.1")
        self.assertIn("via 127.0.0.1:", refused["MESSAGE"])
        closes = d.journal.wait(MESSAGE_ID=MID_CLOSE)
        self.assertEqual(len(closes), 1)
        rec = closes[0]
        self.assertEqual(rec["REMOTE_ADDR"], "192.0.2.7")
        self.assertEqual(rec["REMOTE_PORT"], "5001")
        self.assertEqual(rec["PROXY_ADDR"], "127.0.0.1")
        self.assertEqual(rec["LOCAL_PORT"], str(self.pport))
        self.assertEqual(rec["BYTES"], "6")
        opens = d.journal.select(MESSAGE_ID=MID_OPEN)
        self.assertEqual(opens[0]["REMOTE_ADDR"], "192.0.2.7")
        self.assertEqual(opens[0]["PROXY_ADDR"], "127.0.0.1")
        self.assertEqual(int(opens[0]["PROXY_PORT"]), int(rec["PROXY_PORT"]))
        # A plain listener's records have no PROXY_ADDR.
        self.assertEqual(exchange(d.port, b"plain"), b"plain")
        plain = wait_until(lambda: [r for r in d.journal.select(MESSAGE_ID=MID_CLOSE)
                                    if r["LOCAL_PORT"] == str(d.port)], what="the plain close record")
        self.assertNotIn("PROXY_ADDR", plain[0])

    def test_per_source_limit_applies_to_the_headers_client(self):
        d = self.proxy_echod("max_connections_per_source = 1\n")
        held = connect(self.pport)
        self.addCleanup(held.close)
        held.sendall(v2("192.0.2.7", 6000) + b"a")
        self.assertEqual(held.recv(1), b"a")
        # The same client through the same balancer: over its limit.
        self.assertEqual(exchange(self.pport, v2("192.0.2.7", 6001) + b"b"), b"")
        self.assertEqual(self.refusals(d, "refused-per-source")[0]["REMOTE_ADDR"], "192.0.2.7")
        # Another client behind it is served, and so is the balancer's own
        # health check: the balancer's own key holds nothing once headers are read.
        self.assertEqual(exchange(self.pport, v1("192.0.2.8", 6002) + b"c"), b"c")
        self.assertEqual(exchange(self.pport, v2("", 0, command=0x20) + b"d"), b"d")

    def test_waiting_connections_count_for_the_balancer(self):
        d = self.proxy_echod("max_connections_per_source = 2\n")
        waiting = [connect(self.pport) for _ in range(2)]
        for s in waiting:
            self.addCleanup(s.close)
            # A header's first byte: accepted (TCP_DEFER_ACCEPT holds back
            # connections that sent nothing), then waiting for the rest.
            s.sendall(b"P")
        wait_until(lambda: self.status(d)["ACTIVE"] == "2", what="2 connections waiting for a header")
        # A third one from the balancer while two wait: refused at once.
        self.assertEqual(exchange(self.pport, b"P"), b"")
        self.assertEqual(self.refusals(d, "refused-per-source")[0]["REMOTE_ADDR"], "127.0.0.1")
        # Their headers come: each is its client's, and the balancer is free again.
        for i, s in enumerate(waiting):
            s.sendall(v1("192.0.2.%d" % (10 + i), 7000)[1:] + b"late")
            self.assertEqual(s.recv(4), b"late")
        self.assertEqual(exchange(self.pport, v1("192.0.2.20", 7001) + b"more"), b"more")

    def test_untrusted_balancer_refused_before_reading(self):
        d = self.proxy_echod(trusted='"127.0.0.2"')
        self.assertEqual(exchange(self.pport, v1("192.0.2.7", 5000) + b"x"), b"")
        rec = self.refusals(d, "refused-proxy-untrusted")[0]
        self.assertEqual(rec["REMOTE_ADDR"], "127.0.0.1")
        self.assertNotIn("PROXY_ADDR", rec)
        self.assertIn("proxy_trusted", rec["MESSAGE"])
        # The trusted address is served.
        self.assertEqual(exchange(self.pport, v1("192.0.2.7", 5000) + b"ok", source="127.0.0.2"), b"ok")

    # -- the header and what follows it --

    def test_data_after_the_header_is_echoed(self):
        self.proxy_echod()
        # In the same segment as the header,
        self.assertEqual(exchange(self.pport, v1("192.0.2.7", 1) + b"same segment\n"), b"same segment\n")
        self.assertEqual(exchange(self.pport, v2("2001:db8::7", 2) + b"\r\n\r\nv2"), b"\r\n\r\nv2")
        # and after it.
        with connect(self.pport) as s:
            s.sendall(v2("192.0.2.7", 3))
            s.sendall(b"later")
            self.assertEqual(s.recv(5), b"later")

    def test_tlvs_and_padding_are_never_echoed(self):
        d = self.proxy_echod()
        tlvs = b"\x01\x00\x04echo" + b"\xea\x00\x05\x01vpce"
        self.assertEqual(exchange(self.pport, v2("192.0.2.7", 1, tlvs=tlvs) + b"data"), b"data")
        # Padded to 84 bytes with zeros, as an NLB may.
        pad = v2("192.0.2.8", 2, tlvs=b"\x00" * (84 - 28))
        self.assertEqual(len(pad), 84)
        self.assertEqual(exchange(self.pport, pad + b"after padding"), b"after padding")
        # A LOCAL header with TLVs: the balancer's own connection.
        self.assertEqual(exchange(self.pport, v2("", 0, command=0x20, tlvs=b"\x04\x00\x02zz") + b"hc"), b"hc")
        closes = d.journal.wait(count=3, MESSAGE_ID=MID_CLOSE)
        self.assertEqual(sorted(r["REMOTE_ADDR"] for r in closes), ["127.0.0.1", "192.0.2.7", "192.0.2.8"])
        self.assertEqual(sorted(r["BYTES"] for r in closes), ["13", "2", "4"])

    def test_local_and_unknown_are_the_balancers_own(self):
        d = self.proxy_echod('deny = { "10.9.9.9" }\n')
        # LOCAL's addresses are ignored, never a source to evade a deny with.
        local = SIG + b"\x20\x11\x00\x0c" + socket.inet_aton("192.0.2.99") + socket.inet_aton("10.0.0.1") + b"\0\1\0\7"
        self.assertEqual(exchange(self.pport, local + b"one"), b"one")
        self.assertEqual(exchange(self.pport, b"PROXY UNKNOWN 10.9.9.9 10.0.0.1 1 7\r\ntwo"), b"two")
        unspec = SIG + b"\x21\x00\x00\x04abcd"
        self.assertEqual(exchange(self.pport, unspec + b"three"), b"three")
        closes = d.journal.wait(count=3, MESSAGE_ID=MID_CLOSE)
        self.assertEqual({r["REMOTE_ADDR"] for r in closes}, {"127.0.0.1"})
        self.assertEqual({r["PROXY_ADDR"] for r in closes}, {"127.0.0.1"})

    def test_garbage_refused(self):
        d = self.proxy_echod()
        for i, junk in enumerate([b"GET / HTTP/1.0\r\n\r\n",
                                  b"PROXY TCP4 192.0.2.07 192.0.2.1 1 7\r\nx",
                                  b"PROXY TCP4 192.0.2.7 192.0.2.1 65536 7\r\nx",
                                  b"PROXY TCP4 192.0.2.7 192.0.2.1 1 7\nx",
                                  SIG + b"\x21\x12\x00\x0c" + b"\0" * 12 + b"udp",
                                  SIG + b"\x21\x11\x04\x01" + b"\0" * 1025,
                                  b"x" * 200]):
            self.assertEqual(exchange(self.pport, junk), b"", junk)
        # A client that closes within its header.
        self.assertEqual(exchange(self.pport, b"PROXY TCP4 192.0.2.7"), b"")
        wait_until(lambda: self.status(d)["REFUSED_PROXY_HEADER"] == "8", what="8 refused headers")
        self.assertEqual(self.status(d)["ACTIVE"], "0")
        self.assertIn("invalid PROXY header", self.refusals(d, "refused-proxy-header")[0]["MESSAGE"])
        self.assertEqual(d.journal.select(MESSAGE_ID=MID_CLOSE), [])

    # -- the deadline --

    def slow_header(self, port, header, data=b"slow"):
        """Sends header a byte every 100 ms, then data; returns what came
        back and how long the header took."""
        with connect(port) as s:
            start = time.monotonic()
            try:
                for b in header:
                    s.sendall(bytes([b]))
                    time.sleep(0.1)
                took = time.monotonic() - start
                s.sendall(data)
                s.shutdown(socket.SHUT_WR)
                return recv_all(s), took
            except OSError:
                return b"", time.monotonic() - start

    def test_slow_header_within_proxy_timeout(self):
        self.proxy_echod("proxy_timeout = 5s\n")
        header = v1("1.2.3.4", 1, "5.6.7.8", 7)     # 32 bytes: 3.2 s
        got, took = self.slow_header(self.pport, header)
        self.assertGreater(took, 3.0)
        self.assertEqual(got, b"slow")

    def test_slow_header_refused_after_proxy_timeout(self):
        d = self.proxy_echod("proxy_timeout = 1s\n")
        got, took = self.slow_header(self.pport, v1("1.2.3.4", 1, "5.6.7.8", 7))
        self.assertEqual(got, b"")
        # Refused once its second was over, not before (the reset shows
        # at the first byte sent after it).
        self.assertGreaterEqual(took, 1.0)
        rec = self.refusals(d, "refused-proxy-timeout")[0]
        self.assertEqual(rec["REMOTE_ADDR"], "127.0.0.1")
        self.assertEqual(self.status(d)["REFUSED_PROXY_TIMEOUT"], "1")

    # -- SIGUSR2 --

    def test_upgrade_waits_for_a_header_in_flight(self):
        # A connection waiting for its header is the master's own descriptor,
        # which execve() would close: the upgrade waits for the header.
        d = self.proxy_echod()
        pid = d.pid
        header = v1("192.0.2.9", 4242, "192.0.2.1", 7)
        s = connect(self.pport)
        self.addCleanup(s.close)
        s.sendall(header[:10])
        wait_until(lambda: self.status(d)["ACTIVE"] == "1" and not d.workers(),
                   what="the connection waiting for the rest of its header")
        d.kill(signal.SIGUSR2)
        self.journal_says(d, r"SIGUSR2: the in-place upgrade waits for 1 connection's PROXY header")
        # Meanwhile a new connection waits in the backlog, not refused.
        plain = connect(d.port)
        self.addCleanup(plain.close)
        plain.sendall(b"queued")
        plain.shutdown(socket.SHUT_WR)
        s.sendall(header[10:] + b"payload")
        s.shutdown(socket.SHUT_WR)
        self.assertEqual(recv_all(s), b"payload")
        self.journal_says(d, r"upgraded in place to echod")
        self.assertEqual(recv_all(plain), b"queued")
        self.assertEqual(d.pid, pid)
        rec = d.journal.wait(MESSAGE_ID=MID_CLOSE, REMOTE_ADDR="192.0.2.9")[0]
        self.assertEqual(rec["PROXY_ADDR"], "127.0.0.1")

    # -- IPv6 --

    def test_sixteen_connections_over_ipv6(self):
        # Records to stderr, which never drops one: a burst can fill a
        # journal socket, and then even the summary may be lost.
        d = self.proxy_echod(trusted='"::1"', listen_host="::1", records="close", journal=None)
        results = {}

        def one(i):
            hdr = v2("2001:db8::%x" % (i + 1), 9000 + i) if i % 2 else v1("2001:db8::%x" % (i + 1), 9000 + i, "::1")
            results[i] = exchange(self.pport, hdr + b"client %d" % i, host="::1", family=socket.AF_INET6)

        threads = [threading.Thread(target=one, args=(i,)) for i in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(results, {i: b"client %d" % i for i in range(16)})
        closes = d.wait_log(r"connection from \[(2001:db8::[0-9a-f]+)\]:9\d+ via \[::1\]:\d+ closed: eof", count=16)
        self.assertEqual(set(closes), {"2001:db8::%x" % (i + 1) for i in range(16)})

    # -- reload --

    def test_reload_adds_a_proxy_listener_and_turns_a_plain_one_into_one(self):
        d = self.echod("rate_limit_per_source = 0\n", journal="reading")
        pport = free_port()
        self.assertEqual(exchange(d.port, b"plain"), b"plain")
        d.write_config('proxy_listen = { "127.0.0.1:%d" }\nproxy_trusted = { "127.0.0.1" }\n'
                       "rate_limit_per_source = 0\n" % pport)
        d.reload()
        self.assertEqual(exchange(pport, v1("192.0.2.7", 1) + b"added"), b"added")
        self.assertEqual(exchange(d.port, b"still plain"), b"still plain")
        # The same socket (its queue kept), now expecting a header.
        d.write_config('proxy_listen = { "127.0.0.1:%d" }\nproxy_trusted = { "127.0.0.1" }\n'
                       "rate_limit_per_source = 0\n" % d.port, listen=[])
        d.reload()
        self.assertEqual(exchange(d.port, b"no header"), b"")
        self.assertEqual(exchange(d.port, v2("192.0.2.8", 2) + b"moved"), b"moved")
        wait_until(lambda: self.status(d)["REFUSED_PROXY_HEADER"] == "1", what="the headerless refusal")
        # A reload that drops proxy_trusted is refused; the old config stays.
        d.write_config('proxy_listen = { "127.0.0.1:%d" }\n' % d.port, listen=[])
        mark = d.reload()
        self.assertTrue([n for n in d.notifications[mark - 2:] if "Reload failed" in n], d.notifications[mark - 2:])
        self.assertEqual(exchange(d.port, v1("192.0.2.9", 3) + b"kept"), b"kept")

    # -- socket activation --

    def test_socket_activation_a_socket_named_proxy(self):
        self.require_socket_activate()
        plain, proxy = free_port(), free_port()
        d = self.echod('proxy_trusted = { "127.0.0.1" }\nrate_limit_per_source = 0\n', wait_ready=False)
        d.start_activated(["127.0.0.1:%d" % plain, "127.0.0.1:%d" % proxy], ["--fdname=echo:proxy"])
        first = connect(plain)
        self.addCleanup(first.close)
        d.wait_notify("READY=1")
        d.wait_log(r"using socket 127\.0\.0\.1:%d passed by systemd \(PROXY protocol\)" % proxy)
        self.assertEqual(exchange(proxy, v2("192.0.2.7", 4) + b"named proxy"), b"named proxy")
        self.assertEqual(exchange(proxy, b"no header"), b"")
        self.assertEqual(exchange(plain, b"PROXY UNKNOWN\r\n"), b"PROXY UNKNOWN\r\n")
        self.assertEqual(d.stop(), 0, d.read_log())

    # -- configuration --

    def test_proxy_listen_needs_proxy_trusted(self):
        path = self.tmpfile("echod.conf", 'listen = { "127.0.0.1:7" }\n\nproxy_listen = { "127.0.0.1:8" }\n')
        r = self.run_echod(["-t", "-c", path])
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("%s:3: proxy_listen:" % path, r.stderr)
        self.assertIn("proxy_trusted", r.stderr)
        path = self.tmpfile("echod.conf", 'proxy_listen = { "127.0.0.1:8" }\nproxy_trusted = { "10.0.0.1/8" }\n'
                            'proxy_timeout = 0\n')
        r = self.run_echod(["-t", "-c", path])
        self.assertIn("%s:2: proxy_trusted:" % path, r.stderr)
        self.assertIn("%s:3: proxy_timeout:" % path, r.stderr)

    def test_dump_config(self):
        path = self.tmpfile("echod.conf", 'proxy_listen = { "127.0.0.1:8" }\nproxy_trusted = { "10.0.0.0/8", "::1" }\n')
        r = self.run_echod(["--dump-config", "-c", path])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn('proxy_listen = { "127.0.0.1:8" }', r.stdout)
        self.assertIn('proxy_trusted = { "10.0.0.0/8", "::1/128" }', r.stdout)
        self.assertIn("proxy_timeout = 3s", r.stdout)
        # Only proxy listeners: no plain one on [::]:7.
        self.assertIn("listen = { }", r.stdout)


if __name__ == "__main__":
    main()
