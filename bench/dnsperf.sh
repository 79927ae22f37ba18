#!/usr/bin/env bash
# dnsperf against NSD, Knot DNS and sovdns serving the same generated zone,
# one server at a time, in one run, pinned: the server on CPU 0, dnsperf on
# CPU 1. Two traffic mixes:
#   realistic  existing names, NXDOMAIN, NODATA and referrals, looped (the
#              response cache helps after the first pass);
#   random     RANDOM_NAMES unique random names under the zone, each asked
#              once: a random-subdomain flood, which no cache can help.
# For each: queries per second, and the server's CPU time per answered query
# (user + system, from /proc, over the measured run).
# Needs: dnsperf, nsd, knotd, taskset (Debian: dnsperf nsd knot util-linux).
# Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."

NAMES=${NAMES:-100000}
RANDOM_NAMES=${RANDOM_NAMES:-3000000}
NEED="dnsperf nsd knotd taskset dig"
. bench/common.sh

go run ./bench/gen -names "$NAMES" -random "$RANDOM_NAMES" -out "$work"
zone=bench.test.
port=$(free_port)
pin_srv="taskset -c 0"
pin_cli="taskset -c 1"

# NSD, response-rate limiting off, one server process.
cat >"$work/nsd.conf" <<CONF
server:
  ip-address: 127.0.0.1
  port: $port
  server-count: 1
  username: ""
  zonesdir: "$work"
  pidfile: "$work/nsd.pid"
  xfrdfile: "$work/xfrd.state"
  zonelistfile: "$work/zone.list"
  database: ""
  verbosity: 0
  hide-version: yes
  rrl-ratelimit: 0
zone:
  name: $zone
  zonefile: bench.zone
CONF

# Knot DNS, one UDP and one TCP worker (no RRL module).
mkdir -p "$work/knot"
cat >"$work/knot.conf" <<CONF
server:
    rundir: "$work/knot"
    listen: 127.0.0.1@$port
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
database:
    storage: "$work/knot"
template:
  - id: default
    storage: "$work"
    zonefile-sync: -1
zone:
  - domain: $zone
    file: bench.zone
CONF

# sovdns, the same zone imported with the CLI; an authoritative server
# only, as NSD and Knot are, and without rate limiting, as they run here.
"$BIN" --data-dir "$work/sovdns" zone import --origin "$zone" "$work/bench.zone" >/dev/null
printf 'resolver:\n  allow: []\nrate_limit:\n  responses_per_second: 0\n' >"$work/sovdns.yaml"

start() { # name: starts it pinned, sets $pid
  case $1 in
  nsd) $pin_srv nsd -d -c "$work/nsd.conf" >"$work/nsd.log" 2>&1 & ;;
  knot) $pin_srv knotd -c "$work/knot.conf" >"$work/knot.log" 2>&1 & ;;
  sovdns) $pin_srv "$BIN" serve --config "$work/sovdns.yaml" --data-dir "$work/sovdns" --listen "127.0.0.1:$port" \
            --metrics-listen "" --demo-zone=false --log-level warn >"$work/sovdns.log" 2>&1 & ;;
  esac
  pid=$!; pids+=("$pid")
  wait_up "$port" "$zone"
}

# CPU ticks (user + system) of a process and all its descendants (NSD's
# server process is a grandchild of the one started).
cpu_ticks() {
  local total=0 p
  for p in $(descendants "$1"); do
    # utime and stime, counted after the command name, which may hold spaces
    [ -r "/proc/$p/stat" ] && total=$((total + $(sed 's/.*) //' "/proc/$p/stat" | awk '{print $12 + $13}')))
  done
  echo "$total"
}
descendants() { echo "$1"; local c; for c in $(pgrep -P "$1" || true); do descendants "$c"; done; }

run_mix() { # file seconds: prints "qps cpu-us-per-query"
  local before after out n qps
  before=$(cpu_ticks "$pid")
  out=$($pin_cli dnsperf -s 127.0.0.1 -p "$port" -d "$1" -l "$2" -c 8 -q 500 -T 1 2>&1)
  after=$(cpu_ticks "$pid")
  echo "$out" >>"$work/dnsperf.log"
  qps=$(awk '/Queries per second/ {print $4}' <<<"$out")
  n=$(awk '/Queries completed/ {print $3}' <<<"$out")
  awk -v q="$qps" -v d=$((after - before)) -v n="$n" -v t="$(getconf CLK_TCK)" \
    'BEGIN { printf "%.0f %.2f\n", q, d / t * 1e6 / n }'
}

declare -A qps cpu
for server in nsd knot sovdns; do
  start $server
  run_mix "$work/queries.txt" 3 >/dev/null # warm-up
  read -r qps[$server,realistic] cpu[$server,realistic] < <(run_mix "$work/queries.txt" "$SECONDS_PER_RUN")
  read -r qps[$server,random] cpu[$server,random] < <(run_mix "$work/random.txt" "$SECONDS_PER_RUN")
  stop_all
done

echo "dnsperf -c 8 -q 500 -T 1, ${SECONDS_PER_RUN}s runs, server pinned to CPU 0 and dnsperf to CPU 1;"
echo "zone of $NAMES names; random mix: $RANDOM_NAMES unique names, each asked once"
echo "$(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), kernel $(uname -r)"
echo "$(nsd -v 2>&1 | head -1); Knot DNS $(knotd -V 2>&1 | awk '{print $NF; exit}'); sovdns $("$BIN" version 2>/dev/null | head -1)"
printf '%-10s %-10s %12s %8s %14s\n' "mix" "server" "queries/s" "vs NSD" "CPU µs/query"
for mix in realistic random; do
  for server in nsd knot sovdns; do
    printf '%-10s %-10s %12s %8.2f %14s\n' "$mix" "$server" "${qps[$server,$mix]}" \
      "$(awk -v a="${qps[$server,$mix]}" -v b="${qps[nsd,$mix]}" 'BEGIN{print a/b}')" "${cpu[$server,$mix]}"
  done
done
