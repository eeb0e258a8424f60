# SPDX-License-Identifier: MIT
"""--test-config and --dump-config on good and bad files, line numbers in
commented files, and start-up with an invalid file (exit 6)."""
import os

from echodtest import EchodTestCase, free_port, main

TOP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
SHIPPED = os.path.join(TOP, "conf", "echod.conf")


class ConfigTest(EchodTestCase):
    def test_shipped_config_is_valid(self):
        r = self.run_echod(["-t", "-c", SHIPPED])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.strip(), "%s: configuration OK" % SHIPPED)

    def test_shipped_config_is_at_defaults(self):
        # Every key in the shipped file is commented out at its default: the
        # file and an empty file give the same effective configuration.
        empty = self.tmpfile("empty.conf", "")
        a = self.run_echod(["-T", "-c", SHIPPED])
        b = self.run_echod(["-T", "-c", empty])
        self.assertEqual(a.returncode, 0, a.stderr)
        strip = lambda out: [l for l in out.splitlines() if not l.startswith("#")]  # noqa: E731
        self.assertEqual(strip(a.stdout), strip(b.stdout))
        # ...and every key that -T prints is documented in the shipped file.
        with open(SHIPPED) as f:
            shipped = f.read()
        for line in strip(a.stdout):
            key = line.split("=")[0].strip()
            self.assertIn("#%s = " % key, shipped)

    def test_dump_defaults(self):
        r = self.run_echod(["-T", "-c", self.tmpfile("e.conf", "")])
        self.assertEqual(r.returncode, 0)
        for line in ['listen = { "[::]:7" }', "backlog = 128", "max_connections = 512",
                     "max_connections_per_source = 32", "idle_timeout = 5m", 'user = ""',
                     'group = ""', 'log_level = "info"', "log_connections = close",
                     "log_rate = 200", "log_rate_burst = 2000", "log_payload = false",
                     "source_prefix_v4 = 32", "source_prefix_v6 = 64",
                     "rate_limit = 0", "rate_limit_per_source = 20", "rate_limit_per_source_burst = 40",
                     "session_timeout = 1h", "max_bytes = 0", 'metrics_file = ""', "metrics_interval = 15s",
                     "shutdown_timeout = 10s", "allow = { }", "deny = { }"]:
            self.assertIn(line + "\n", r.stdout)

    def test_dump_round_trips(self):
        src = self.tmpfile("a.conf", 'listen = { "127.0.0.1:7007", "[::1]:7008" }\n'
                           "idle_timeout = 90\nmax_bytes = 64M\n"
                           'allow = { "10.0.0.0/8", "2001:db8::/32" }\ndeny = { "10.1.0.0/16" }\n'
                           'log_level = "debug"\n')
        first = self.run_echod(["-T", "-c", src])
        self.assertEqual(first.returncode, 0, first.stderr)
        again = self.tmpfile("b.conf", first.stdout)
        second = self.run_echod(["-T", "-c", again])
        self.assertEqual(second.returncode, 0, second.stderr)
        self.assertEqual(first.stdout.splitlines()[1:], second.stdout.splitlines()[1:])
        self.assertIn("idle_timeout = 90s\n", first.stdout)
        self.assertIn("max_bytes = 67108864\n", first.stdout)

    def check_errors(self, text, expected):
        path = self.tmpfile("bad.conf", text)
        r = self.run_echod(["-t", "-c", path])
        self.assertEqual(r.returncode, 6, r.stdout + r.stderr)
        lines = r.stderr.strip().splitlines()
        for line_no, fragment in expected:
            want = "%s:%d: %s" % (path, line_no, fragment)
            self.assertTrue(any(l.startswith(want) for l in lines),
                            "expected %r in:\n%s" % (want, r.stderr))
        return lines

    def test_line_numbers_after_hash_comments(self):
        # libconfuse 3.3 alone reports this as line 10.
        self.check_errors("# one\n# two\n# three\nbogus = 1\n", [(4, "no such option 'bogus'")])

    def test_line_numbers_after_block_comment(self):
        self.check_errors("/* a\n b\n c */\nbacklog = many\n", [(4, "backlog: invalid value 'many'")])

    def test_line_numbers_in_a_commented_operator_file(self):
        text = ("# echod configuration\n"            # 1
                "// maintained by ops\n"             # 2
                "listen = { \"127.0.0.1:7\", # first\n"   # 3
                "  \"[::1]:99999\" }  /* second */\n"     # 4
                "\n"                                 # 5
                "/* limits\n"                        # 6
                "   below */ max_connections = -1\n" # 7
                "idle_timeout = \"5 minutes\" # typo\n"   # 8
                "deny = { \"#not-a-comment\" }\n")    # 9
        lines = self.check_errors(text, [
            (4, "listen: invalid port in '[::1]:99999'"),
            (7, "max_connections: invalid value '-1'"),
            (8, "idle_timeout: invalid duration '5 minutes'"),
            (9, "deny: invalid network '#not-a-comment'"),
        ])
        self.assertEqual(len(lines), 4, lines)

    def test_every_rejection_names_file_line_and_key(self):
        self.check_errors(
            'listen = { "localhost:7" }\n'              # 1
            "backlog = 0\n"                            # 2
            "max_connections = 12abc\n"                # 3
            "max_connections_per_source = 0x10\n"      # 4
            "idle_timeout = 5x\n"                      # 5
            'log_level = "chatty"\n'                   # 6
            "log_connections = maybe\n"                # 7
            'user = "no-such-user-echod"\n'            # 8
            'allow = { "300.1.1.1" }\n'                # 9
            'deny = { "192.0.2.1/24" }\n'              # 10
            "source_prefix_v4 = 33\n"                  # 11
            "max_bytes = 1Q\n",                        # 12
            [(1, "listen: invalid address 'localhost:7'"),
             (2, "backlog: invalid value '0'"),
             (3, "max_connections: invalid value '12abc'"),
             (4, "max_connections_per_source: invalid value '0x10'"),
             (5, "idle_timeout: invalid duration '5x'"),
             (6, "log_level: invalid level 'chatty'"),
             (7, "log_connections: invalid value 'maybe': expected close, all, errors or off"),
             (8, "user: no such user 'no-such-user-echod'"),
             (9, "allow: invalid network '300.1.1.1'"),
             (10, "deny: '192.0.2.1/24' has address bits set"),
             (11, "source_prefix_v4: invalid value '33'"),
             (12, "max_bytes: invalid size '1Q'")])

    def test_unset_variable_is_caught(self):
        env = dict(os.environ)
        env.pop("ECHOD_TEST_UNSET", None)
        path = self.tmpfile("env.conf", "# ports come from the environment\n"
                                        'listen = { "127.0.0.1:${ECHOD_TEST_UNSET}" }\n'
                                        "backlog = ${ECHOD_TEST_UNSET}\n")
        r = self.run_echod(["-t", "-c", path], env=env)
        self.assertEqual(r.returncode, 6)
        self.assertIn("%s:2: listen: invalid address '127.0.0.1:'" % path, r.stderr)
        self.assertIn("%s:3: backlog: empty value (an unset ${VARIABLE}?)" % path, r.stderr)

    def test_set_variable_is_used(self):
        path = self.tmpfile("env.conf", "backlog = ${ECHOD_TEST_BACKLOG}\n")
        r = self.run_echod(["-T", "-c", path], env=dict(os.environ, ECHOD_TEST_BACKLOG="77"))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("backlog = 77\n", r.stdout)

    def test_duplicate_listen(self):
        self.check_errors('listen = { "127.0.0.1:7", "127.0.0.1:7" }\n',
                          [(1, "listen: address '127.0.0.1:7' is listed twice")])

    def test_ipv4_mapped_listen_address(self):
        self.check_errors('listen = { "[::ffff:127.0.0.1]:7" }\n',
                          [(1, "listen: '[::ffff:127.0.0.1]:7' is an IPv4-mapped IPv6 address")])

    def test_non_ascii_outside_strings(self):
        self.check_errors("# caf\u00e9 is fine in a comment\nbacklog = 1\u00a02\n",
                          [(2, "invalid character outside a quoted string")])

    def test_missing_file(self):
        r = self.run_echod(["-t", "-c", "/nonexistent/echod.conf"])
        self.assertEqual(r.returncode, 6)
        self.assertIn("/nonexistent/echod.conf: cannot open: No such file or directory", r.stderr)

    def test_start_with_invalid_config_exits_6_and_says_why(self):
        port = free_port()
        path = self.tmpfile("bad.conf", 'listen = { "127.0.0.1:%d" }\nbacklog = -5\n' % port)
        r = self.run_echod(["-f", "--log-target", "stderr", "-c", path])
        self.assertEqual(r.returncode, 6)
        self.assertIn("%s:2: backlog: invalid value '-5'" % path, r.stderr)
        self.assertIn("not starting", r.stderr)


if __name__ == "__main__":
    main()
