#!/usr/bin/env bash
# dnsperf against sovdns and NSD serving the same generated zone, in one run:
# first pinned (server on CPU 0, dnsperf on CPU 1), then unpinned.
# Needs: dnsperf, nsd, taskset (Debian: dnsperf nsd util-linux). Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_PER_RUN=${SECONDS_PER_RUN:-10}
NAMES=${NAMES:-100000}
BIN=${BIN:-bin/sovdns}
for t in dnsperf nsd taskset; do
  command -v "$t" >/dev/null || { echo "bench: $t is not installed (apt-get install dnsperf nsd util-linux)" >&2; exit 1; }
done
[ -x "$BIN" ] || { echo "bench: build $BIN first (make build)" >&2; exit 1; }

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

go run ./bench/gen -names "$NAMES" -out "$work"
zone=bench.test.

# NSD, response-rate limiting off.
nsd_port=$(free_port)
cat >"$work/nsd.conf" <<CONF
server:
  ip-address: 127.0.0.1
  port: $nsd_port
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

# sovdns, the same zone imported with the CLI.
sov_port=$(free_port)
"$BIN" --data-dir "$work/sovdns" zone import --origin "$zone" "$work/bench.zone" >/dev/null

start_nsd() { $1 nsd -d -c "$work/nsd.conf" >"$work/nsd.log" 2>&1 & pids+=($!); }
start_sov() {
  $1 "$BIN" serve --data-dir "$work/sovdns" --listen "127.0.0.1:$sov_port" \
     --metrics-listen "" --demo-zone=false --log-level warn >"$work/sovdns.log" 2>&1 & pids+=($!)
}
wait_up() { # port
  for _ in $(seq 1 100); do
    dig +time=1 +tries=1 -p "$1" @127.0.0.1 "$zone" SOA +short >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "bench: server on port $1 did not come up" >&2; return 1
}
stop_all() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; pids=(); }
qps() { # port dnsperf-prefix
  $2 dnsperf -s 127.0.0.1 -p "$1" -d "$work/queries.txt" -l "$SECONDS_PER_RUN" -c 8 -q 500 -T 1 2>&1 |
    tee -a "$work/dnsperf.log" | awk '/Queries per second/ {print $4}'
}

declare -A result
for mode in pinned unpinned; do
  srv_cpu=""; cli_cpu=""
  if [ "$mode" = pinned ]; then srv_cpu="taskset -c 0"; cli_cpu="taskset -c 1"; fi
  start_nsd "$srv_cpu"; wait_up "$nsd_port"
  qps "$nsd_port" "$cli_cpu" >/dev/null # warm-up pass
  result[nsd_$mode]=$(qps "$nsd_port" "$cli_cpu")
  stop_all
  start_sov "$srv_cpu"; wait_up "$sov_port"
  qps "$sov_port" "$cli_cpu" >/dev/null # warm-up pass (fills the response cache)
  result[sov_$mode]=$(qps "$sov_port" "$cli_cpu")
  stop_all
done

echo "dnsperf, $NAMES-name zone, ${SECONDS_PER_RUN}s per run, $(nproc) CPUs, $(uname -r)"
printf '%-10s %14s %14s %8s\n' mode nsd_qps sovdns_qps ratio
for mode in pinned unpinned; do
  n=${result[nsd_$mode]}; s=${result[sov_$mode]}
  printf '%-10s %14s %14s %8s\n' "$mode" "$n" "$s" "$(awk -v s="$s" -v n="$n" 'BEGIN{printf "%.2f", s/n}')"
done
