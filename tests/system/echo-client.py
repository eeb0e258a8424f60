#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The system test's client: talks to echod in the container from the host
(the container shares the host's network). Standard library only.

  roundtrip HOST PORT [--size N]   send N random bytes, expect them back
  hold HOST PORT                   round trip, print "ready", wait for a line
                                   on stdin, round trip again on the same
                                   connection, print "ok"
  burst HOST PORT --count N        N short connections, one after another,
                                   each a round trip of --size bytes
                                   (--sources K: from 127.0.0.1..K in turn)
  probe HOST PORT --stop-file F    in a tight loop, connect, send one byte,
                                   half-close and expect it back then EOF
                                   (--sources K: from 127.0.0.1..K in turn,
                                   to stay within the per-source rate
                                   limit; --count attempts at most,
                                   --timeout s) until F exists; print the
                                   counts, exit 1 if any was refused
                                   (ECONNREFUSED) or not echoed
  session HOST PORT                one connection that echoes round trips of
                                   --size bytes, byte for byte, until a line
                                   on stdin; print "ready" first, then "ok"
  wait-port HOST PORT              poll until a connection succeeds
  refused HOST PORT                expect the connection to be refused
  port-free PORT                   is PORT free on every address (v4 and v6)?
  free-port                        print a port that is free right now

Every wait has a deadline (--timeout, seconds). Exit 0 on success, 1 with a
message on stderr otherwise.
"""

import argparse
import errno
import os
import random
import select
import socket
import sys
import time


def connect(host, port, timeout, source=None):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(timeout)
    if source:
        s.bind((source, 0))
    s.connect((host, port))
    return s


def roundtrip(s, size, timeout):
    """Sends and receives at once, so a payload larger than the socket
    buffers cannot deadlock."""
    data = os.urandom(size)
    got = bytearray()
    sent = 0
    deadline = time.monotonic() + timeout
    s.setblocking(False)
    try:
        while len(got) < size:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{len(got)} of {size} bytes echoed before the deadline")
            want_write = [s] if sent < size else []
            r, w, _ = select.select([s], want_write, [], left)
            if w:
                try:
                    sent += s.send(data[sent:sent + 65536])
                except BlockingIOError:
                    pass
            if r:
                try:
                    chunk = s.recv(65536)
                except BlockingIOError:
                    continue
                if not chunk:
                    raise ConnectionError(f"server closed after {len(got)} of {size} bytes")
                got += chunk
    finally:
        s.setblocking(True)
        s.settimeout(timeout)
    if bytes(got) != data:
        raise ValueError(f"echoed bytes differ from those sent ({size} bytes)")


def cmd_roundtrip(a):
    s = connect(a.host, a.port, a.timeout)
    lport = s.getsockname()[1]
    roundtrip(s, a.size, a.timeout)
    s.close()
    print(f"{a.size} bytes echoed by {a.host} port {a.port} (local port {lport})")
    print(f"local_port={lport}")


def cmd_hold(a):
    s = connect(a.host, a.port, a.timeout)
    lport = s.getsockname()[1]
    roundtrip(s, a.size, a.timeout)
    print(f"ready local_port={lport}", flush=True)
    line = sys.stdin.readline()
    if not line:
        raise RuntimeError("stdin closed before the second round trip")
    roundtrip(s, a.size, a.timeout)
    s.close()
    print("ok", flush=True)


def cmd_probe(a):
    # A refusal is ECONNREFUSED (nothing listens); a connection accepted
    # but not served (closed or reset without its echo) is a failure.
    deadline = time.monotonic() + a.timeout
    attempts = refused = failed = 0
    first_error = None
    while attempts < a.count and time.monotonic() < deadline and not os.path.exists(a.stop_file):
        attempts += 1
        source = "127.0.0.%d" % (1 + attempts % a.sources) if a.sources > 1 else None
        try:
            with connect(a.host, a.port, max(0.5, deadline - time.monotonic()), source) as s:
                s.sendall(b"p")
                s.shutdown(socket.SHUT_WR)
                got = b""
                while True:
                    chunk = s.recv(16)
                    if not chunk:
                        break
                    got += chunk
                if got != b"p":
                    raise ConnectionError("closed without the echo (%r)" % got)
            if attempts == 1:
                print("started", flush=True)
        except ConnectionRefusedError as e:
            refused += 1
            first_error = first_error or e
        except OSError as e:
            failed += 1
            first_error = first_error or e
        if a.interval:
            time.sleep(a.interval)
    print(f"attempts={attempts} refused={refused} failed={failed} stopped={int(os.path.exists(a.stop_file))}",
          flush=True)
    if refused or failed:
        raise RuntimeError(f"{refused} refused, {failed} failed of {attempts} (first: {first_error!r})")


def cmd_session(a):
    s = connect(a.host, a.port, a.timeout)
    roundtrip(s, a.size, a.timeout)
    print(f"ready local_port={s.getsockname()[1]}", flush=True)
    rounds, total = 1, a.size
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if select.select([sys.stdin], [], [], 0)[0]:
            sys.stdin.readline()
            break
        roundtrip(s, a.size, a.timeout)
        rounds += 1
        total += a.size
        time.sleep(0.01)
    else:
        raise TimeoutError("no stop line on stdin within 600 s")
    roundtrip(s, a.size, a.timeout)
    s.close()
    print(f"ok rounds={rounds + 1} bytes={total + a.size}", flush=True)


def cmd_wait_port(a):
    deadline = time.monotonic() + a.timeout
    last = None
    while time.monotonic() < deadline:
        try:
            s = connect(a.host, a.port, max(0.1, deadline - time.monotonic()))
            s.close()
            return
        except OSError as e:
            last = e
        time.sleep(0.1)
    raise TimeoutError(f"{a.host} port {a.port} did not accept a connection within {a.timeout} s: {last}")


def cmd_burst(a):
    # Round-robin over 127.0.0.1..127.0.0.N: the shipped per-source rate
    # limit is meant for one client, not for a test's whole burst.
    for i in range(a.count):
        source = "127.0.0.%d" % (1 + i % a.sources) if a.sources > 1 else None
        with connect(a.host, a.port, a.timeout, source) as s:
            roundtrip(s, a.size, a.timeout)
    print(f"{a.count} connections echoed")


def cmd_refused(a):
    try:
        s = connect(a.host, a.port, a.timeout)
    except ConnectionRefusedError:
        print(f"{a.host} port {a.port}: connection refused, as expected")
        return
    s.close()
    raise RuntimeError(f"{a.host} port {a.port} accepted a connection")


def bind_dual(port):
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.bind(("::", port))
    return s


def cmd_port_free(a):
    try:
        bind_dual(a.port).close()
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            raise RuntimeError(f"port {a.port} is in use on this host") from None
        raise


def cmd_free_port(a):
    # Not bind(0): that port comes from ip_local_port_range, where any
    # client's connect() may take it before echod binds it.
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        low = int(f.read().split()[0])
    first, last = 20000, low - 1
    start = random.randrange(last - first + 1)
    for i in range(last - first + 1):
        port = first + (start + i) % (last - first + 1)
        try:
            bind_dual(port).close()
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                continue
            raise
        print(port)
        return
    raise RuntimeError(f"no free port in {first}-{last}")


def main():
    p = argparse.ArgumentParser(description="echo client for echod's system test")
    p.add_argument("--timeout", type=float, default=10.0)
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("roundtrip", "hold", "wait-port", "refused", "burst", "probe", "session"):
        c = sub.add_parser(name)
        c.add_argument("host")
        c.add_argument("port", type=int)
        c.add_argument("--size", type=int, default=65536)
        c.add_argument("--count", type=int, default=1)
        c.add_argument("--sources", type=int, default=1)
        c.add_argument("--stop-file", default="/nonexistent")
        c.add_argument("--interval", type=float, default=0.0)
    sub.add_parser("port-free").add_argument("port", type=int)
    sub.add_parser("free-port")
    a = p.parse_args()
    try:
        globals()["cmd_" + a.cmd.replace("-", "_")](a)
    except Exception as e:  # one line for the test log, not a traceback
        print(f"echo-client {a.cmd}: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
