# SPDX-License-Identifier: MIT
"""allow/deny access lists: longest prefix wins, deny wins a tie, refused
connections are closed at once and logged with the rule."""
import socket

from echodtest import EchodTestCase, free_port, main, try_echo


def echo_from(port, source, data=b"a", host="127.0.0.1", family=socket.AF_INET):
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(20)
    try:
        s.bind((source, 0))
        s.connect((host, port))
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        got = b""
        while True:
            b = s.recv(4096)
            if not b:
                break
            got += b
        return got or None
    except OSError:
        return None
    finally:
        s.close()


class AccessTest(EchodTestCase):
    def test_deny_network_with_allowed_host_inside(self):
        d = self.echod('deny = { "127.0.0.0/24" }\nallow = { "127.0.0.5" }\n')
        self.assertIsNone(echo_from(d.port, "127.0.0.1"))
        d.wait_log(r"refused connection from 127\.0\.0\.1:\d+: denied by 'deny 127\.0\.0\.0/24' \(%s:2\)"
                   % d.config_path.replace(".", r"\."))
        # The longer allow /32 wins over the deny /24.
        self.assertEqual(echo_from(d.port, "127.0.0.5"), b"a")
        # Outside both: allow is not empty, so not served.
        self.assertIsNone(echo_from(d.port, "127.0.1.1"))
        # Refusals are logged at most once a second per reason: this one is
        # counted in the summary that follows.
        d.wait_log(r"1 more connections refused \(refused-access\) and not logged individually")

    def test_deny_wins_a_tie(self):
        d = self.echod('allow = { "127.0.0.0/8" }\ndeny = { "127.0.0.0/8" }\n')
        self.assertIsNone(echo_from(d.port, "127.0.0.1"))

    def test_allow_only(self):
        d = self.echod('allow = { "127.0.0.2/32", "2001:db8::/32" }\n')
        self.assertEqual(echo_from(d.port, "127.0.0.2"), b"a")
        self.assertIsNone(echo_from(d.port, "127.0.0.3"))
        d.wait_log(r"refused connection from 127\.0\.0\.3:\d+: not in any allow network")

    def test_empty_lists_allow_everyone(self):
        d = self.echod("")
        self.assertEqual(try_echo(d.port, b"open"), b"open")

    def test_ipv4_mapped_peer_matches_ipv4_rules(self):
        port = free_port()
        d = self.echod('deny = { "127.0.0.1" }\n', port=port, listen=["[::]:%d" % port])
        self.assertIsNone(echo_from(port, "127.0.0.1"))
        d.wait_log(r"refused connection from 127\.0\.0\.1:\d+: denied by 'deny 127\.0\.0\.1/32'")
        self.assertEqual(echo_from(port, "127.0.0.2"), b"a")

    def test_ipv6_rules(self):
        port = free_port()
        d = self.echod('deny = { "::1/128" }\n', port=port, listen=["[::1]:%d" % port])
        self.assertIsNone(echo_from(port, "::1", host="::1", family=socket.AF_INET6))
        d.wait_log(r"refused connection from \[::1\]:\d+: denied by 'deny ::1/128'")


if __name__ == "__main__":
    main()
