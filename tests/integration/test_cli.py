# SPDX-License-Identifier: MIT
"""Command-line handling: help, version, bad usage exits 2 and starts nothing."""
import re
import socket

from echodtest import EchodTestCase, main


class CliTest(EchodTestCase):
    def test_help(self):
        r = self.run_echod(["--help"])
        self.assertEqual(r.returncode, 0)
        for opt in ["--config", "--foreground", "--test-config", "--dump-config", "--pid-file",
                    "--log-level", "--log-target", "--inetd", "--help", "--version"]:
            self.assertIn(opt, r.stdout)

    def test_version(self):
        r = self.run_echod(["-V"])
        self.assertEqual(r.returncode, 0)
        self.assertRegex(r.stdout, r"^echod \d+\.\d+\.\d+\n$")

    def test_bad_usage_exits_2(self):
        for args, message in [(["--bogus"], "unrecognized option"),
                              (["-x"], "invalid option"),
                              (["-c"], "requires an argument"),
                              (["-l", "loud"], "invalid log level 'loud'"),
                              (["--log-target", "syslog"], "invalid log target 'syslog'"),
                              (["extra"], "unexpected argument 'extra'"),
                              (["-c", ""], "--config needs a file name")]:
            r = self.run_echod(args)
            self.assertEqual(r.returncode, 2, args)
            self.assertTrue(re.search(re.escape(message), r.stderr), (args, r.stderr))

    def test_exit_statuses(self):
        # One per documented class: 0 success, 1 runtime, 2 usage, 6 config.
        good = self.tmpfile("good.conf", "max_connections = 5\n")
        bad = self.tmpfile("bad.conf", "max_connections = many\n")
        with socket.socket() as busy:
            busy.bind(("127.0.0.1", 0))
            busy.listen(1)
            taken = self.tmpfile("taken.conf", 'listen = { "127.0.0.1:%d" }\n' % busy.getsockname()[1])
            for args, status in [(["-t", "-c", good], 0),
                                 (["-f", "--log-target", "stderr", "-c", taken], 1),
                                 (["--bogus"], 2),
                                 (["-t", "-c", bad], 6),
                                 (["-f", "--log-target", "stderr", "-c", bad], 6),
                                 (["-f", "--log-target", "stderr", "-c", bad + ".missing"], 6)]:
                r = self.run_echod(args)
                self.assertEqual(r.returncode, status, (args, r.stderr))


if __name__ == "__main__":
    main()
