#!/usr/bin/env bash
# dnsperf against the sovdns resolver and Unbound with a warm cache, in one
# run: both resolve through the same sovdns authoritative server on
# loopback (root and a TLD of N names), are warmed with every query once,
# then measured. Pinned: resolver on CPU 0, dnsperf on CPU 1.
# VALIDATE=1 (the default) signs both zones with sovdns and has both
# resolvers validate from the test root's key; VALIDATE=0 leaves them
# unsigned and validation off.
# Needs: dnsperf, unbound, taskset. Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."

NAMES=${NAMES:-20000}
VALIDATE=${VALIDATE:-1}
NEED="dnsperf unbound taskset dig"
. bench/common.sh

# The authority: 127.0.0.2 serves the root and bench-tld., which holds the names.
auth_port=$(free_port)
{
  printf '$TTL 86400\n. SOA a.root.test. h.root.test. 1 7200 900 1209600 86400\n. NS a.root.test.\na.root.test. A 127.0.0.2\n'
  printf 'bench-tld. NS a.root.test.\n'
} >"$work/root.zone"
{
  printf '$ORIGIN bench-tld.\n$TTL 86400\n@ SOA a.root.test. h.root.test. 1 7200 900 1209600 3600\n@ NS a.root.test.\n'
  for i in $(seq 0 $((NAMES - 1))); do printf 'h%d A 10.%d.%d.%d\n' "$i" $((i >> 16 & 255)) $((i >> 8 & 255)) $((i & 255)); done
} >"$work/tld.zone"
for i in $(seq 0 $((NAMES - 1))); do printf 'h%d.bench-tld. A\n' "$i"; done >"$work/queries.txt"
"$BIN" --data-dir "$work/auth" zone import "$work/tld.zone" >/dev/null
anchor=""
if [ "$VALIDATE" = 1 ]; then
  "$BIN" --data-dir "$work/auth" dnssec enable bench-tld --refresh 16d --validity 22d >/dev/null
  "$BIN" --data-dir "$work/auth" dnssec ds bench-tld >>"$work/root.zone"
fi
"$BIN" --data-dir "$work/auth" zone import --origin . "$work/root.zone" >/dev/null
if [ "$VALIDATE" = 1 ]; then
  "$BIN" --data-dir "$work/auth" dnssec enable . --refresh 16d --validity 22d >/dev/null
  anchor=$("$BIN" --data-dir "$work/auth" dnssec ds .)
fi
printf 'resolver:\n  allow: []\nrate_limit:\n  responses_per_second: 0\n' >"$work/auth.yaml" # the authority never recurses and, for the one resolver it serves, does not rate-limit
"$BIN" serve --config "$work/auth.yaml" --data-dir "$work/auth" --listen "127.0.0.2:$auth_port" --metrics-listen "" --demo-zone=false --log-level warn \
  >"$work/auth.log" 2>&1 & pids+=($!)

printf '. 86400 IN NS a.root.test.\na.root.test. 86400 IN A 127.0.0.2\n' >"$work/hints"

# sovdns as a resolver.
sov_port=$(free_port)
cat >"$work/sovdns.yaml" <<CONF
demo_zone: false
listen: ["127.0.0.1:$sov_port"]
metrics: {listen: ""}
log: {level: warn}
resolver:
  allow: [127.0.0.0/8]
  root_hints: "$work/hints"
  upstream_port: $auth_port
  query_loopback: true
  cache_mb: 256
  zone_ratelimit: 0 # the warm-up sends every name to one zone; Unbound's ratelimit is off by default too
CONF
if [ "$VALIDATE" = 1 ]; then
  printf '  dnssec:\n    builtin_root_anchors: false\n    trust_anchors: ["%s"]\n' "$anchor" >>"$work/sovdns.yaml"
else
  printf '  dnssec:\n    validation: false\n' >>"$work/sovdns.yaml"
fi

# Unbound, configured alike: the same root through a stub for ".".
unb_port=$(free_port)
cat >"$work/unbound.conf" <<CONF
server:
  interface: 127.0.0.1@$unb_port
  port: $unb_port
  username: ""
  chroot: ""
  directory: "$work"
  pidfile: "$work/unbound.pid"
  use-syslog: no
  verbosity: 0
  num-threads: 1
  do-not-query-localhost: no
  access-control: 127.0.0.0/8 allow
  msg-cache-size: 128m
  rrset-cache-size: 128m
  qname-minimisation: no
  harden-referral-path: no
  module-config: "$([ "$VALIDATE" = 1 ] && echo "validator iterator" || echo iterator)"
  $([ "$VALIDATE" = 1 ] && echo "trust-anchor: \"$anchor\"")
stub-zone:
  name: "."
  stub-addr: 127.0.0.2@$auth_port
CONF

run() { # port seconds
  taskset -c 1 dnsperf -s 127.0.0.1 -p "$1" -d "$work/queries.txt" -l "$2" -c 8 -q 500 -T 1 >"$work/dnsperf.out" 2>&1
  grep 'Response codes' "$work/dnsperf.out" >&2
  awk '/Queries per second/ {print $4}' "$work/dnsperf.out"
}
measure() { # pid-to-stop port
  run "$2" 5 >/dev/null # warm: every name resolved once
  q=$(run "$2" "$SECONDS_PER_RUN")
  kill "$1"; wait "$1" 2>/dev/null || true
  echo "$q"
}

taskset -c 0 unbound -d -c "$work/unbound.conf" >"$work/unbound.log" 2>&1 & upid=$!; pids+=($upid)
wait_up "$unb_port" bench-tld.
unbound_ad=$(dig +dnssec +tries=1 +time=2 @127.0.0.1 -p "$unb_port" h1.bench-tld. A | grep -E 'flags:.* ad' || true)
unbound_q=$(measure "$upid" "$unb_port")

taskset -c 0 "$BIN" serve --data-dir "$work/resolver" --config "$work/sovdns.yaml" >"$work/sovdns.log" 2>&1 & spid=$!; pids+=($spid)
wait_up "$sov_port" bench-tld.
sovdns_ad=$(dig +dnssec +tries=1 +time=2 @127.0.0.1 -p "$sov_port" h1.bench-tld. A | grep -E 'flags:.* ad' || true)
sovdns_q=$(measure "$spid" "$sov_port")

if [ "$VALIDATE" = 1 ]; then
  echo "AD on a validated answer from each: unbound $(grep -c . <<<"$unbound_ad") sovdns $(grep -c . <<<"$sovdns_ad")"
fi
echo "warm-cache resolution (validation: $VALIDATE), $NAMES names, ${SECONDS_PER_RUN}s runs after a 5s warm-up, pinned, $(unbound -V | head -1)"
printf '%-10s %12s %8s\n' server queries/s "vs Unbound"
printf '%-10s %12.0f %8.2f\n' unbound "$unbound_q" 1
printf '%-10s %12.0f %8.2f\n' sovdns "$sovdns_q" "$(awk -v s="$sovdns_q" -v u="$unbound_q" 'BEGIN{print s/u}')"
