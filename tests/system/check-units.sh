#!/bin/bash
# SPDX-License-Identifier: MIT
#
# Quick checks of systemd/ that need no container: the units load cleanly
# (systemd-analyze verify prints nothing), echod.service stays at an
# exposure of 1.5 or lower (systemd-analyze security), the socket-activation
# drop-in and the inetd template are rated too, and the journal catalog
# parses and explains every MESSAGE_ID of src/echod/log-ids.h.
#
# Usage: check-units.sh [SOURCE_DIR]. Exit 0 passed, 1 failed, 77 skipped
# (no systemd-analyze/journalctl, and CI is not true).

set -euo pipefail

SRCDIR=$(cd "${1:-$(dirname "${BASH_SOURCE[0]}")/../..}" && pwd)
UNITS=(echod.service echod@.service echod.socket echod-inetd.socket echod-inetd@.service)
MAX_EXPOSURE=1.5
failed=0

fail() { echo "FAIL: $*" >&2; failed=1; }
for cmd in systemd-analyze journalctl; do
        if ! command -v "$cmd" >/dev/null; then
                [[ ${CI:-} == true ]] && { echo "FAIL: $cmd not found" >&2; exit 1; }
                echo "SKIP: $cmd not found" >&2
                exit 77
        fi
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# systemd-analyze wants the binaries to exist; check the units, not the build.
mkdir -p "$tmp/plain" "$tmp/sa/echod.service.d"
for u in "${UNITS[@]}"; do
        sed 's|/usr/sbin/echod|/bin/true|' "$SRCDIR/systemd/$u" >"$tmp/plain/$u"
        cp "$tmp/plain/$u" "$tmp/sa/$u"
done
cp "$SRCDIR/systemd/echod-socket-activation.conf" "$tmp/sa/echod.service.d/socket-activation.conf"

for dir in plain sa; do
        out=$(cd "$tmp/$dir" && systemd-analyze verify --man=no "${UNITS[@]/#/./}" 2>&1) ||
                fail "systemd-analyze verify ($dir): $out"
        [[ -z $out ]] || fail "systemd-analyze verify ($dir) complains: $out"
done
echo "ok: systemd-analyze verify is silent on ${UNITS[*]} (with and without the drop-in)"

# exposure UNIT DIR: prints the overall exposure level.
exposure() {
        (cd "$tmp/$2" && systemd-analyze security --offline=true --no-pager "./$1" 2>&1) |
                sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p'
}
check_exposure() {   # UNIT DIR MAX LABEL
        local e
        e=$(exposure "$1" "$2")
        [[ -n $e ]] || { fail "no exposure level for $4"; return; }
        if awk -v e="$e" -v m="$3" 'BEGIN { exit !(e <= m) }'; then
                echo "ok: systemd-analyze security: $4: $e (limit $3)"
        else
                fail "$4: exposure $e is above $3"
        fi
}
check_exposure echod.service plain "$MAX_EXPOSURE" "echod.service"
check_exposure echod.service sa 1.0 "echod.service with the socket-activation drop-in"
check_exposure echod-inetd@.service plain 1.0 "echod-inetd@.service"
check_exposure echod@.service plain "$MAX_EXPOSURE" "echod@.service"

# The catalog: journalctl parses it, and every MESSAGE_ID has an entry.
mkdir -p "$tmp/root/usr/lib/systemd/catalog" "$tmp/root/var/lib/systemd/catalog"
cp "$SRCDIR/systemd/echod.catalog" "$tmp/root/usr/lib/systemd/catalog/"
out=$(journalctl --root="$tmp/root" --update-catalog 2>&1) || fail "journalctl --update-catalog: $out"
[[ -z $out ]] || fail "journalctl --update-catalog complains: $out"
listed=$(journalctl --root="$tmp/root" --list-catalog 2>/dev/null | cut -d' ' -f1)
n=0
for id in $(sed -n 's/^#define ECHOD_MID_[A-Z0-9_]* *"\([0-9a-f]\{32\}\)".*/\1/p' "$SRCDIR/src/echod/log-ids.h"); do
        n=$((n + 1))
        grep -qx "$id" <<<"$listed" || fail "MESSAGE_ID $id (src/echod/log-ids.h) has no catalog entry"
done
((n > 0)) || fail "no MESSAGE_IDs found in src/echod/log-ids.h"
for id in $listed; do
        grep -q "\"$id\"" "$SRCDIR/src/echod/log-ids.h" || fail "catalog entry $id is not in src/echod/log-ids.h"
done
echo "ok: echod.catalog parses and explains all $n MESSAGE_IDs of src/echod/log-ids.h"

exit "$failed"
