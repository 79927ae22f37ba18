#!/usr/bin/env bash
# Two sovdns builds side by side on the cache-miss path, at the same time:
# both resolvers pinned to CPU 0, each with its own cache, data directory
# and dnsperf (on CPU 1) asking the same new names, once each, of one NSD
# (on CPU 1, 127.0.0.2). Both run through the same moments of the host, so
# the ratio of their CPU per miss (user + system, from /proc) holds still
# where one build's runs after the other's differ by 10-20 % on a shared
# host: two runs of one build against itself give 0.99-1.01. Each round
# swaps which build goes first. Prints one line per round and the median
# of B's CPU per miss over A's.
#
#   A=old/sovdns B=new/sovdns bench/resolver-ab.sh
#
# NAMES (100000) new names per round, ROUNDS (3), OUTSTANDING (100) queries
# each dnsperf keeps in flight. QPS, when set, asks each build at that
# rate instead of as fast as it answers, and prints each one's median,
# 99th and 99.9th percentile latency as well (in ms, from dnsperf -v). Needs dnsperf, nsd, taskset, dig, python3;
# 127.0.0.2:53 must be free (root, or CAP_NET_BIND_SERVICE, for NSD).
# Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."

A=${A:?A=path of the first build}
B=${B:?B=path of the second build}
NAMES=${NAMES:-100000}
ROUNDS=${ROUNDS:-3}
OUTSTANDING=${OUTSTANDING:-100}
QPS=${QPS:-}
BIN=$A
NEED="dnsperf nsd taskset dig python3"
# shellcheck source=bench/common.sh
. bench/common.sh
[ -x "$B" ] || { echo "bench: $B is not an executable" >&2; exit 1; }
tck=$(getconf CLK_TCK)

# The zones: the root delegates bench-tld. to 127.0.0.2, which holds
# NAMES names for each round.
total=$((NAMES * ROUNDS))
mkdir -p "$work/nsd"
# shellcheck disable=SC2016 # $TTL is the zone file's
printf '$TTL 86400\n. SOA a.root.test. h.root.test. 1 7200 900 1209600 86400\n. NS a.root.test.\na.root.test. A 127.0.0.2\nbench-tld. NS a.root.test.\n' >"$work/nsd/root.zone"
awk -v n="$total" 'BEGIN {
  printf "$ORIGIN bench-tld.\n$TTL 86400\n@ SOA a.root.test. h.root.test. 1 7200 900 1209600 3600\n@ NS a.root.test.\n"
  for (i = 0; i < n; i++) printf "h%d A 10.%d.%d.%d\n", i, int(i / 65536) % 256, int(i / 256) % 256, i % 256
}' >"$work/nsd/tld.zone"
printf '. 86400 IN NS a.root.test.\na.root.test. 86400 IN A 127.0.0.2\n' >"$work/hints"
start_tld_nsd 53

cpu() { sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; } # utime + stime, in ticks

ratios=()
for round in $(seq 1 "$ROUNDS"); do
  awk -v lo=$(((round - 1) * NAMES)) -v n="$NAMES" 'BEGIN { for (i = lo; i < lo + n; i++) printf "h%d.bench-tld. A\n", i }' >"$work/q.txt"
  order=(A B)
  [ $((round % 2)) = 0 ] && order=(B A)
  declare -A pid port
  for x in "${order[@]}"; do
    port[$x]=$(free_port)
    mkdir -p "$work/$x-$round"
    cat >"$work/$x-$round/sovdns.yaml" <<CONF
demo_zone: false
listen: ["127.0.0.1:${port[$x]}"]
metrics: {listen: ""}
log: {level: warn}
resolver:
  allow: [127.0.0.0/8]
  root_hints: "$work/hints"
  query_loopback: true
  cache_mb: 256
  qname_minimisation: "off"
  zone_ratelimit: 0
  dnssec:
    validation: false
CONF
    bin=$A
    [ "$x" = B ] && bin=$B
    taskset -c 0 "$bin" serve --data-dir "$work/$x-$round/data" --config "$work/$x-$round/sovdns.yaml" >"$work/$x-$round/log" 2>&1 &
    pid[$x]=$!; pids+=("${pid[$x]}")
  done
  for x in A B; do wait_up "${port[$x]}" bench-tld. || { cat "$work/$x-$round/log" >&2; exit 1; }; done
  declare -A t0 perf
  for x in A B; do t0[$x]=$(cpu "${pid[$x]}"); done
  for x in "${order[@]}"; do
    rate=()
    [ -n "$QPS" ] && rate=(-Q "$QPS" -v)
    taskset -c 1 dnsperf -s 127.0.0.1 -p "${port[$x]}" -d "$work/q.txt" -n 1 -c 8 -q "$OUTSTANDING" -T 1 -l 300 "${rate[@]}" >"$work/$x-$round/dnsperf.out" 2>&1 &
    perf[$x]=$!
  done
  wait "${perf[A]}" "${perf[B]}"
  declare -A us
  for x in A B; do
    n=$(awk '/Queries completed:/ {print $3}' "$work/$x-$round/dnsperf.out")
    [ "${n:-0}" -gt 0 ] || { tail "$work/$x-$round/dnsperf.out" >&2; exit 1; }
    us[$x]=$(awk -v d=$(($(cpu "${pid[$x]}") - t0[$x])) -v t="$tck" -v n="$n" 'BEGIN {printf "%.1f", d / t * 1e6 / n}')
    kill "${pid[$x]}"
  done
  wait "${pid[A]}" "${pid[B]}" 2>/dev/null || true
  r=$(awk -v a="${us[A]}" -v b="${us[B]}" 'BEGIN {printf "%.3f", b / a}')
  ratios+=("$r")
  printf 'round %d (%s first): A %s µs/miss  B %s µs/miss  B/A %s\n' "$round" "${order[0]}" "${us[A]}" "${us[B]}" "$r"
  if [ -n "$QPS" ]; then
    for x in A B; do
      # dnsperf -v prints one line per answer, its latency in seconds last.
      awk '/^> / && $NF ~ /^[0-9.]+$/ {print $NF * 1000}' "$work/$x-$round/dnsperf.out" | sort -g |
        awk -v x="$x" -v q="$QPS" '{v[NR] = $1} END {i50 = int(NR * 0.5); i99 = int(NR * 0.99); i999 = int(NR * 0.999); if (i50 < 1) i50 = 1; if (i99 < 1) i99 = 1; if (i999 < 1) i999 = 1; printf "  %s at %s q/s: p50 %.3f ms  p99 %.3f ms  p99.9 %.3f ms\n", x, q, v[i50], v[i99], v[i999]}'
    done
  fi
done
printf 'median B/A: %s  (%d names a round, %d in flight each; A %s, B %s)\n' \
  "$(printf '%s\n' "${ratios[@]}" | sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}')" \
  "$NAMES" "$OUTSTANDING" "$A" "$B"
