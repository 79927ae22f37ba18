#!/usr/bin/env bash
# A resolver's memory over a long stream of cache misses: sovdns and
# Unbound side by side, at the same time, each asked $RATE new names a
# second for $MINUTES minutes, then left at rest for $REST_SECONDS s.
# Every name is one neither has seen for at least $NAMES names (a file of
# that many, looped over): past the first minutes each answer cached evicts
# an older one, so the caches stay full and churn for the whole run, as
# under a random-subdomain flood or a day of long-tail traffic. Beside it,
# $HOT_RATE questions a second go round $HOT_NAMES names (0: none), the
# names a working day asks again and again: answered from the caches once
# asked, they fill sovdns's response cache too. (A name comes round every
# HOT_NAMES / HOT_RATE s; the new names must not push it out of the cache
# before: at 64 MB, some 150,000 names, or 150 s at 1,000 new names a
# second.)
#
# Every $INTERVAL s it prints each resolver's resident memory (VmRSS) and,
# for sovdns, its heap in use, what its caches estimate they hold, its
# cache entries and the size of its persisted cache file; at the end, for
# each resolver, the largest and last RSS under load, the RSS at rest and
# their ratios to the cache settings.
#
# Configured alike: the same cache memory in all (sovdns: resolver.cache_mb
# and response_cache_mb, $CACHE_MB MB each, its defaults; Unbound:
# msg-cache-size and rrset-cache-size, $CACHE_MB MB each), one CPU
# (SERVER_CPUS, CPU 0 unless set; the two resolvers share it, each needing
# a few per cent at the default rate), validation off, QNAME minimisation
# off, both stub resolvers for "." at one NSD (CPU 1, with the two dnsperf)
# serving a wildcard under bench-tld., so that every name has an answer.
# sovdns persists its cache in its data directory, as deployed.
#
# Needs: dnsperf, unbound, nsd, taskset, dig, python3, curl. Loopback only;
# every load is bounded by $MINUTES.
set -euo pipefail
cd "$(dirname "$0")/.."

MINUTES=${MINUTES:-60}
RATE=${RATE:-1000} # new names a second, to each resolver
NAMES=${NAMES:-2000000}
HOT_RATE=${HOT_RATE:-1500}
HOT_NAMES=${HOT_NAMES:-100000}
CACHE_MB=${CACHE_MB:-64}
INTERVAL=${INTERVAL:-60}
REST_SECONDS=${REST_SECONDS:-120}
SERVER_CPUS=${SERVER_CPUS:-0}
NEED="dnsperf unbound nsd taskset dig python3 curl"
# shellcheck source=bench/common.sh
. bench/common.sh

auth_port=$(free_port)
mkdir -p "$work/nsd"
# shellcheck disable=SC2016 # $TTL is the zone file's, not the shell's
{
  printf '$TTL 86400\n. SOA a.root.test. h.root.test. 1 7200 900 1209600 86400\n. NS a.root.test.\na.root.test. A 127.0.0.2\n'
  printf 'bench-tld. NS a.root.test.\n'
} >"$work/nsd/root.zone"
# shellcheck disable=SC2016
printf '$ORIGIN bench-tld.\n$TTL 86400\n@ SOA a.root.test. h.root.test. 1 7200 900 1209600 3600\n@ NS a.root.test.\n* A 10.0.0.1\n' >"$work/nsd/tld.zone"
start_tld_nsd "$auth_port"
# Each resolver its own names, so that neither's questions warm the other's
# upstream (NSD keeps nothing per name, but the two streams stay apart).
for s in sovdns unbound; do
  awk -v n="$NAMES" -v p="${s:0:1}" 'BEGIN { for (i = 0; i < n; i++) printf "%s%d.bench-tld. A\n", p, i }' >"$work/$s.names"
  awk -v n="$HOT_NAMES" -v p="${s:0:1}" 'BEGIN { for (i = 0; i < n; i++) printf "%shot%d.bench-tld. A\n", p, i }' >"$work/$s.hot"
done

sov_port=$(free_port)
sov_metrics=127.0.0.1:$(free_port)
mkdir -p "$work/sovdns"
cat >"$work/sovdns/sovdns.yaml" <<CONF
demo_zone: false
listen: ["127.0.0.1:$sov_port"]
metrics: {listen: "$sov_metrics"}
log: {level: warn}
response_cache_mb: $CACHE_MB
resolver:
  allow: [127.0.0.0/8]
  query_loopback: true
  cache_mb: $CACHE_MB
  qname_minimisation: "off"
  zone_ratelimit: 0
  stub:
    - zone: "."
      servers: ["127.0.0.2:$auth_port"]
  dnssec:
    validation: false
CONF
taskset -c "$SERVER_CPUS" "$BIN" serve --data-dir "$work/sovdns/data" --config "$work/sovdns/sovdns.yaml" >"$work/sovdns/log" 2>&1 &
sov_pid=$!; pids+=("$sov_pid")

unb_port=$(free_port)
mkdir -p "$work/unbound"
unbound_server "$work/unbound" "$unb_port" >"$work/unbound/unbound.conf"
cat >>"$work/unbound/unbound.conf" <<CONF
  msg-cache-size: ${CACHE_MB}m
  rrset-cache-size: ${CACHE_MB}m
  qname-minimisation: no
  module-config: "iterator"
stub-zone:
  name: "."
  stub-addr: 127.0.0.2@$auth_port
CONF
taskset -c "$SERVER_CPUS" unbound -d -c "$work/unbound/unbound.conf" >"$work/unbound/log" 2>&1 &
unb_pid=$!; pids+=("$unb_pid")

wait_up "$sov_port" bench-tld. || { cat "$work/sovdns/log" >&2; exit 1; }
wait_up "$unb_port" bench-tld. || { cat "$work/unbound/log" >&2; exit 1; }

rss() { awk '/^VmRSS:/ {printf "%.1f", $2 / 1024}' "/proc/$1/status"; } # MiB
metric() { # name: its value (the sum of its series) in sovdns's metrics
  curl -s "http://$sov_metrics/metrics" | awk -v m="$1" '$1 == m || index($1, m "{") == 1 {s += $2} END {printf "%.0f", s}'
}
mib() { awk -v b="$1" 'BEGIN {printf "%.1f", b / 1048576}'; }
sample() { # label
  local f
  f=$(du -sk "$work/sovdns/data" | awk '{printf "%.1f", $1 / 1024}')
  printf '%-8s sovdns RSS %7s MiB  heap in use %7s MiB  caches %6s MiB  entries %8s + %8s  cache file %7s MiB   unbound RSS %7s MiB\n' \
    "$1" "$(rss "$sov_pid")" "$(mib "$(metric go_memstats_heap_inuse_bytes)")" \
    "$(mib "$(metric sovdns_resolver_cache_bytes)")" "$(metric sovdns_resolver_cache_entries)" \
    "$(metric sovdns_response_cache_entries)" "$f" "$(rss "$unb_pid")"
}

seconds=$((MINUTES * 60))
echo "each resolver: $RATE new names/s over $NAMES names and $HOT_RATE/s over $HOT_NAMES names for $MINUTES min, caches $CACHE_MB + $CACHE_MB MB, on CPU $SERVER_CPUS"
sample start
dnsperfs=()
for s in sovdns unbound; do
  port=$sov_port; [ "$s" = unbound ] && port=$unb_port
  taskset -c 1 dnsperf -s 127.0.0.1 -p "$port" -d "$work/$s.names" -c 4 -q 200 -Q "$RATE" -l "$seconds" >"$work/$s.dnsperf" 2>&1 &
  pids+=($!); dnsperfs+=($!)
  if [ "$HOT_RATE" -gt 0 ]; then
    taskset -c 1 dnsperf -s 127.0.0.1 -p "$port" -d "$work/$s.hot" -c 2 -q 100 -Q "$HOT_RATE" -l "$seconds" >"$work/$s.hot.dnsperf" 2>&1 &
    pids+=($!); dnsperfs+=($!)
  fi
done
declare -A max last
max[sovdns]=0; max[unbound]=0
t=0
while [ "$t" -lt "$seconds" ]; do
  sleep "$INTERVAL"
  t=$((t + INTERVAL))
  line=$(sample "${t}s")
  echo "$line"
  last[sovdns]=$(rss "$sov_pid"); last[unbound]=$(rss "$unb_pid")
  for s in sovdns unbound; do
    max[$s]=$(awk -v a="${max[$s]}" -v b="${last[$s]}" 'BEGIN {print (b > a) ? b : a}')
  done
done
for p in "${dnsperfs[@]}"; do wait "$p" || { cat "$work"/*.dnsperf >&2; echo "bench: dnsperf failed" >&2; exit 1; }; done
for f in "$work"/*.dnsperf; do
  echo "$(basename "$f" .dnsperf): $(grep -E 'Queries (completed|lost)|Response codes' "$f" | sed 's/^ *//' | tr '\n' ' ')"
done
sleep "$REST_SECONDS"
sample "rest"
settings=$((2 * CACHE_MB))
echo
echo "RSS (MiB) over $MINUTES min of $RATE new names/s and $HOT_RATE/s over $HOT_NAMES names, each, caches of $settings MB in all; ratio to $settings MB:"
for s in sovdns unbound; do
  pid=$sov_pid; [ "$s" = unbound ] && pid=$unb_pid
  r=$(rss "$pid")
  awk -v s="$s" -v m="${max[$s]}" -v l="${last[$s]}" -v r="$r" -v c="$settings" \
    'BEGIN {printf "%-8s largest %7.1f (%.2fx)  last %7.1f (%.2fx)  after %s s at rest %7.1f (%.2fx)\n", s, m, m / c, l, l / c, '"$REST_SECONDS"', r, r / c}'
done
echo "$("$BIN" version 2>/dev/null | head -1); $(unbound -V | head -1); $(uname -r); $(nproc) CPUs; $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')"
