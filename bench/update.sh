#!/usr/bin/env bash
# Dynamic UPDATE on a large zone, Knot DNS beside sovdns, one server at a
# time on the same generated zone (bench/gen: about 100k names): the
# latency of single UPDATEs, the rate of UPDATEs from 16 parallel clients,
# and the latency of queries sent to the same server meanwhile
# (bench/updload). Servers pinned to CPU 0, the load to CPU 1; the queries
# come from a process of their own at a higher priority, so that their
# latency is the server's rather than the load generator's: first 5 s
# alone, then during the UPDATEs.
# With SIGNED=1 both servers sign the zone (NSEC3, no iterations or salt,
# ECDSA P-256 with one combined key) and every UPDATE is signed as it is
# applied.
# Loopback only.
#
# Needs: knotd, taskset, dig (Debian: knot util-linux dnsutils).
set -euo pipefail
cd "$(dirname "$0")/.."
NAMES=${NAMES:-100000}
SIGNED=${SIGNED:-0}
[ "$SIGNED" = 1 ] && WAIT_UP=${WAIT_UP:-300} # Knot signs the zone before it answers
NEED="knotd taskset dig"
. bench/common.sh

go run ./bench/gen -names "$NAMES" -queries 10 -out "$work" >/dev/null
go build -o "$work/updload" ./bench/updload
zone=bench.test.
port=$(free_port)
pin_srv="taskset -c 0"
pin_cli="taskset -c 1"

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
acl:
  - id: update
    address: 127.0.0.1
    action: update
template:
  - id: default
    storage: "$work"
    zonefile-sync: -1
zone:
  - domain: $zone
    file: bench.zone
    acl: update
CONF
if [ "$SIGNED" = 1 ]; then # the policy goes before the zones that name it
  cat >>"$work/knot.conf" <<CONF
    dnssec-signing: on
    dnssec-policy: nsec3
CONF
  sed -i '/^template:/i policy:\n  - id: nsec3\n    algorithm: ecdsap256sha256\n    single-type-signing: on\n    nsec3: on\n    nsec3-iterations: 0\n    nsec3-salt-length: 0' "$work/knot.conf"
fi

"$BIN" --data-dir "$work/sovdns" zone import --origin "$zone" "$work/bench.zone" >/dev/null
if [ "$SIGNED" = 1 ]; then
  "$BIN" --data-dir "$work/sovdns" dnssec enable "$zone" --nsec3 >/dev/null
fi
printf 'resolver:\n  allow: []\nrate_limit:\n  responses_per_second: 0\nprimary:\n  allow_update: ["127.0.0.1"]\n' >"$work/sovdns.yaml"

start() { # name
  case $1 in
  knot) $pin_srv knotd -c "$work/knot.conf" >"$work/knot.log" 2>&1 & ;;
  sovdns) $pin_srv "$BIN" serve --config "$work/sovdns.yaml" --data-dir "$work/sovdns" --listen "127.0.0.1:$port" \
            --metrics-listen "" --demo-zone=false --log-level warn >"$work/sovdns.log" 2>&1 & ;;
  esac
  pid=$!; pids+=("$pid")
  wait_up "$port" "$zone"
  if [ "$SIGNED" = 1 ]; then # until the zone is served signed (Knot signs it at load)
    for _ in $(seq 1 600); do
      dig +dnssec +time=1 +tries=1 -p "$port" @127.0.0.1 "$zone" SOA | grep -q RRSIG && return 0
      sleep 0.5
    done
    echo "bench: $1 did not serve $zone signed" >&2; return 1
  fi
}

records=$(grep -cv '^\$\|^;\|^$' "$work/bench.zone" || true)
signed=unsigned; [ "$SIGNED" = 1 ] && signed="signed with NSEC3"
echo "zone $zone: about $records records, $signed; $(knotd -V 2>&1 | head -1); sovdns $("$BIN" version 2>/dev/null | head -1)"
declare -A out
for server in knot sovdns; do
  start $server
  idle=$($pin_cli nice -n -10 "$work/updload" -server "127.0.0.1:$port" -probe 5s -qrate 500)
  $pin_cli nice -n -10 "$work/updload" -server "127.0.0.1:$port" -probe 8s -qrate 500 >"$work/probe.out" &
  probe=$!
  sleep 0.5
  out[$server]=$($pin_cli "$work/updload" -server "127.0.0.1:$port" -zone "$zone" -prefix "$server" -single 200 -parallel 16 -total 2000 -qrate 1 -idle 0s)
  wait $probe
  out[$server]="${out[$server]% query_p50_ms*} $(cat "$work/probe.out") idle_query_p99_ms $(awk '{print $4}' <<<"$idle")"
  stop_all
  echo "$server: ${out[$server]}"
done
field() { awk -v f="$2" '{for (i = 1; i < NF; i++) if ($i == f) print $(i+1)}' <<<"${out[$1]}"; }
printf '%-26s %10s %10s %8s\n' "" knot sovdns ratio
for f in single_median_ms parallel_updates_per_s query_p99_ms idle_query_p99_ms lost; do
  k=$(field knot $f); s=$(field sovdns $f)
  printf '%-26s %10s %10s %8s\n' "$f" "$k" "$s" "$(awk -v k="$k" -v s="$s" 'BEGIN { if (k > 0) printf "%.2f", s / k; else print "-" }')"
done
