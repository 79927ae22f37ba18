#!/usr/bin/env bash
# dnsperf against sovdns and NSD serving the same generated zone, in one run:
# first pinned (server on CPU 0, dnsperf on CPU 1), then unpinned.
# Needs: dnsperf, nsd, taskset (Debian: dnsperf nsd util-linux). Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."

NAMES=${NAMES:-100000}
NEED="dnsperf nsd taskset dig"
. bench/common.sh

go run ./bench/gen -names "$NAMES" -out "$work"
zone=bench.test.

# NSD, response-rate limiting off; one server process when pinned to one
# CPU, one per CPU when not.
nsd_port=$(free_port)
nsd_conf() { # server-count
  cat >"$work/nsd.conf" <<CONF
server:
  ip-address: 127.0.0.1
  port: $nsd_port
  server-count: $1
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
}

# sovdns, the same zone imported with the CLI.
sov_port=$(free_port)
"$BIN" --data-dir "$work/sovdns" zone import --origin "$zone" "$work/bench.zone" >/dev/null

start_nsd() { $1 nsd -d -c "$work/nsd.conf" >"$work/nsd.log" 2>&1 & pids+=($!); }
# An authoritative server only, as NSD is: recursion off, so questions with
# RD for names below the zone's delegations get the referral.
printf 'resolver:\n  allow: []\nrate_limit:\n  responses_per_second: 0 # off, as rrl-ratelimit: 0 for NSD\n' >"$work/sovdns.yaml"
start_sov() { # cpu-prefix env...
  local pre=$1; shift
  env "$@" $pre "$BIN" serve --config "$work/sovdns.yaml" --data-dir "$work/sovdns" --listen "127.0.0.1:$sov_port" \
     --metrics-listen "" --demo-zone=false --log-level warn >"$work/sovdns.log" 2>&1 & pids+=($!)
}
stop_all() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; pids=(); }
dnsperf_run() { # port prefix seconds
  $2 dnsperf -s 127.0.0.1 -p "$1" -d "$work/queries.txt" -l "$3" -c 8 -q 500 -T 1 2>&1 |
    tee -a "$work/dnsperf.log" | awk '/Queries per second/ {print $4}'
}
measure() { # port prefix: a warm-up pass (fills caches), then the measured run
  dnsperf_run "$1" "$2" 3 >/dev/null
  dnsperf_run "$1" "$2" "$SECONDS_PER_RUN"
}

pin_srv="taskset -c 0"; pin_cli="taskset -c 1"
rows=()
row() { rows+=("$(printf '%-34s %12.0f %8.2f' "$1" "$2" "$(awk -v s="$2" -v n="$3" 'BEGIN{print s/n}')")"); }

# Pinned: NSD, then sovdns with each hot-path step switched on in turn.
nsd_conf 1; start_nsd "$pin_srv"; wait_up "$nsd_port" "$zone"
nsd_pinned=$(measure "$nsd_port" "$pin_cli"); stop_all
row "nsd (pinned, 1 server)" "$nsd_pinned" "$nsd_pinned"
for variant in "plain:SOVDNS_RESPONSE_CACHE_MB=0 SOVDNS_UDP_BATCH=false" \
               "+response cache:SOVDNS_UDP_BATCH=false" \
               "+recvmmsg/sendmmsg (default):"; do
  name=${variant%%:*}; envs=${variant#*:}
  start_sov "$pin_srv" $envs; wait_up "$sov_port" "$zone"
  q=$(measure "$sov_port" "$pin_cli"); stop_all
  row "sovdns pinned, $name" "$q" "$nsd_pinned"
done

# Unpinned: every process free to use both CPUs.
nsd_conf "$(nproc)"; start_nsd ""; wait_up "$nsd_port" "$zone"
nsd_free=$(measure "$nsd_port" ""); stop_all
row "nsd (unpinned, $(nproc) servers)" "$nsd_free" "$nsd_free"
start_sov ""; wait_up "$sov_port" "$zone"
q=$(measure "$sov_port" ""); stop_all
row "sovdns unpinned (default)" "$q" "$nsd_free"

echo "dnsperf -c 8 -q 500 -T 1, $NAMES-name zone, ${SECONDS_PER_RUN}s runs after a 3s warm-up,"
echo "$(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), kernel $(uname -r), $(nsd -v 2>&1 | head -1)"
printf '%-34s %12s %8s\n' "server" "queries/s" "vs NSD"
printf '%s\n' "${rows[@]}"
