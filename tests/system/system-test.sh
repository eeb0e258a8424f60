#!/bin/bash
# SPDX-License-Identifier: MIT
#
# System test: builds the Debian package, boots a minimal Debian 12 with a
# real systemd in a container, and does what an operator does there:
# install with apt, echo through port 7, read the journal, restart without
# refusing a connection, upgrade to a newer package while a session echoes,
# run the package's autopkgtest, reload good and broken configurations,
# switch to socket activation, stop, purge.
#
# Usage: system-test.sh [SOURCE_DIR]
# Environment:
#   ECHOD_DEB=FILE              test this .deb instead of building one
#   ECHOD_SYSTEST_CACHE=DIR     where the debootstrapped tree is cached
#                               (default /var/cache/echod-systest)
#   ECHOD_SYSTEST_MIRROR=URL    Debian mirror (default http://deb.debian.org/debian)
#   ECHOD_SYSTEST_KEEP=1        keep the work directory after the test
#   CI=true                     a missing prerequisite fails instead of skipping
#
# Exit status: 0 passed, 1 failed, 77 skipped (meson's code) when something
# it needs is missing and CI is not true.
#
# The container shares the host's network (apt needs the archive), so the
# test first checks that port 7 is free on the host and picks a free port
# for the extra listener of the reload step.

set -euo pipefail
shopt -s nullglob

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRCDIR=$(cd "${1:-$HERE/../..}" && pwd)
CLIENT=(python3 "$HERE/echo-client.py")
CACHE=${ECHOD_SYSTEST_CACHE:-/var/cache/echod-systest}
MIRROR=${ECHOD_SYSTEST_MIRROR:-http://deb.debian.org/debian}
SUITE=bookworm
INCLUDE=systemd,systemd-sysv,dbus
CACHE_FORMAT=1          # bump when the way the tree is made changes
CACHE_MAX_AGE_DAYS=14
CONF=/etc/echod.conf
PORT=7

T0=$SECONDS
STEP=start
WORK=
NSPAWN_PID=
CT_PID=
COMPLETED=no    # set by the last line: an early exit 0 must not pass

# ---------------------------------------------------------------- output

say()  { printf '[%4ds] %s\n' $((SECONDS - T0)) "$*"; }
step() { STEP=$*; printf '\n[%4ds] === %s\n' $((SECONDS - T0)) "$*"; }
ok()   { say "ok: $*"; }
fail() { say "FAIL: $*" >&2; exit 1; }

# A prerequisite is missing: skip (77), or fail when running in CI.
need() {
        if [[ ${CI:-} == true ]]; then
                say "FAIL: $* (CI=true: a missing prerequisite is a failure)" >&2
                exit 1
        fi
        say "SKIP: $*" >&2
        exit 77
}

# ---------------------------------------------------------------- cleanup

dump_container_state() {
        [[ -n $CT_PID ]] && kill -0 "$CT_PID" 2>/dev/null || return 0
        say "--- systemctl status echod* (container) ---"
        ct 20 systemctl status --no-pager -l 'echod*' 2>&1 | tail -n 60 || true
        say "--- journalctl -u echod* (container, last 80 lines) ---"
        ct 20 journalctl --no-pager -n 80 -u 'echod*' 2>&1 || true
}

cleanup() {
        local rc=$?
        trap - EXIT INT TERM
        set +e
        if ((rc == 0)) && [[ $COMPLETED != yes ]]; then
                say "FAIL: the test ended early without an error" >&2
                rc=1
        fi
        if ((rc != 0 && rc != 77)); then
                dump_container_state
        fi
        if [[ -n $NSPAWN_PID ]] && kill -0 "$NSPAWN_PID" 2>/dev/null; then
                say "stopping the container (systemd-nspawn pid $NSPAWN_PID)"
                # SIGTERM makes nspawn power the container off cleanly.
                kill -TERM "$NSPAWN_PID"
                local deadline=$((SECONDS + 30))
                while kill -0 "$NSPAWN_PID" 2>/dev/null && ((SECONDS < deadline)); do
                        sleep 0.2
                done
                if kill -0 "$NSPAWN_PID" 2>/dev/null; then
                        say "container did not power off in 30 s, killing it"
                        kill -KILL "$NSPAWN_PID"
                fi
                wait "$NSPAWN_PID" 2>/dev/null
        fi
        if [[ -n $WORK ]]; then
                if [[ ${ECHOD_SYSTEST_KEEP:-} == 1 ]]; then
                        say "work directory kept: $WORK"
                else
                        rm -rf --one-file-system "$WORK"
                fi
        fi
        if ((rc == 0)); then
                say "system test passed in $((SECONDS - T0)) s"
        elif ((rc != 77)); then
                say "system test FAILED in '$STEP' after $((SECONDS - T0)) s" >&2
        fi
        exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- helpers

# ct TIMEOUT CMD...: runs CMD inside the container, bounded by TIMEOUT s.
ct() {
        local t=$1
        shift
        timeout --kill-after=5 "$t" nsenter -t "$CT_PID" -a \
                env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 TERM=dumb \
                DEBIAN_FRONTEND=noninteractive SYSTEMD_PAGER= SYSTEMD_COLORS=0 "$@"
}

# ct_sh TIMEOUT SCRIPT: runs a shell script inside the container.
ct_sh() { ct "$1" /bin/sh -c "$2"; }

# poll TIMEOUT DESCRIPTION CMD...: retries CMD until it succeeds or the
# deadline passes.
poll() {
        local t=$1 what=$2
        shift 2
        local deadline=$((SECONDS + t))
        while ! "$@" >/dev/null 2>&1; do
                if ((SECONDS >= deadline)); then
                        fail "$what: not within $t s"
                fi
                sleep 0.2
        done
}

client() { timeout 60 "${CLIENT[@]}" "$@"; }

echo_ok() {
        local out
        out=$(client roundtrip "$1" "$2" ${3:+--size "$3"}) || fail "no echo from $1 port $2"
        LAST_LOCAL_PORT=$(sed -n 's/^local_port=//p' <<<"$out")
        ok "$(head -n1 <<<"$out")"
}

# The pids of processes running /usr/sbin/echod in the container.
echod_pids() {
        ct_sh 20 'for p in /proc/[0-9]*; do
                [ "$(readlink "$p/exe" 2>/dev/null)" = /usr/sbin/echod ] && echo "${p#/proc/}"
        done; true'
}

unit_prop() { ct 20 systemctl show -P "$2" "$1"; }

journal_has() {   # journal_has UNIT-PATTERN GREP-PATTERN (in -o verbose output)
        ct 20 journalctl --no-pager -o verbose -u "$1" | grep -- "$2" >/dev/null
}

# ---------------------------------------------------------------- prerequisites

step "prerequisites"
((EUID == 0)) || need "must run as root (debootstrap, systemd-nspawn, nsenter)"
for cmd in debootstrap systemd-nspawn nsenter python3 timeout flock dpkg-deb; do
        command -v "$cmd" >/dev/null || need "$cmd not found (apt-get build-dep ./ installs it)"
done
if [[ -z ${ECHOD_DEB:-} ]]; then
        command -v dpkg-buildpackage >/dev/null || need "dpkg-buildpackage not found (dpkg-dev)"
fi
[[ -d /sys/fs/cgroup ]] || need "no cgroup file system: systemd cannot boot in a container here"
# The container shares the host's network, port 7 included: one system
# test at a time on a host, whoever started it.
exec 8>/run/echod-systest.lock
flock -w 1800 8 || fail "another system test has held /run/echod-systest.lock for 30 minutes"
"${CLIENT[@]}" port-free "$PORT" || need "port $PORT is in use on this host; the container shares the host's network"
ip -6 addr show dev lo 2>/dev/null | grep -q '::1' ||
        python3 -c 'import socket; socket.socket(socket.AF_INET6).bind(("::1", 0))' 2>/dev/null ||
        need "no IPv6 loopback (::1) on this host"
# The archive must answer: apt in the container installs echod's dependencies.
python3 - "$MIRROR" <<'EOF' || need "the Debian archive ($MIRROR) cannot be reached"
import sys, urllib.request
urllib.request.urlopen(sys.argv[1].rstrip("/") + "/dists/bookworm/Release", timeout=20).read(64)
EOF
ok "root, tools, port $PORT free, ::1, $MIRROR reachable"

WORK=$(mktemp -d /var/tmp/echod-systest.XXXXXX)
say "work directory: $WORK"

# ---------------------------------------------------------------- package

step "the Debian package"
if [[ -n ${ECHOD_DEB:-} ]]; then
        [[ -f $ECHOD_DEB ]] || fail "ECHOD_DEB=$ECHOD_DEB: no such file"
        DEB=$ECHOD_DEB
        CHANGES=
        say "using the prebuilt $DEB"
else
        # Build from a copy, so the checkout stays clean: tracked files and
        # untracked ones that are not ignored (work in progress is tested).
        mkdir "$WORK/src"
        if git -C "$SRCDIR" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
                (cd "$SRCDIR" && git ls-files -z --cached --others --exclude-standard |
                        while IFS= read -r -d '' f; do [[ -e $f ]] && printf '%s\0' "$f"; done |
                        tar --null -T - -cf -) | tar -C "$WORK/src" -xf -
        else
                tar -C "$SRCDIR" --exclude=.git --exclude='build*' --exclude='obj-*' -cf - . |
                        tar -C "$WORK/src" -xf -
        fi
        if ! out=$(cd "$WORK/src" && dpkg-checkbuilddeps 2>&1); then
                printf '    %s\n' "$out" >&2
                need "build dependencies missing (run: apt-get build-dep ./)"
        fi
        say "dpkg-buildpackage -us -uc -b (log: $WORK/build.log)"
        if ! (cd "$WORK/src" && timeout 900 dpkg-buildpackage -us -uc -b) >"$WORK/build.log" 2>&1; then
                tail -n 60 "$WORK/build.log" >&2
                fail "dpkg-buildpackage failed"
        fi
        debs=("$WORK"/echod_*.deb)
        ((${#debs[@]} == 1)) || fail "expected one echod_*.deb, found ${#debs[@]}"
        DEB=${debs[0]}
        changes=("$WORK"/echod_*.changes)
        CHANGES=${changes[0]:-}
        ok "built $(basename "$DEB")"
fi

# The package's own checks: lintian and hardening-check.
if command -v lintian >/dev/null; then
        say "lintian --pedantic $(basename "${CHANGES:-$DEB}")"
        if ! timeout 600 lintian --pedantic --fail-on error,warning "${CHANGES:-$DEB}" 2>&1 |
                sed 's/^/    /'; then
                fail "lintian reported errors or warnings"
        fi
        ok "lintian: no errors or warnings"
else
        need "lintian not found"
fi
if command -v hardening-check >/dev/null; then
        mkdir "$WORK/deb"
        dpkg-deb -x "$DEB" "$WORK/deb"
        # --nocfprotection: bookworm's crt1.o/crti.o carry no IBT/SHSTK
        # notes, so no binary linked on bookworm has them (see debian/rules).
        if ! hardening-check --nocfprotection "$WORK/deb/usr/sbin/echod" "$WORK/deb/usr/bin/echoc" |
                sed 's/^/    /'; then
                fail "hardening-check found missing hardening"
        fi
        ok "hardening-check: /usr/sbin/echod and /usr/bin/echoc are hardened"
else
        need "hardening-check not found (devscripts)"
fi

# ---------------------------------------------------------------- container

step "a minimal Debian $SUITE with systemd"
KEY=$( { echo "$CACHE_FORMAT $SUITE $INCLUDE $MIRROR $(dpkg --print-architecture)"
         debootstrap --version 2>/dev/null || dpkg-query -W debootstrap; } | sha256sum | cut -c1-16)
TREE=$CACHE/$SUITE-$KEY
mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock -w 900 9 || fail "another system test holds $CACHE/.lock"
if [[ -f $TREE/.complete ]] && [[ -z $(find "$TREE/.complete" -mtime +"$CACHE_MAX_AGE_DAYS") ]] &&
   [[ -x $TREE/root/lib/systemd/systemd && -x $TREE/root/usr/bin/apt-get && -x $TREE/root/usr/bin/dbus-daemon ]]; then
        say "using the cached tree $TREE"
else
        # Stale, broken or missing: rebuild it, and drop trees of other keys.
        for old in "$CACHE/$SUITE"-*; do
                [[ $old == "$TREE" ]] || rm -rf --one-file-system "$old"
        done
        rm -rf --one-file-system "$TREE"
        mkdir -p "$TREE"
        say "debootstrap --variant=minbase --include=$INCLUDE $SUITE (log: $TREE/debootstrap.log)"
        if ! timeout 900 debootstrap --variant=minbase --include="$INCLUDE" "$SUITE" "$TREE/root" "$MIRROR" \
                >"$TREE/debootstrap.log" 2>&1; then
                tail -n 30 "$TREE/debootstrap.log" >&2
                rm -rf --one-file-system "$TREE"
                fail "debootstrap failed"
        fi
        # No getty on the container's console: nothing reads it.
        ln -sf /dev/null "$TREE/root/etc/systemd/system/console-getty.service"
        touch "$TREE/.complete"
        ok "tree cached in $TREE"
fi
cp -a --reflink=auto "$TREE/root" "$WORK/root"
flock -u 9
exec 9>&-

# /tmp is a fresh tmpfs in the container: put the package in /srv.
cp "$DEB" "$WORK/root/srv/"
chmod 0644 "$WORK/root/srv/$(basename "$DEB")"
DEB_IN_CT=/srv/$(basename "$DEB")

say "systemd-nspawn -D $WORK/root -b --register=no --keep-unit (console: $WORK/console.log)"
systemd-nspawn -D "$WORK/root" -b --register=no --keep-unit --machine=echod-systest \
        --resolv-conf=copy-host --console=read-only </dev/null >"$WORK/console.log" 2>&1 &
NSPAWN_PID=$!

# The container's systemd: the descendant of nspawn whose name is systemd.
find_ct_pid() {
        local p c
        for p in $(pgrep -P "$NSPAWN_PID") $(for c in $(pgrep -P "$NSPAWN_PID"); do pgrep -P "$c"; done); do
                if [[ $(cat "/proc/$p/comm" 2>/dev/null) == systemd ]]; then
                        CT_PID=$p
                        return 0
                fi
        done
        return 1
}
deadline=$((SECONDS + 60))
until find_ct_pid; do
        kill -0 "$NSPAWN_PID" 2>/dev/null || { tail -n 30 "$WORK/console.log" >&2; fail "systemd-nspawn exited"; }
        ((SECONDS < deadline)) || fail "no systemd in the container after 60 s"
        sleep 0.2
done
say "container systemd: pid $CT_PID"
# systemctl needs systemd's private socket, which appears a moment later.
poll 60 "systemd's control socket in the container" ct 10 test -S /run/systemd/private
state=$(ct 120 systemctl is-system-running --wait || true)
case $state in
running) ok "container booted: $state" ;;
degraded)
        say "container booted degraded; failed units:"
        ct 20 systemctl --failed --no-legend --no-pager | sed 's/^/    /'
        ;;
*) tail -n 30 "$WORK/console.log" >&2; fail "container did not boot (state: ${state:-none})" ;;
esac

# ---------------------------------------------------------------- 1: install

step "step 1: apt install ./$(basename "$DEB")"
ct 300 apt-get -q update >"$WORK/apt.log" 2>&1 || { tail -n 20 "$WORK/apt.log" >&2; fail "apt-get update"; }
ct 600 apt-get -q -y install "$DEB_IN_CT" >>"$WORK/apt.log" 2>&1 ||
        { tail -n 40 "$WORK/apt.log" >&2; fail "apt-get install $DEB_IN_CT"; }
ok "installed: $(ct 10 dpkg-query -W -f '${Package} ${Version} ${Status}' echod)"
ct 10 test -f "$CONF" || fail "$CONF missing"
ct 10 dpkg-query --showformat '${Conffiles}\n' --show echod | grep " $CONF " >/dev/null ||
        fail "$CONF is not a conffile"
ok "$CONF is a conffile"
# The account a root-started echod runs as; the units use DynamicUser=.
acct=$(ct 10 getent passwd _echod) || fail "the package did not create the _echod user"
[[ $acct == *:/usr/sbin/nologin ]] || fail "_echod can log in: $acct"
ok "user _echod created: $acct"
[[ $(ct 10 systemctl is-enabled echod.service) == enabled ]] || fail "echod.service is not enabled"
for u in echod.socket echod-inetd.socket; do
        st=$(ct 10 systemctl is-enabled "$u" || true)
        [[ $st == disabled ]] || fail "$u is '$st', expected disabled"
done
ok "echod.service enabled; echod.socket and echod-inetd.socket installed, disabled"
if ct 10 sh -c '[ -e /bin/kill ] || [ -e /usr/bin/kill ]'; then
        say "note: this system has a kill binary; the reload is not tested without procps"
else
        ok "no /bin/kill here (procps absent): the reload below must do without it"
fi

# ---------------------------------------------------------------- 2: serve

step "step 2: echod is active and echoes on port $PORT"
poll 30 "echod.service active" ct 10 systemctl is-active --quiet echod
ok "systemctl is-active echod: $(ct 10 systemctl is-active echod)"
poll 30 "port $PORT answering" client wait-port 127.0.0.1 "$PORT"
echo_ok 127.0.0.1 "$PORT"
V4_PORT=$LAST_LOCAL_PORT
echo_ok ::1 "$PORT"
V6_PORT=$LAST_LOCAL_PORT
echo_ok 127.0.0.1 "$PORT" $((4 * 1024 * 1024))
uid=$(ct_sh 10 "stat -c %u /proc/$(unit_prop echod MainPID)")
[[ $uid != 0 ]] || fail "echod runs as root"
ok "echod runs as uid $uid, not root"
poll 20 "journal record with REMOTE_ADDR=127.0.0.1 REMOTE_PORT=$V4_PORT" \
        journal_has echod.service "REMOTE_PORT=$V4_PORT\$"
ct 20 journalctl --no-pager -o verbose -u echod "REMOTE_PORT=$V4_PORT" | grep 'REMOTE_ADDR=127.0.0.1$' >/dev/null ||
        fail "the record of local port $V4_PORT lacks REMOTE_ADDR=127.0.0.1"
poll 20 "journal record with REMOTE_ADDR=::1 REMOTE_PORT=$V6_PORT" \
        journal_has echod.service "REMOTE_PORT=$V6_PORT\$"
ct 20 journalctl --no-pager -o verbose -u echod "REMOTE_PORT=$V6_PORT" | grep 'REMOTE_ADDR=::1$' >/dev/null ||
        fail "the record of local port $V6_PORT lacks REMOTE_ADDR=::1"
ok "journalctl -u echod shows both connections with REMOTE_ADDR and REMOTE_PORT:"
ct 20 journalctl --no-pager -u echod "REMOTE_PORT=$V4_PORT" + "REMOTE_PORT=$V6_PORT" | sed 's/^/    /'
ct 20 journalctl --no-pager -u echod -o verbose -n 1 "REMOTE_PORT=$V4_PORT" |
        grep -E '^ +(MESSAGE_ID|REMOTE_ADDR|REMOTE_PORT|LOCAL_PORT|WORKER_PID|BYTES|DURATION_USEC|CLOSE_REASON)=' |
        sed 's/^ */    /'
ct 20 journalctl --no-pager -x -u echod | grep 'Subject: echod connection' >/dev/null ||
        fail "journalctl -x shows no catalog text (catalog not installed or not indexed)"
ok "journalctl -x explains the records (catalog installed)"

# One record per connection, written by the master (a long-lived process,
# so journald ties every record to the unit), none by the short-lived
# workers. The master never waits for journald: a record the journal's
# socket has no room for is counted instead, in a summary record within
# 10 s. So 200 short connections give close records plus summarised
# connections of exactly 200 and, with log_connections = close, no open
# records. Count them exactly.
OPEN_ID=fb8492e167704a2bbbc8cb13f049d770 CLOSE_ID=b8891436a2ba4f56b2ec6232e48a8db5
SUMMARY_ID=6bdb164a2dbf48a08f7bfadc62fb1b9f
count_records() { ct 20 journalctl --no-pager -o cat -u echod "MESSAGE_ID=$1" | wc -l; }
count_summarised() {
        ct 20 journalctl --no-pager -o verbose -u echod "MESSAGE_ID=$SUMMARY_ID" |
                sed -n 's/^ *CONNECTIONS=//p' | awk '{ n += $1 } END { print n + 0 }'
}
accounted() { echo $(( $(count_records $CLOSE_ID) - closes0 + $(count_summarised) - summarised0 )); }
opens0=$(count_records $OPEN_ID) closes0=$(count_records $CLOSE_ID) summarised0=$(count_summarised)
# From 10 addresses: 20 each, within the shipped per-source rate burst (40).
client --timeout 30 burst 127.0.0.1 "$PORT" --count 200 --size 64 --sources 10 || fail "200 short connections"
deadline=$((SECONDS + 30))
until (( $(accounted) >= 200 )); do
        if ((SECONDS >= deadline)); then
                say "close records: $(( $(count_records $CLOSE_ID) - closes0 )), summarised: $(( $(count_summarised) - summarised0 )) (of 200)"
                say "close records of any unit: $(ct 20 journalctl --no-pager -o cat "MESSAGE_ID=$CLOSE_ID" | wc -l)"
                fail "journalctl -u echod misses connection records"
        fi
        sleep 0.5
done
(( $(accounted) == 200 )) || fail "records and summaries account for $(accounted) connections of 200"
(( $(count_records $OPEN_ID) == opens0 )) ||
        fail "$(( $(count_records $OPEN_ID) - opens0 )) open records with log_connections = close"
ok "200 short connections: $(( $(count_records $CLOSE_ID) - closes0 )) close records and $(( $(count_summarised) - summarised0 )) in summaries under journalctl -u echod"

# ---------------------------------------------------------------- 2b: load
step "step 2b: 60 s of echoc --bench rate: journald suppresses nothing, every connection accounted for"
# The default per-source limits are for strangers; this load is ours, from
# one address: lift the per-source rate for it (the record budget stays at
# its defaults, which is what is under test).
ct 10 cp "$CONF" /root/echod.conf.before-load
ct_sh 10 "printf '%s\n' 'rate_limit_per_source = 0' >> $CONF"
ct 60 systemctl reload echod || fail "systemctl reload echod (rate_limit_per_source = 0)"
closes0=$(count_records $CLOSE_ID) summarised0=$(count_summarised)
JOURNAL_DROPPED_ID=a596d6fe7bfa4994828e72309e95d61e     # journald's "Suppressed N messages"
suppressed0=$(ct 20 journalctl --no-pager -o cat "MESSAGE_ID=$JOURNAL_DROPPED_ID" | grep -c echod || true)
LOAD_SECONDS=${ECHOD_SYSTEST_LOAD_SECONDS:-60}
load=$(ct $((LOAD_SECONDS + 60)) echoc --bench rate --concurrency 16 --duration "$LOAD_SECONDS" --json 127.0.0.1 "$PORT") ||
        fail "echoc --bench rate failed: $load"
read -r completed rate errors < <(python3 -c 'import json, sys; r = json.loads(sys.argv[1]);
print(r["connections"], int(r["conn_per_s"]), r["errors"]["total"])' "$load")
say "echoc: $completed connections in $LOAD_SECONDS s ($rate conn/s), $errors errors"
((errors == 0)) || fail "echoc counted $errors errors: $load"
deadline=$((SECONDS + 40))
until (( $(accounted) >= completed )); do
        ((SECONDS < deadline)) || fail "records and summaries account for $(accounted) of $completed connections"
        sleep 1
done
(( $(accounted) == completed )) ||
        fail "records and summaries account for $(accounted) connections, echoc completed $completed"
suppressed=$(ct 20 journalctl --no-pager -o cat "MESSAGE_ID=$JOURNAL_DROPPED_ID" | grep -c echod || true)
((suppressed == suppressed0)) ||
        fail "journald suppressed echod's records: $(ct 20 journalctl --no-pager -o cat "MESSAGE_ID=$JOURNAL_DROPPED_ID" | grep echod | tail -n 3)"
ok "$completed connections: $(( $(count_records $CLOSE_ID) - closes0 )) close records + $(( $(count_summarised) - summarised0 )) in summaries; journald suppressed nothing of echod's"
ct 10 cp /root/echod.conf.before-load "$CONF"
ct 60 systemctl reload echod || fail "systemctl reload echod (back to the shipped limits)"

# ---------------------------------------------------------------- 2c: metrics
step "step 2c: metrics for node-exporter with the drop-in README documents"
# What the prometheus-node-exporter package leaves: root's directory, 0755.
PROM_DIR=/var/lib/prometheus/node-exporter
ct 10 mkdir -p "$PROM_DIR"
ct 10 chmod 0755 "$PROM_DIR"
ct 10 cp "$CONF" /root/echod.conf.before-metrics
ct 10 groupadd --system echod-metrics || fail "groupadd --system echod-metrics"
ct 10 dpkg-statoverride --update --add root echod-metrics 0775 "$PROM_DIR" || fail "dpkg-statoverride"
ct 10 mkdir -p /etc/systemd/system/echod.service.d
ct_sh 10 "printf '%s\n' '[Service]' 'ReadWritePaths=$PROM_DIR' 'SupplementaryGroups=echod-metrics' \
        > /etc/systemd/system/echod.service.d/metrics.conf"
ct_sh 10 "echo 'metrics_file = \"$PROM_DIR/echod.prom\"' >> $CONF"
ct 30 systemctl daemon-reload
ct 60 systemctl restart echod || fail "systemctl restart echod with the metrics drop-in"
poll 30 "$PROM_DIR/echod.prom written" ct 10 grep -q '^echod_build_info{version=' "$PROM_DIR/echod.prom"
echo_ok 127.0.0.1 "$PORT"
mode=$(ct 10 stat -c %a "$PROM_DIR/echod.prom")
[[ $mode == 644 ]] || fail "echod.prom has mode $mode: node-exporter (another user) could not read it"
! ct 10 test -e "$PROM_DIR/echod.prom.tmp" || fail "echod.prom.tmp left behind"
ok "echod writes $PROM_DIR/echod.prom (mode $mode) under the drop-in:"
ct 10 grep -E '^echod_(build_info|connections_active|start_time_seconds)' "$PROM_DIR/echod.prom" | sed 's/^/    /'
ct 10 rm /etc/systemd/system/echod.service.d/metrics.conf
ct 10 cp /root/echod.conf.before-metrics "$CONF"
ct 30 systemctl daemon-reload
ct 60 systemctl restart echod || fail "systemctl restart echod without the metrics drop-in"
poll 30 "port $PORT answering" client wait-port 127.0.0.1 "$PORT"
# ---------------------------------------------------------------- 2d: restart

step "step 2d: systemctl restart echod refuses no connection"
nstore=$(unit_prop echod NFileDescriptorStore)
(( nstore >= 1 )) || fail "echod.service holds $nstore descriptors in its fd store (expected its listener)"
ok "echod's listener is in systemd's fd store ($nstore descriptor(s), FileDescriptorStoreMax=$(unit_prop echod FileDescriptorStoreMax))"
# start_probe STOP_FILE OUT SECONDS [PROBE-ARGS]: a connect-and-echo loop
# in the background, at most 20,000 attempts and SECONDS s, until STOP_FILE
# exists. From 250 addresses: each stays within the shipped per-source rate
# limit, so that every connection must be served, not only accepted.
start_probe() {
        local stop=$1 out=$2 t=$3
        shift 3
        rm -f "$stop"
        timeout $((t + 10)) "${CLIENT[@]}" --timeout "$t" probe 127.0.0.1 "$PORT" --count 20000 --sources 250 \
                --stop-file "$stop" "$@" >"$out" 2>&1 &
        PROBE_PID=$!
        poll 30 "the probe's first connection" grep -q '^started' "$out"
}
stop_probe() {   # stop_probe STOP_FILE OUT WHAT
        touch "$1"
        wait "$PROBE_PID" || { sed 's/^/    /' "$2" >&2; fail "connections were refused or failed $3"; }
        grep -q 'stopped=1' "$2" || fail "the probe ran out of attempts or time before $3 ended: $(grep attempts= "$2")"
        ok "$(grep attempts= "$2") $3"
}
pid0=$(unit_prop echod MainPID)
start_probe "$WORK/probe-restart.stop" "$WORK/probe-restart.out" 10
ct 60 systemctl restart echod || fail "systemctl restart echod"
poll 30 "echod.service active after the restart" ct 10 systemctl is-active --quiet echod
pid1=$(unit_prop echod MainPID)
[[ $pid1 != "$pid0" ]] || fail "systemctl restart echod did not restart it (main pid still $pid0)"
stop_probe "$WORK/probe-restart.stop" "$WORK/probe-restart.out" "across systemctl restart echod (pid $pid0 -> $pid1)"
journal_has echod.service 'kept open across the restart' ||
        fail "the restarted echod did not take its listener back from the fd store"
ok "the restarted echod took its listener from the fd store"

# ---------------------------------------------------------------- 2e: upgrade

step "step 2e: apt install a newer package while a session echoes"
# The same tree with a higher version, built beside the first.
NEWVER=1.0.0+systest1
rm -rf "$WORK/src2"
mkdir "$WORK/src2"
if [[ -d $WORK/src ]]; then
        (cd "$WORK/src" && tar --exclude='./obj-*' --exclude=./debian/echod --exclude=./debian/.debhelper -cf - .) |
                tar -C "$WORK/src2" -xf -
else
        tar -C "$SRCDIR" --exclude=.git --exclude='build*' --exclude='obj-*' -cf - . | tar -C "$WORK/src2" -xf -
fi
sed -i "s/^\(  version : \)'[^']*'/\1'$NEWVER'/" "$WORK/src2/meson.build"
{ printf 'echod (%s) unstable; urgency=medium\n\n  * System test: a newer version of the same tree.\n\n' "$NEWVER"
  printf ' -- echod developers <echod@example.org>  %s\n\n' "$(date -R)"
  cat "$WORK/src2/debian/changelog"; } >"$WORK/changelog.new"
mv "$WORK/changelog.new" "$WORK/src2/debian/changelog"
say "dpkg-buildpackage -us -uc -b -Pnocheck of $NEWVER (log: $WORK/build2.log)"
if ! (cd "$WORK/src2" && DEB_BUILD_OPTIONS=nocheck timeout 900 dpkg-buildpackage -us -uc -b -Pnocheck) \
        >"$WORK/build2.log" 2>&1; then
        tail -n 40 "$WORK/build2.log" >&2
        fail "dpkg-buildpackage of $NEWVER failed"
fi
debs2=("$WORK"/echod_"$NEWVER"_*.deb)
((${#debs2[@]} == 1)) || fail "expected one echod_${NEWVER}_*.deb, found ${#debs2[@]}"
cp "${debs2[0]}" "$WORK/root/srv/"
chmod 0644 "$WORK/root/srv/$(basename "${debs2[0]}")"
ok "built $(basename "${debs2[0]}")"

conf0=$(ct 10 md5sum "$CONF")
pid0=$(unit_prop echod MainPID)
coproc SESSION { timeout 600 "${CLIENT[@]}" --timeout 30 session 127.0.0.1 "$PORT" --size 4096; }
# shellcheck disable=SC2153 # SESSION_PID is set by coproc
session_pid=$SESSION_PID session_in=${SESSION[1]} session_out=${SESSION[0]}
read -r -t 30 session_line <&"$session_out" || fail "the session did not start"
[[ $session_line == ready* ]] || fail "session: $session_line"
ok "session open and echoing (${session_line#ready })"
# A probe every 5 ms: the installation takes longer than a tight loop's
# 20,000 attempts would last.
start_probe "$WORK/probe-upgrade.stop" "$WORK/probe-upgrade.out" 170 --interval 0.005
if ! ct 300 apt-get install -y "/srv/$(basename "${debs2[0]}")" >"$WORK/apt2.log" 2>&1; then
        sed 's/^/    /' "$WORK/apt2.log" >&2
        fail "apt-get install of $NEWVER"
fi
grep '^echod.*\.service: ' "$WORK/apt2.log" | sed 's/^/    /' || true
grep -q '^echod\.service: upgraded in place' "$WORK/apt2.log" || fail "the postinst did not upgrade echod in place"
stop_probe "$WORK/probe-upgrade.stop" "$WORK/probe-upgrade.out" "during apt install of $NEWVER"
echo stop >&"$session_in"
read -r -t 60 session_line <&"$session_out" || fail "the session stopped echoing across the upgrade"
[[ $session_line == ok* ]] || fail "session across the upgrade: $session_line"
wait "$session_pid" 2>/dev/null || true
ok "the session echoed byte for byte across the upgrade (${session_line#ok })"
[[ $(unit_prop echod MainPID) == "$pid0" ]] || fail "the main pid changed: $pid0 -> $(unit_prop echod MainPID)"
[[ $(ct 10 readlink "/proc/$pid0/exe") == /usr/sbin/echod ]] || fail "pid $pid0 does not run the new /usr/sbin/echod"
ok "same main pid $pid0, now running the new /usr/sbin/echod"
[[ $(ct 10 dpkg-query -W -f '${Version}' echod) == "$NEWVER" ]] || fail "installed: $(ct 10 dpkg-query -W -f '${Version}' echod)"
status=$(ct 20 systemctl status --no-pager -n 5000 echod || true)
grep -q "echod $NEWVER started" <<<"$status" || { sed 's/^/    /' <<<"$status" >&2; fail "systemctl status echod shows no start record of $NEWVER"; }
ok "systemctl status echod shows the start record of $NEWVER:"
grep -F -e "upgraded in place" -e "echod $NEWVER started" <<<"$status" | sed 's/^/    /'
[[ $(ct 10 md5sum "$CONF") == "$conf0" ]] || fail "$CONF changed during the upgrade"
[[ -z $(ct_sh 10 "ls $CONF.dpkg-* 2>/dev/null; true") ]] || fail "dpkg left $CONF.dpkg-* files"
ok "$CONF untouched (no .dpkg-* files)"

# ---------------------------------------------------------------- 2f: autopkgtest

step "step 2f: the autopkgtest debian/tests/upgrade-in-place in the container"
cp "$SRCDIR/debian/tests/upgrade-in-place" "$WORK/root/srv/upgrade-in-place"
chmod 0755 "$WORK/root/srv/upgrade-in-place"
if ! ct 180 /srv/upgrade-in-place >"$WORK/autopkgtest.log" 2>&1; then
        sed 's/^/    /' "$WORK/autopkgtest.log" >&2
        fail "debian/tests/upgrade-in-place failed"
fi
sed 's/^/    /' "$WORK/autopkgtest.log"
ok "debian/tests/upgrade-in-place passed"

# ---------------------------------------------------------------- 3: reload

step "step 3: add a listen port to $CONF and reload"
P2=$("${CLIENT[@]}" free-port)
say "extra port: $P2"
ct 10 cp "$CONF" /root/echod.conf.orig
# Keep a long-lived connection open across the reload.
coproc HOLD { timeout 120 "${CLIENT[@]}" --timeout 30 hold 127.0.0.1 "$PORT"; }
# shellcheck disable=SC2153 # HOLD_PID is set by coproc
hold_pid=$HOLD_PID hold_in=${HOLD[1]} hold_out=${HOLD[0]}
read -r -t 30 hold_line <&"$hold_out" || fail "the long-lived connection did not start"
[[ $hold_line == ready* ]] || fail "long-lived connection: $hold_line"
ok "connection opened before the reload (${hold_line#ready })"
ct_sh 10 "sed -i '/^[[:space:]]*listen[[:space:]]*=/d' $CONF &&
        printf '%s\n' 'listen = { \"[::]:$PORT\", \"[::]:$P2\" }' >> $CONF"
if ! ct 20 /usr/sbin/echod --test-config 2>&1 | sed 's/^/    /'; then
        fail "echod --test-config rejects the edited file"
fi
ct 60 systemctl reload echod || fail "systemctl reload echod"
ok "systemctl reload echod succeeded"
poll 30 "new port $P2 answering" client wait-port 127.0.0.1 "$P2"
echo_ok 127.0.0.1 "$P2"
echo_ok ::1 "$P2"
echo_ok 127.0.0.1 "$PORT"
echo go >&"$hold_in"
read -r -t 30 hold_line <&"$hold_out" || fail "the connection opened before the reload stopped echoing"
[[ $hold_line == ok ]] || fail "connection opened before the reload: $hold_line"
wait "$hold_pid" 2>/dev/null || true
ok "the connection opened before the reload still echoes"
poll 20 "RELOADED record" journal_has echod.service 'MESSAGE_ID=b8c18c6801b343a5b5c9089b6bea1d49'
ok "the journal records the reload"

# ---------------------------------------------------------------- 3b: instances
step "step 3b: two instances of echod@.service share one port (reuse_port)"
P3=$("${CLIENT[@]}" free-port)
ct 10 mkdir -p /etc/echod
for i in a b; do
        ct_sh 10 "printf '%s\n' 'listen = { \"127.0.0.1:$P3\" }' 'reuse_port = true' > /etc/echod/$i.conf"
done
ct 60 systemctl start echod@a echod@b || fail "systemctl start echod@a echod@b"
poll 30 "echod@a and echod@b active" ct 10 systemctl is-active --quiet echod@a echod@b
uid_a=$(ct_sh 10 "stat -c %u /proc/$(unit_prop echod@a MainPID)")
uid_b=$(ct_sh 10 "stat -c %u /proc/$(unit_prop echod@b MainPID)")
[[ $uid_a == "$uid_b" && $uid_a != 0 ]] || fail "the instances run as uids $uid_a and $uid_b: one user, not root, is needed"
ok "echod@a and echod@b listen on port $P3, both as uid $uid_a"
instance_records() { ct 20 journalctl --no-pager -o cat -u "echod@$1" "MESSAGE_ID=$CLOSE_ID" | wc -l; }
# From 10 addresses, within each source's rate burst.
client --timeout 30 burst 127.0.0.1 "$P3" --count 100 --size 64 --sources 10 || fail "100 connections to port $P3"
deadline=$((SECONDS + 30))
until (( $(instance_records a) + $(instance_records b) >= 100 )); do
        ((SECONDS < deadline)) || fail "the instances recorded $(instance_records a) + $(instance_records b) of 100 connections"
        sleep 0.5
done
(( $(instance_records a) > 0 && $(instance_records b) > 0 )) ||
        fail "one instance served every connection: a $(instance_records a), b $(instance_records b)"
ok "100 connections: echod@a served $(instance_records a), echod@b $(instance_records b)"
ct 60 systemctl stop echod@a echod@b || fail "systemctl stop echod@a echod@b"
ct 10 rm -rf /etc/echod

# ---------------------------------------------------------------- 4: broken

step "step 4: a broken $CONF: reload fails, echod keeps serving"
main_pid=$(unit_prop echod MainPID)
ct 10 cp "$CONF" /root/echod.conf.good
bad_line=$(( $(ct_sh 10 "wc -l < $CONF") + 1 ))
ct_sh 10 "echo 'no_such_key = 1' >> $CONF"
out=$(ct 20 /usr/sbin/echod --test-config 2>&1) && fail "echod --test-config accepted a broken file"
grep -q "^$CONF:$bad_line:" <<<"$out" || fail "echod --test-config did not name $CONF:$bad_line: $out"
ok "echod --test-config: $(head -n1 <<<"$out")"
if ct 60 systemctl reload echod 2>"$WORK/reload.err"; then
        fail "systemctl reload echod succeeded with a broken file"
fi
ok "systemctl reload echod failed: $(head -n1 "$WORK/reload.err")"
poll 20 "systemctl status echod showing $CONF:$bad_line:" \
        sh -c "timeout 20 nsenter -t $CT_PID -a systemctl status --no-pager -l -n 20 echod | grep '$CONF:$bad_line:' >/dev/null"
ok "systemctl status echod shows the error:"
ct 20 systemctl status --no-pager -l -n 20 echod | grep "$CONF:$bad_line:" | head -n 2 | sed 's/^/    /'
ct 10 systemctl is-active --quiet echod || fail "echod is not active after the failed reload"
[[ $(unit_prop echod MainPID) == "$main_pid" ]] || fail "echod's main pid changed"
echo_ok 127.0.0.1 "$PORT"
echo_ok 127.0.0.1 "$P2"
ok "echod still serves the old configuration (both ports, same pid $main_pid)"
# The daemon's own check, without ExecReload's guard: SIGHUP straight to it.
ct 10 systemctl kill --kill-who=main -s HUP echod
poll 20 "RELOAD_FAILED record after a direct SIGHUP" \
        journal_has echod.service 'MESSAGE_ID=790c5cac2ec74b6bb35aa0561f3304fd'
ct 10 systemctl is-active --quiet echod || fail "echod died on SIGHUP with a broken file"
echo_ok ::1 "$PORT"
ok "a direct SIGHUP with the broken file is logged and echod goes on"
ct 10 cp /root/echod.conf.orig "$CONF"
ct 60 systemctl reload echod || fail "reload with the original file"
poll 30 "port $P2 closed after going back to the original file" client --timeout 2 refused 127.0.0.1 "$P2"
ok "original $CONF restored; port $P2 closed again"

# ---------------------------------------------------------------- 5: socket activation

step "step 5: switch to socket activation"
# The README's commands, in its order.
ct_sh 10 'mkdir -p /etc/systemd/system/echod.service.d &&
        cp /usr/share/echod/echod-socket-activation.conf /etc/systemd/system/echod.service.d/socket-activation.conf'
ct 60 systemctl daemon-reload
ct 60 systemctl disable --now echod.service 2>&1 | sed 's/^/    /'
ct 60 systemctl enable --now echod.socket 2>&1 | sed 's/^/    /'
ct 10 systemctl is-active --quiet echod.socket || fail "echod.socket is not active"
st=$(ct 10 systemctl is-active echod.service || true)
[[ $st == inactive ]] || fail "echod.service is '$st' before the first connection"
[[ -z $(echod_pids) ]] || fail "an echod process runs before the first connection"
ok "echod.socket listening, echod.service inactive, no echod process"
# The extra port would only be bound if echod ignored the passed socket.
ct_sh 10 "sed -i '/^[[:space:]]*listen[[:space:]]*=/d' $CONF &&
        printf '%s\n' 'listen = { \"[::]:$P2\" }' >> $CONF"
echo_ok 127.0.0.1 "$PORT"
poll 30 "echod.service started by the first connection" ct 10 systemctl is-active --quiet echod.service
ok "the first connection started echod.service"
echo_ok ::1 "$PORT"
client --timeout 2 refused 127.0.0.1 "$P2" >/dev/null ||
        fail "echod bound its listen address instead of using the passed socket"
ok "echod uses the passed socket (its listen address $P2 is not bound)"
main_pid=$(unit_prop echod MainPID)
netns=$(ct_sh 10 "readlink /proc/$main_pid/ns/net /proc/1/ns/net")
[[ $(sed -n 1p <<<"$netns") != "$(sed -n 2p <<<"$netns")" ]] ||
        fail "the drop-in's PrivateNetwork=yes is not in effect"
ok "echod runs in its own network namespace (drop-in in effect)"
ct 60 systemctl reload echod || fail "systemctl reload echod under socket activation"
echo_ok 127.0.0.1 "$PORT"
ok "reload under socket activation"
ct 10 cp /root/echod.conf.orig "$CONF"

# ---------------------------------------------------------------- 5a: UDP (issue 12)

step "step 5a: UDP echo through a drop-in adding ListenDatagram=$PORT to echod.socket"
# The drop-in README and echod(8) document.
ct_sh 10 "mkdir -p /etc/systemd/system/echod.socket.d &&
        printf '[Socket]\nListenDatagram=$PORT\nPassPacketInfo=yes\n' > /etc/systemd/system/echod.socket.d/udp.conf"
ct 60 systemctl stop echod.service echod.socket 2>&1 | sed 's/^/    /'
ct 60 systemctl daemon-reload
ct 60 systemctl start echod.socket || fail "echod.socket does not start with ListenDatagram=$PORT"
# The first datagram starts echod.service and waits in the socket for it.
out=$(ct_sh 60 "printf 'udp one\nudp two\n' | echoc -u --timeout 5 ::1 $PORT") ||
        fail "echoc -u ::1 $PORT inside the container: no echo"
[[ $out == $'udp one\nudp two' ]] || fail "echoc -u ::1 $PORT printed '$out'"
ok "echoc -u ::1 $PORT: both datagrams came back"
out=$(ct_sh 30 "echo udp v4 | echoc -u -4 127.0.0.1 $PORT") && [[ $out == "udp v4" ]] ||
        fail "echoc -u -4 127.0.0.1 $PORT: no echo"
ok "echoc -u -4 127.0.0.1 $PORT"
poll 20 "a UDP worker process" ct_sh 10 "grep -l '^echod: udp' /proc/[0-9]*/cmdline"
ok "one UDP worker serves the passed datagram socket"
echo_ok 127.0.0.1 "$PORT"
ok "TCP still served by the same echod"
ct 60 systemctl stop echod.service echod.socket 2>&1 | sed 's/^/    /'
ct 10 rm -f /etc/systemd/system/echod.socket.d/udp.conf
ct 60 systemctl daemon-reload
ct 60 systemctl start echod.socket

step "step 5b: the per-connection variant, echod-inetd.socket"
ct 60 systemctl stop echod.service 2>&1 | sed 's/^/    /'
ct 60 systemctl start echod-inetd.socket
ct 10 systemctl is-active --quiet echod-inetd.socket || fail "echod-inetd.socket is not active"
st=$(ct 10 systemctl is-active echod.socket || true)
[[ $st == inactive ]] || fail "echod.socket is '$st' after echod-inetd.socket started (Conflicts=)"
echo_ok 127.0.0.1 "$PORT"
INETD_PORT=$LAST_LOCAL_PORT
echo_ok ::1 "$PORT"
poll 20 "a record of the connection from echod-inetd@.service" \
        journal_has 'echod-inetd@*' "REMOTE_PORT=$INETD_PORT\$"
ok "echod --inetd, started by echod-inetd.socket, served the connections"
ct 60 systemctl stop echod-inetd.socket
ct 60 systemctl start echod.socket

# ---------------------------------------------------------------- 5c: proxy socket

step "step 5c: a socket with FileDescriptorName=proxy: a load balancer's PROXY header names the client"
# echod(8)'s example: a second socket unit, and Sockets= so that
# echod.service gets both; the config trusts the balancer (echoc, here).
PROXY_PORT=$(client free-port)
ct_sh 10 "printf '%s\n' '[Socket]' 'ListenStream=127.0.0.1:$PROXY_PORT' 'FileDescriptorName=proxy' \
                'Service=echod.service' > /etc/systemd/system/echod-proxy.socket &&
        mkdir -p /etc/systemd/system/echod.service.d &&
        printf '%s\n' '[Service]' 'Sockets=echod.socket echod-proxy.socket' \
                > /etc/systemd/system/echod.service.d/proxy.conf &&
        printf '%s\n' 'proxy_trusted = { \"127.0.0.1\" }' >> $CONF"
ct 60 systemctl stop echod.service 2>&1 | sed 's/^/    /'
ct 60 systemctl daemon-reload
ct 60 systemctl start echod-proxy.socket || fail "echod-proxy.socket does not start"
out=$(ct_sh 30 "echo through-the-balancer | echoc --proxy v2 --proxy-source 192.0.2.7:5000 127.0.0.1 $PROXY_PORT") ||
        fail "no echo through the proxy socket"
[[ $out == through-the-balancer ]] || fail "echo through the proxy socket was '$out'"
ok "echoed through the proxy socket, after a PROXY v2 header"
poll 20 "a close record naming client 192.0.2.7" journal_has echod.service 'REMOTE_ADDR=192\.0\.2\.7$'
rec=$(ct 20 journalctl --no-pager -o verbose -u echod REMOTE_ADDR=192.0.2.7)
grep -q 'REMOTE_PORT=5000$' <<<"$rec" || fail "the record lacks REMOTE_PORT=5000: $rec"
grep -q 'PROXY_ADDR=127\.0\.0\.1$' <<<"$rec" || fail "the record lacks PROXY_ADDR=127.0.0.1: $rec"
grep -q 'PROXY_PORT=[0-9]' <<<"$rec" || fail "the record lacks PROXY_PORT: $rec"
ok "the journal record names the client (REMOTE_ADDR=192.0.2.7 REMOTE_PORT=5000) and the balancer (PROXY_ADDR=127.0.0.1)"
echo_ok 127.0.0.1 "$PORT"
ok "echod.socket, passed beside it, stays a plain listener"
ct 60 systemctl stop echod.service echod-proxy.socket 2>&1 | sed 's/^/    /'
ct 10 rm -f /etc/systemd/system/echod-proxy.socket /etc/systemd/system/echod.service.d/proxy.conf
ct 10 cp /root/echod.conf.orig "$CONF"
ct 60 systemctl daemon-reload

# ---------------------------------------------------------------- 6: stop, purge

step "step 6: stop and purge"
echo_ok 127.0.0.1 "$PORT"
# Stop with a connection open: echod drains it and exits well before
# TimeoutStopSec=, and nothing is left behind.
coproc HOLD2 { timeout 120 "${CLIENT[@]}" --timeout 30 hold 127.0.0.1 "$PORT" 2>&1; }
hold_pid=$HOLD2_PID hold_in=${HOLD2[1]} hold_out=${HOLD2[0]}
read -r -t 30 hold_line <&"$hold_out" || fail "the connection to hold across the stop did not start"
[[ $hold_line == ready* ]] || fail "connection to hold across the stop: $hold_line"
t=$SECONDS
ct 60 systemctl stop echod.service 2>&1 | sed 's/^/    /'
took=$((SECONDS - t))
((took < 15)) || fail "systemctl stop echod took $took s with one idle connection open"
ok "systemctl stop echod with a connection open took ${took} s"
{ echo go >&"$hold_in"; } 2>/dev/null || true
wait "$hold_pid" 2>/dev/null && fail "the connection still echoed after echod stopped"
poll 30 "echod.service inactive" sh -c "[ \"\$(timeout 10 nsenter -t $CT_PID -a systemctl is-active echod.service)\" = inactive ]"
pids=$(echod_pids)
[[ -z $pids ]] || fail "echod processes left after systemctl stop echod: $pids"
ok "systemctl stop echod leaves no echod process"
# echod.socket stays active: removing the package must stop it.
ct 10 systemctl is-active --quiet echod.socket || fail "echod.socket is not active before the purge"
ct 300 apt-get -q -y purge echod >>"$WORK/apt.log" 2>&1 || { tail -n 20 "$WORK/apt.log" >&2; fail "apt-get purge echod"; }
ok "apt-get purge echod"
for f in /lib/systemd/system/echod.service /lib/systemd/system/echod@.service /lib/systemd/system/echod.socket \
         /lib/systemd/system/echod-inetd.socket /lib/systemd/system/echod-inetd@.service \
         /usr/lib/systemd/catalog/echod.catalog /usr/sbin/echod "$CONF"; do
        ! ct 10 test -e "$f" || fail "$f is still there after purge"
done
for u in echod.service echod.socket echod-inetd.socket; do
        st=$(unit_prop "$u" UnitFileState || true)
        [[ -z $st ]] || fail "$u still has unit file state '$st' after purge"
done
left=$(ct_sh 10 'ls -d /etc/systemd/system/*.wants/echod* /var/lib/systemd/deb-systemd-helper-enabled/*echod* \
        /var/lib/systemd/deb-systemd-helper-enabled/*.wants/echod* 2>/dev/null; true')
[[ -z $left ]] || fail "enablement links left after purge: $left"
[[ -z $(echod_pids) ]] || fail "echod processes left after purge"
client --timeout 2 refused 127.0.0.1 "$PORT" >/dev/null || fail "port $PORT still answers after purge"
ok "units, enablement links, catalog, binary and $CONF are gone; nothing listens on port $PORT"

COMPLETED=yes
