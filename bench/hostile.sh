#!/usr/bin/env bash
# sovdns beside Unbound against the same hostile authoritative servers on
# loopback (bench/hostile, built on internal/hostile): an NXNS referral
# flood (queries reaching the victim's zone per client question),
# malformed answers (what each resolver answers) and a flood of questions
# for a dead zone (queries reaching its server, CPU time). Prints tables;
# about a minute.
#
# Unbound queries the servers it learns from referrals on port 53 only, so
# the fake servers listen on port 53 of their own 127.a.b.c addresses:
# run as root (or with CAP_NET_BIND_SERVICE). Otherwise, or without
# unbound installed, only sovdns is measured.
# N: NXNS client questions per resolver (20). BIN: the sovdns binary
# (default: built from this tree). Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-20}
GO=${GO:-go}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if [ -z "${BIN:-}" ]; then
  "$GO" build -trimpath -o "$work/sovdns" ./cmd/sovdns
  BIN="$work/sovdns"
fi
"$GO" build -trimpath -o "$work/hostile-lab" ./bench/hostile
unbound=unbound
if ! command -v unbound >/dev/null; then
  echo "bench: unbound is not installed (Debian package unbound): sovdns only" >&2
  unbound=""
fi
echo "unbound $(unbound -V 2>/dev/null | sed -n "s/^Version //p") beside $("$BIN" version 2>/dev/null | head -1 || true)"
"$work/hostile-lab" -sovdns "$BIN" -unbound "$unbound" -n "$N"
