# SPDX-License-Identifier: MIT
"""Test harness: runs the real echod binary on a free loopback port and
talks to it over real sockets.

Readiness is never a sleep: the harness plays the service manager and
receives echod's sd_notify messages (READY=1, STATUS=...) on its own
NOTIFY_SOCKET, and log lines are waited for with a deadline.
"""
import array
import fcntl
import os
import random
import sys
import re
import shutil
import select
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
import unittest

ECHOD = os.environ.get("ECHOD", "echod")
TIMEOUT = float(os.environ.get("ECHOD_TEST_TIMEOUT", "20"))


def shim(name, tmpdir, cflags=()):
    """The LD_PRELOAD shim tests/shim/NAME.c: built by meson next to echod
    (ECHOD is BUILD/src/echod/echod), or compiled here into tmpdir."""
    build_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(ECHOD))))
    built = os.path.join(build_root, "tests", "shim", name + ".so")
    if os.path.exists(built):
        return built
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if not cc:
        raise unittest.SkipTest("no %s.so and no C compiler to build it" % name)
    out = os.path.join(tmpdir, name + ".so")
    source = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "shim", name + ".c")
    subprocess.run([cc, "-shared", "-fPIC", "-O2", "-D_GNU_SOURCE"] + list(cflags) + ["-o", out, source, "-ldl"],
                   check=True)
    return out


_PORT_LOCKS = os.path.join(tempfile.gettempdir(), "echod-test-ports")
_held_ports = {}        # port -> the open lock file that reserves it


def _port_range():
    """Ports outside net.ipv4.ip_local_port_range, so that no client's
    connect() or bind(0) on this host can be given one of them."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low, high = (int(x) for x in f.read().split())
    except (OSError, ValueError):
        low, high = 32768, 60999
    if low - 1 - 20000 >= 1000:
        return 20000, low - 1
    if 65535 - (high + 1) >= 1000:
        return high + 1, 65535
    raise AssertionError("ip_local_port_range %d-%d leaves no room for test ports"
                         % (low, high))


def _bindable(port):
    """True if nothing holds port on any address, TCP or UDP, IPv4 or IPv6."""
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        try:
            s = socket.socket(socket.AF_INET6, kind)
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            host = "::"
        except OSError:
            s = socket.socket(socket.AF_INET, kind)
            host = "0.0.0.0"
        try:
            s.bind((host, port))
        except OSError:
            return False
        finally:
            s.close()
    return True


def free_port():
    """A port nobody holds, kept for this test process until it exits.

    A port the kernel picks with bind(0) comes from the ephemeral range,
    where any client's connect() may take it again before echod binds it,
    and another test process may be handed it too.  So the port comes
    from outside that range, it is reserved across the test processes
    that run in parallel by a lock on a file named after it, and it is
    free on every address, TCP and UDP, IPv4 and IPv6, when handed out.
    """
    first, last = _port_range()
    os.makedirs(_PORT_LOCKS, exist_ok=True)
    try:
        os.chmod(_PORT_LOCKS, 0o1777)       # other users' test runs share it
    except OSError:
        pass                                # theirs: they made it so
    span = last - first + 1
    start = random.randrange(span)
    for i in range(span):
        port = first + (start + i) % span
        if port in _held_ports:
            continue
        try:
            # flock() needs no write access: a file another user made will do.
            fd = os.open(os.path.join(_PORT_LOCKS, str(port)), os.O_RDONLY | os.O_CREAT, 0o644)
        except PermissionError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        if not _bindable(port):
            os.close(fd)
            continue
        _held_ports[port] = fd
        return port
    raise AssertionError("no free test port in %d-%d" % (first, last))


def have_ipv6():
    """True if this machine has IPv6 loopback (::1 can be bound)."""
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def wait_until(predicate, timeout=TIMEOUT, what="condition", interval=0.01):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(interval)


def children_of(pid):
    """PIDs whose parent is pid, from /proc."""
    kids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[1]) == pid:
            kids.append(int(entry))
    return kids


def proc_state(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2]


def cpu_seconds(pid):
    """utime + stime of pid, from /proc/PID/stat."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def open_fds(pid):
    return sorted(int(fd) for fd in os.listdir("/proc/%d/fd" % pid))


def fd_targets(pid):
    """{fd: readlink target} of pid; {} if it is gone meanwhile."""
    out = {}
    try:
        for fd in os.listdir("/proc/%d/fd" % pid):
            try:
                out[int(fd)] = os.readlink("/proc/%d/fd/%s" % (pid, fd))
            except FileNotFoundError:
                pass
    except (FileNotFoundError, ProcessLookupError):
        return {}
    return out


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for %d" % pid)


def cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def echo(port, data, host="127.0.0.1", family=socket.AF_INET, timeout=TIMEOUT):
    """Sends data, half-closes, returns everything echoed until EOF."""
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect((host, port))
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        return recv_all(s)


def try_echo(port, data, **kwargs):
    """Like echo(), but a refused connection (closed or reset by echod
    without an echo) gives None."""
    try:
        got = echo(port, data, **kwargs)
    except (ConnectionResetError, BrokenPipeError, OSError):
        return None
    return got if got or not data else None


def recv_all(s):
    chunks = []
    while True:
        b = s.recv(65536)
        if not b:
            return b"".join(chunks)
        chunks.append(b)


def connect(port, host="127.0.0.1", family=socket.AF_INET, timeout=TIMEOUT, source=None):
    """A connection to host:port, from the address source if given."""
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(timeout)
    if source:
        s.bind((source, 0))
    s.connect((host, port))
    return s


def read_exactly(s, n):
    buf = bytearray()
    while len(buf) < n:
        b = s.recv(n - len(buf))
        if not b:
            raise AssertionError("EOF after %d of %d bytes" % (len(buf), n))
        buf += b
    return bytes(buf)


def is_refused(s, timeout=TIMEOUT):
    """True when echod accepted and closed the connection (EOF or reset)."""
    s.settimeout(timeout)
    try:
        s.sendall(b"x")
        return s.recv(1) == b""
    except (ConnectionResetError, BrokenPipeError):
        return True


def keep_draining(test, d):
    """Reads echod's sd_notify messages in the background for the rest of
    the test, as a service manager does. The harness reads them only when
    waiting for one, and net.unix.max_dgram_qlen is 10 here: long tests
    would otherwise run with the queue full (test_status.py and test_exhaustion.py check
    that case on purpose)."""
    stop = threading.Event()

    def run():
        while not stop.wait(0.2):
            try:
                d._drain_notify()
            except OSError:
                return
    t = threading.Thread(target=run, daemon=True)
    t.start()

    def done():
        stop.set()
        t.join(5)
    test.addCleanup(done)


# -- socket queues, for tests that must know where the bytes of a connection are --

SIOCINQ = 0x541B        # FIONREAD
SIOCOUTQ = 0x5411       # TIOCOUTQ
TCP_STATES = {1: "ESTABLISHED", 2: "SYN_SENT", 3: "SYN_RECV", 4: "FIN_WAIT1", 5: "FIN_WAIT2",
              6: "TIME_WAIT", 7: "CLOSE", 8: "CLOSE_WAIT", 9: "LAST_ACK", 10: "LISTEN", 11: "CLOSING"}


def socket_queues(s):
    """(send queue, receive queue) of one of our TCP sockets in bytes: what
    it has sent without an acknowledgement or not sent yet, and what it has
    received that nobody has read."""
    outq = struct.unpack("i", fcntl.ioctl(s.fileno(), SIOCOUTQ, b"\0" * 4))[0]
    inq = struct.unpack("i", fcntl.ioctl(s.fileno(), SIOCINQ, b"\0" * 4))[0]
    return outq, inq


NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
NLMSG_ERROR = 2


def _diag_lookup(local, remote):
    """(state, send queue, receive queue) of the IPv4 TCP socket with these
    (host, port) ends, looked up by the kernel (sock_diag, one exact
    socket, where /proc/net/tcp lists every socket of the machine)."""
    sockid = struct.pack("!HH16s16s", local[1], remote[1],
                         socket.inet_aton(local[0]) + bytes(12), socket.inet_aton(remote[0]) + bytes(12))
    sockid += struct.pack("=III", 0, 0xffffffff, 0xffffffff)      # any interface, no cookie
    req = struct.pack("=BBBBI", socket.AF_INET, socket.IPPROTO_TCP, 0, 0, 0xffffffff) + sockid
    msg = struct.pack("=IHHII", 16 + len(req), SOCK_DIAG_BY_FAMILY, 1, 1, 0) + req   # NLM_F_REQUEST
    with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_SOCK_DIAG) as nl:
        nl.settimeout(TIMEOUT)
        nl.send(msg)
        reply = nl.recv(65536)
    _, kind = struct.unpack_from("=IH", reply)
    if kind == NLMSG_ERROR:
        err = -struct.unpack_from("=i", reply, 16)[0]
        if err == 2:            # ENOENT
            return None
        raise OSError(err, os.strerror(err))
    state = reply[16 + 1]
    rqueue, wqueue = struct.unpack_from("=II", reply, 16 + 4 + 48 + 4)
    return TCP_STATES.get(state, state), wqueue, rqueue


def tcp_socket(local_port, remote_port, host="127.0.0.1"):
    """(state, send queue, receive queue) of the loopback TCP socket with
    these local and remote ports (the queues as socket_queues() counts
    them); None when there is none."""
    return _diag_lookup((host, local_port), (host, remote_port))


def task_sleep(pid):
    """(state letter, voluntary context switches) of pid; None once it is
    gone. The same pair read twice, with 'S', means the task slept all the
    time between: the count grows each time it goes to sleep."""
    try:
        with open("/proc/%d/status" % pid) as f:
            status = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    state = re.search(r"^State:\s+(\S)", status, re.M)
    switches = re.search(r"^voluntary_ctxt_switches:\s+(\d+)", status, re.M)
    if not state or not switches:
        return None
    return state.group(1), int(switches.group(1))


class StalledClient:
    """A client that sends and never reads, until its worker holds bytes it
    has read but cannot write back: the worker sleeps (in ppoll, waiting to
    write) and no byte moves between the two ends any more.

    A tiny receive buffer keeps the bytes on their way back few. How many bytes the worker
    has read is computed from the queues: everything sent, less what still
    sits in the client's send queue and in the worker's receive queue. The
    snapshots are taken in an order that makes `worker_read` a lower bound
    and `worker_wrote` an upper bound even while bytes move, and the worker
    is proven asleep across them.

    `payload(offset, n)` gives the bytes to send at offset."""

    SETTLE = 0.3        # queues unchanged this long (above the 200 ms delayed-ACK limit)

    def __init__(self, d, payload, rcvbuf=4096, sndbuf=65536, timeout=TIMEOUT):
        self.d = d
        self.payload = payload
        self.sent = 0
        self.received = 0
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
        s.settimeout(timeout)
        s.connect(("127.0.0.1", d.port))
        self.sock = s
        self.port = s.getsockname()[1]
        # One byte there and back: the worker exists and serves us.
        self.send_all(1)
        self.recv_exactly(1)
        d.wait_workers(1)
        self.worker = self._own_worker()

    def _own_worker(self):
        def find():
            for pid in self.d.workers():
                if ("]:%d" % self.port) in cmdline(pid):
                    return pid
            return None
        return wait_until(find, what="the worker of port %d" % self.port)

    def send_all(self, n):
        self.sock.sendall(self.payload(self.sent, n))
        self.sent += n

    def recv_exactly(self, n):
        got = read_exactly(self.sock, n)
        self.check(got)
        return got

    def check(self, got):
        want = self.payload(self.received, len(got))
        if got != want:
            i = next(i for i in range(len(got)) if got[i] != want[i])
            raise AssertionError("echoed byte %d differs" % (self.received + i))
        self.received += len(got)

    def snapshot(self):
        """The connection's state, or None if the worker is not certainly
        asleep while it is taken. Client send queue first and worker
        receive queue after bound the bytes the worker has read from below;
        worker send queue first and client receive queue after bound what
        it has written from above."""
        before = task_sleep(self.worker)
        outq, _ = socket_queues(self.sock)
        w = tcp_socket(self.d.port, self.port)
        _, inq = socket_queues(self.sock)
        after = task_sleep(self.worker)
        if before is None or before != after or before[0] != "S" or w is None:
            return None
        state, wtx, wrx = w
        return {"switches": before[1], "state": state, "client_sendq": outq, "client_recvq": inq,
                "worker_sendq": wtx, "worker_recvq": wrx,
                "worker_read": self.sent - outq - wrx,
                "worker_wrote": wtx + inq + self.received}

    def fill(self):
        """Sends until the client's socket takes no more."""
        self.sock.setblocking(False)
        try:
            while True:
                self.sent += self.sock.send(self.payload(self.sent, 65536))
        except BlockingIOError:
            pass
        finally:
            self.sock.settimeout(TIMEOUT)

    def holds_bytes(self, snap):
        return (snap is not None and snap["state"] == "ESTABLISHED"
                and snap["worker_read"] > snap["worker_wrote"]
                and snap["client_sendq"] + snap["worker_recvq"] > 0)

    def stall(self, timeout=TIMEOUT):
        """Sends until the worker is stuck holding unechoed bytes; returns
        that state (see snapshot()), with "awake" (time.monotonic() when the
        worker was last seen outside the sleep it is stuck in) and "settled"
        (when that was established). Stuck: asleep (in ppoll, as it waits to
        write the bytes it holds), and neither its reading nor the bytes on
        their way back move for SETTLE. Nothing is sent while the worker
        sleeps holding bytes: it would only fill the worker's receive queue."""
        deadline = time.monotonic() + timeout
        awake = time.monotonic()
        key = lambda x: (x["switches"], x["worker_read"], x["worker_sendq"], x["client_recvq"])
        while time.monotonic() < deadline:
            snap = self.snapshot()
            if not self.holds_bytes(snap):
                awake = time.monotonic()
                self.fill()
                # Only paces the loop: what counts is the state above.
                select.select([], [self.sock], [], 0.02)
                continue
            since, last = time.monotonic(), snap
            while self.holds_bytes(snap) and key(snap) == key(last):
                if time.monotonic() - since >= self.SETTLE:
                    snap.update(awake=awake, settled=time.monotonic())
                    return snap
                time.sleep(0.02)
                snap = self.snapshot()
            if snap is None or snap["switches"] != last["switches"]:
                awake = time.monotonic()
        raise AssertionError("worker %d never stalled (last state %s)" % (self.worker, self.snapshot()))

    def wait_woken(self, switches, timeout=TIMEOUT):
        """Waits until the worker has woken from the sleep that had this
        switch count (or is gone)."""
        def woken():
            t = task_sleep(self.worker)
            return t is None or t[1] != switches
        wait_until(woken, timeout, "worker %d to wake" % self.worker)

    def read_to_end(self):
        """Reads until EOF; returns how many bytes came (checked against
        what was sent). A reset raises ConnectionResetError."""
        self.sock.settimeout(TIMEOUT)
        start = self.received
        while True:
            b = self.sock.recv(1 << 20)
            if not b:
                return self.received - start
            self.check(b)

    def close(self):
        self.sock.close()


def parse_journal_record(data):
    """{KEY: value} of one datagram in journald's native protocol."""
    fields, i = {}, 0
    while i < len(data):
        nl = data.index(b"\n", i)
        line = data[i:nl]
        if b"=" in line:
            key, value = line.split(b"=", 1)
            i = nl + 1
        else:
            key = line
            (n,) = struct.unpack_from("<Q", data, nl + 1)
            value = data[nl + 9:nl + 9 + n]
            if data[nl + 9 + n:nl + 10 + n] != b"\n":
                raise AssertionError("bad binary field %r in %r" % (key, data))
            i = nl + 10 + n
        fields[key.decode()] = value.decode(errors="replace")
    return fields


class FakeJournal:
    """Plays journald: a datagram socket of the test's own that echod sends
    its records to ($ECHOD_JOURNAL_SOCKET). With reading on, a thread takes
    every record as it comes (the kernel queues only
    net.unix.max_dgram_qlen datagrams); off, nothing reads it until
    start_reading(), as with a journald that is stuck."""

    def __init__(self, directory, reading=True):
        self.path = os.path.join(directory, "journal")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        os.chmod(self.path, 0o777)
        self.sock.settimeout(0.1)
        self.records = []
        self.lock = threading.Lock()
        self.stopped = False
        self.thread = None
        if reading:
            self.start_reading()

    def start_reading(self):
        """Empties the queue at once (what was sent before is in the
        records when this returns), then reads on in a thread."""
        self.sock.setblocking(False)
        while True:
            try:
                data = self.sock.recv(1 << 20)
            except BlockingIOError:
                break
            with self.lock:
                self.records.append(parse_journal_record(data))
        self.sock.settimeout(0.1)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stopped:
            try:
                data = self.sock.recv(1 << 20)
            except socket.timeout:
                continue
            except OSError:
                return
            rec = parse_journal_record(data)
            with self.lock:
                self.records.append(rec)

    def select(self, **match):
        with self.lock:
            return [r for r in self.records if all(r.get(k) == v for k, v in match.items())]

    def wait(self, count=1, timeout=TIMEOUT, **match):
        return wait_until(lambda: (lambda rs: rs if len(rs) >= count else None)(self.select(**match)),
                          timeout, "%d journal records matching %s (have %d)"
                          % (count, match, len(self.select(**match))))

    def close(self):
        self.stopped = True
        if self.thread:
            self.thread.join()
        self.sock.close()


class Echod:
    """One echod master started in the foreground with a generated config."""

    def __init__(self, config="", port=None, listen=None, args=(), env=None,
                 wait_ready=True, log_target="stderr", tmpdir=None, prefix=(), journal=None, fdstore=False):
        self.tmp = tmpdir or tempfile.mkdtemp(prefix="echod-test-")
        # Started as root, echod drops to nobody: it must still reach the
        # notify socket and re-read its config on reload.
        os.chmod(self.tmp, 0o755)
        # journal="reading" or "stuck": records go to a FakeJournal.
        self.journal = None
        if journal:
            self.journal = FakeJournal(self.tmp, reading=journal == "reading")
            env = dict(env or {}, ECHOD_JOURNAL_SOCKET=self.journal.path)
            log_target = "journal"
        self.port = port if port is not None else free_port()
        if listen is None:
            listen = ['127.0.0.1:%d' % self.port]
        self.config_path = os.path.join(self.tmp, "echod.conf")
        self.log_path = os.path.join(self.tmp, "echod.log")
        self.listen = listen
        self.write_config(config)
        self.args = list(args)
        self.env = env
        self.log_target = log_target
        self.notifications = []
        # fdstore=True: keeps what echod hands over with FDSTORE=1, as
        # systemd does with FileDescriptorStoreMax= set; otherwise the
        # descriptors are closed as they come.
        self.fdstore = [] if fdstore else None     # [(name, fd)]
        self.fdstore_lock = threading.Lock()
        self.proc = None
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify_path = os.path.join(self.tmp, "notify")
        self.notify.bind(self.notify_path)
        os.chmod(self.notify_path, 0o777)
        self.notify.setblocking(False)
        self.start(wait_ready, prefix)

    def write_config(self, body, listen=None):
        if listen is not None:
            self.listen = listen
        text = ""
        if self.listen:
            text += "listen = { %s }\n" % ", ".join('"%s"' % a for a in self.listen)
        text += body
        with open(self.config_path, "w") as f:
            f.write(text)

    def start(self, wait_ready=True, prefix=(), pass_fds=()):
        env = dict(os.environ)
        env["NOTIFY_SOCKET"] = self.notify_path
        env.pop("LISTEN_FDS", None)
        env.pop("LISTEN_PID", None)
        env.pop("LISTEN_FDNAMES", None)
        if self.env:
            env.update(self.env)
        argv = list(prefix) + [ECHOD, "--foreground", "--config", self.config_path]
        if self.log_target:
            argv += ["--log-target", self.log_target]
        argv += self.args
        if getattr(self, "log", None):
            self.log.close()
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=self.log, env=env, pass_fds=pass_fds)
        self.pid = self.proc.pid
        if wait_ready:
            self.wait_notify("READY=1")

    def start_activated(self, listen, options=(), env=()):
        """Stops this echod and starts it again under systemd-socket-activate
        (activate_prefix()); returns once that listens on the last address of
        listen. echod itself starts on the first connection."""
        self.proc.kill()
        self.proc.wait()
        self.start(wait_ready=False, prefix=activate_prefix(listen, self.notify_path, options, env))
        self.wait_log(r"Listening on %s" % re.escape(listen[-1]))

    # -- notifications and logs --

    def _drain_notify(self):
        # Also called from keep_draining()'s thread.
        while True:
            try:
                data, anc, _, _ = self.notify.recvmsg(4096, socket.CMSG_SPACE(64 * 4))
            except BlockingIOError:
                return
            fds = array.array("i")
            for level, kind, cdata in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    fds.frombytes(cdata[:len(cdata) - len(cdata) % fds.itemsize])
            msg = data.decode()
            self._fdstore_message(msg.split("\n"), list(fds))
            self.notifications.append(msg)

    def _fdstore_message(self, lines, fds):
        """What systemd does with FDSTORE=1 and FDSTOREREMOVE=1 (252):
        a removal takes every descriptor of that name; a descriptor already
        stored (the same socket) is not stored twice."""
        fields = dict(l.split("=", 1) for l in lines if "=" in l)
        name = fields.get("FDNAME", "stored")
        with self.fdstore_lock:
            if self.fdstore is not None and fields.get("FDSTOREREMOVE") == "1":
                for n, fd in [e for e in self.fdstore if e[0] == name]:
                    os.close(fd)
                    self.fdstore.remove((n, fd))
            for fd in fds:
                if self.fdstore is None or fields.get("FDSTORE") != "1" or self._stored_already(fd):
                    os.close(fd)
                else:
                    self.fdstore.append((name, fd))

    def _stored_already(self, fd):
        def ident(f):
            st = os.fstat(f)
            return st.st_dev, st.st_ino
        return any(ident(f) == ident(fd) for _, f in self.fdstore)

    def stored_names(self):
        self._drain_notify()
        with self.fdstore_lock:
            return sorted(n for n, _ in self.fdstore)

    def restart(self, extra_fds=(), wait_ready=True):
        """What `systemctl restart` does with an fd store: stops echod
        (SIGTERM, waiting for its exit), then starts it again with the
        stored descriptors as LISTEN_FDS from 3 and their names in
        LISTEN_FDNAMES, followed by extra_fds [(name, fd)] (a socket
        unit's)."""
        self.stop()
        self._drain_notify()
        with self.fdstore_lock:
            passed = list(self.fdstore) + list(extra_fds)
        self.start(wait_ready=wait_ready, prefix=listen_fds_prefix(passed), pass_fds=[fd for _, fd in passed])

    def wait_notify(self, needle, timeout=TIMEOUT, after=0):
        def found():
            self._drain_notify()
            for i, msg in enumerate(self.notifications[after:], after):
                if needle in msg.split("\n"):
                    return i + 1
            if self.proc.poll() is not None:
                raise AssertionError("echod exited with %s before sending %s; log:\n%s"
                                     % (self.proc.returncode, needle, self.read_log()))
            return None
        return wait_until(found, timeout, "notification %r" % needle)

    def read_log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def wait_log(self, pattern, timeout=TIMEOUT, count=1):
        rx = re.compile(pattern)

        def found():
            matches = rx.findall(self.read_log())
            return matches if len(matches) >= count else None
        try:
            return wait_until(found, timeout, "log line /%s/" % pattern)
        except AssertionError:
            raise AssertionError("no log line /%s/ within %ss; log:\n%s"
                                 % (pattern, timeout, self.read_log()))

    def log_count(self, pattern):
        return len(re.findall(pattern, self.read_log()))

    # -- processes --

    def workers(self):
        return [p for p in children_of(self.pid) if proc_state(p) not in (None, "Z")]

    def zombies(self):
        return [p for p in children_of(self.pid) if proc_state(p) == "Z"]

    def wait_workers(self, n, timeout=TIMEOUT):
        return wait_until(lambda: len(self.workers()) == n and not self.zombies(),
                          timeout, "%d workers (have %s)" % (n, self.workers()))

    def wait_until_workers(self, n, timeout=TIMEOUT):
        """The pids of the n running workers, once there are exactly n."""
        return wait_until(lambda: (lambda w: w if len(w) == n else None)(self.workers()),
                          timeout, "%d workers" % n)

    def kill(self, sig):
        os.kill(self.pid, sig)

    def reload(self):
        """SIGHUP and wait for the READY=1 that ends the reload."""
        self._drain_notify()
        mark = len(self.notifications)
        self.kill(signal.SIGHUP)
        self.wait_notify("RELOADING=1", after=mark)
        return self.wait_notify("READY=1", after=mark)

    def stop(self, sig=signal.SIGTERM, timeout=TIMEOUT):
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("echod did not exit within %ss after %s" % (timeout, sig))

    def close(self):
        kids = children_of(self.proc.pid) if self.proc else []
        try:
            if self.proc and self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        finally:
            for k in kids:
                try:
                    os.kill(k, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            self.notify.close()
            for _, fd in self.fdstore or ():
                os.close(fd)
            self.log.close()
            if self.journal:
                self.journal.close()
            shutil.rmtree(self.tmp, ignore_errors=True)


ACTIVATE = shutil.which("systemd-socket-activate")
SANITIZER_VARS = ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS")


def activate_prefix(listen, notify_path, options=(), env=()):
    """The argv prefix that runs a program under systemd-socket-activate:
    a listener on each address of listen ("127.0.0.1:P"), the options
    given (--datagram, --fdname=...), and NOTIFY_SOCKET, the sanitizers'
    options and each "NAME=value" of env passed on to the program."""
    argv = [ACTIVATE]
    for addr in listen:
        argv += ["-l", addr]
    argv += list(options)
    passed = ["NOTIFY_SOCKET=" + notify_path] + [v for v in SANITIZER_VARS if v in os.environ] + list(env)
    for var in passed:
        argv += ["-E", var]
    return argv

# Moves the descriptors named in argv[1] to 3, 4, ... and execs the rest of
# argv with LISTEN_PID set to its own pid (exec keeps it), as systemd does.
_LISTEN_FDS_EXEC = r"""
import fcntl, os, sys
fds = [int(x) for x in sys.argv[1].split(",") if x]
high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 1000) for fd in fds]
for fd in fds:
    os.close(fd)
for i, fd in enumerate(high):
    os.dup2(fd, 3 + i)
    os.close(fd)
os.environ["LISTEN_PID"] = str(os.getpid())
os.execv(sys.argv[2], sys.argv[2:])
"""


def listen_fds_prefix(passed):
    """The argv prefix that starts a program with the descriptors of
    passed [(name, fd)] as LISTEN_FDS (see Echod.restart())."""
    return [sys.executable, "-c", _LISTEN_FDS_EXEC, ",".join(str(fd) for _, fd in passed), "/usr/bin/env",
            "LISTEN_FDS=%d" % len(passed), "LISTEN_FDNAMES=" + ":".join(n for n, _ in passed)]


class EchodTestCase(unittest.TestCase):
    """Starts echods through self.echod(...) and always cleans them up."""

    def require_socket_activate(self):
        """Fails under CI=true, skips elsewhere, without systemd-socket-activate."""
        if ACTIVATE:
            return
        if os.environ.get("CI") == "true":
            self.fail("systemd-socket-activate is missing (package systemd)")
        raise unittest.SkipTest("systemd-socket-activate is missing")

    def echod(self, *args, **kwargs):
        d = Echod(*args, **kwargs)
        self.addCleanup(d.close)
        self.addCleanup(self.check_sanitizers, d)
        return d

    def check_sanitizers(self, d):
        """A sanitizer report in echod's log (master or worker) fails the test."""
        log = d.read_log()
        m = re.search(r"(ERROR: (Address|Leak|Undefined)Sanitizer|runtime error:).*", log)
        if m:
            self.fail("sanitizer report in echod's log:\n" + log[m.start():m.start() + 4000])

    def run_echod(self, args, **kwargs):
        """Runs echod to completion (for -t, -T, bad options)."""
        return subprocess.run([ECHOD] + list(args), capture_output=True, text=True,
                              timeout=TIMEOUT, **kwargs)

    def tmpfile(self, name, text):
        d = tempfile.mkdtemp(prefix="echod-test-")
        self.addCleanup(shutil.rmtree, d, True)
        path = os.path.join(d, name)
        with open(path, "w") as f:
            f.write(text)
        return path


def main():
    # Sockets a failing test leaves open are closed at exit; do not drown the output.
    import warnings
    warnings.simplefilter("ignore", ResourceWarning)
    unittest.main(verbosity=2)
