#!/usr/bin/env bash
# Three recursive resolvers side by side in one run: Unbound, Knot Resolver
# (kresd) and sovdns, configured alike, all resolving through the same NSD
# authority on loopback (a root zone and a TLD, bench-tld., of $NAMES names).
# Each round starts every resolver fresh, one after the other, and measures
# (PHASES picks them: "cold" for cold, hit and latency, "misses", "full",
# "syscalls"; the first three unless set):
#   cold     every name asked exactly once (dnsperf -n 1): all cache misses,
#            each one an upstream query and, with VALIDATE=1, a validation;
#   hit      $HIT_SECONDS s over the same names again: all cache hits;
#   latency  $LAT_QPS queries/s for $LAT_SECONDS s over the cached names: the
#            median and 99th percentile of dnsperf's per-query latencies;
#   misses   the resolver started afresh and every name asked once at
#            MISS_QPS queries/s (0: no such phase): a stream of
#            misses below capacity (a random-subdomain flood), its median,
#            99th and 99.9th percentile latencies;
#   full     the resolver started afresh with a cache of FULL_MB MB (16
#            unless set; 0: no such phase), every name asked once at full
#            speed, which overflows it, then $NAMES names it has never
#            seen at MISS_QPS queries/s: the same stream, at a full cache
#            (each new entry evicts an old one), its percentiles, the CPU
#            per query of the stream and the resident memory after it, and
#            again after $REST_SECONDS s without queries (5 unless set).
#            Knot Resolver's entries are smaller: at 16 MB its cache may
#            not be full after the fill;
#   syscalls the resolver started afresh, $SYSCALL_NAMES of the names asked
#            once at 2,000 q/s under strace -f -c (not in the default
#            PHASES): the system calls a miss makes, in all and by call.
#            Unlike CPU time, the count does not move with a noisy host,
#            and each call costs the same kernel entry to every resolver;
# with queries/s and the resolver's CPU time (user + system, from /proc) per
# completed query for the first two, and its resident memory (VmRSS) after
# the hit phase. $ROUNDS rounds (the resolvers interleaved within each), one
# line per resolver and round, then the medians, sovdns's ratios to Unbound
# and to Knot Resolver, and the versions.
# Pinned: the resolver on CPU 0; dnsperf and NSD on CPU 1.
# VALIDATE=1 (the default) signs both zones (ldns-signzone from ldns-utils,
# else dnssec-signzone from bind9-utils; ECDSA P-256, one key per zone that
# signs everything, NSEC)
# and gives every resolver the test root's DS as its only trust anchor;
# VALIDATE=0 leaves the zones unsigned and validation off.
# Needs: dnsperf, unbound, knot-resolver (kresd), nsd, taskset, dig, python3, ss;
# strace for the syscalls phase;
# ldns-utils or bind9-utils for VALIDATE=1. Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."

NAMES=${NAMES:-50000}
ROUNDS=${ROUNDS:-3}
HIT_SECONDS=${HIT_SECONDS:-20}
LAT_SECONDS=${LAT_SECONDS:-10}
LAT_QPS=${LAT_QPS:-10000}
MISS_QPS=${MISS_QPS:-} # 0: no misses phase; empty: 5000, 2000 with VALIDATE=1 (some 40 % of a resolver's cold rate)
FULL_MB=${FULL_MB:-16} # the cache of the full phase; 0: no such phase (nor without a misses phase)
REST_SECONDS=${REST_SECONDS:-5} # after the full phase's stream, how long the resolver rests before its resident memory is read again
VALIDATE=${VALIDATE:-1}
CACHE_MB=${CACHE_MB:-256} # each resolver's cache: Unbound's msg + rrset, kresd's, sovdns's resolver.cache_mb
RESPONSE_CACHE_MB=${RESPONSE_CACHE_MB:-} # sovdns's response_cache_mb; empty: its default
MODE=${MODE:-} # iterate or stub; empty: iterate when 127.0.0.2:53 can be bound
PHASES=${PHASES:-"cold misses full"} # cold: the cold, hit and latency phases; misses; full; syscalls
SYSCALL_NAMES=${SYSCALL_NAMES:-10000} # the syscalls phase's names
SERVER_CPUS=${SERVER_CPUS:-0} # the CPUs the resolvers run on (taskset -c); dnsperf and NSD run on CPU 1 whatever it is
# KEEP_LOGS, when set, is a directory where each run's log and each phase's
# dnsperf output (with -v, every answer's latency in order) are kept.
has_phase() { [[ " $PHASES " == *" $1 "* ]]; }
has_phase full || FULL_MB=0
[ -n "$MISS_QPS" ] || { [ "$VALIDATE" = 1 ] && MISS_QPS=2000 || MISS_QPS=5000; }
[ "$MISS_QPS" -gt 0 ] || FULL_MB=0
misses=0
[ "$MISS_QPS" -gt 0 ] && has_phase misses && misses=1
command -v kresd >/dev/null || { echo "bench: kresd is not installed (Debian package knot-resolver)" >&2; exit 1; }
NEED="dnsperf unbound kresd nsd taskset dig python3 ss"
has_phase syscalls && NEED+=" strace"
# shellcheck source=bench/common.sh
. bench/common.sh
servers=${SERVERS:-"unbound kresd sovdns sovdns-1p"}
tck=$(getconf CLK_TCK)

# The mode, the same for all three resolvers. Knot Resolver sends every
# upstream query to port 53, so to iterate from the root ("iterate": root
# hints naming a.root.test. at 127.0.0.2, priming, then the answers) NSD must
# listen on 127.0.0.2:53, which needs root or CAP_NET_BIND_SERVICE. Without
# it ("stub"), NSD takes a free port and each resolver sends everything
# under "." to 127.0.0.2 at that port: an Unbound stub-zone and a sovdns
# resolver.stub (queries without RD); kresd policy.FORWARD (with RD, which
# NSD ignores), as its policy.STUB does not validate. As NSD serves both
# zones from the one address, in either mode each new name costs one
# upstream query, answered authoritatively from bench-tld.
if [ -z "$MODE" ]; then
  if python3 -c 'import socket
for t in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
    s = socket.socket(socket.AF_INET, t); s.bind(("127.0.0.2", 53)); s.close()' 2>/dev/null; then
    MODE=iterate
  else
    MODE=stub
  fi
fi
case $MODE in
iterate) auth_port=53 ;;
stub) auth_port=$(free_port) ;;
*) echo "bench: MODE must be iterate or stub" >&2; exit 1 ;;
esac

# The zones: the root delegates bench-tld. to a.root.test. (127.0.0.2), which
# holds the names h0 .. h$((NAMES - 1)), and for the full phase as many more,
# its stream's (fresh.txt).
mkdir -p "$work/nsd" "$work/keys"
# shellcheck disable=SC2016 # $TTL is the zone file's, not the shell's
{
  printf '$TTL 86400\n. SOA a.root.test. h.root.test. 1 7200 900 1209600 86400\n. NS a.root.test.\na.root.test. A 127.0.0.2\n'
  printf 'bench-tld. NS a.root.test.\n'
} >"$work/nsd/root.zone"
zone_names=$NAMES
[ "$FULL_MB" -gt 0 ] && zone_names=$((2 * NAMES))
awk -v n="$zone_names" 'BEGIN {
  printf "$ORIGIN bench-tld.\n$TTL 86400\n@ SOA a.root.test. h.root.test. 1 7200 900 1209600 3600\n@ NS a.root.test.\n"
  for (i = 0; i < n; i++) printf "h%d A 10.%d.%d.%d\n", i, int(i / 65536) % 256, int(i / 256) % 256, i % 256
}' >"$work/nsd/tld.zone"
awk -v n="$NAMES" 'BEGIN { for (i = 0; i < n; i++) printf "h%d.bench-tld. A\n", i }' >"$work/queries.txt"
awk -v n="$NAMES" 'BEGIN { for (i = n; i < 2 * n; i++) printf "h%d.bench-tld. A\n", i }' >"$work/fresh.txt"

# Signing, with a KSK per zone that signs everything; bench-tld.'s DS goes
# into the root before the root is signed. Prints the DS of the key.
sign() { # origin zone-file
  local k
  if command -v ldns-signzone >/dev/null && command -v ldns-keygen >/dev/null; then
    k=$(cd "$work/keys" && ldns-keygen -a ECDSAP256SHA256 -k "$1")
    ldns-signzone -o "$1" -f "$2.signed" "$2" "$work/keys/$k"
    tr -s ' \t' '  ' <"$work/keys/$k.ds"
  else
    k=$(dnssec-keygen -q -a ECDSAP256SHA256 -f KSK -K "$work/keys" "$1")
    cat "$work/keys/$k.key" >>"$2"
    dnssec-signzone -q -z -d "$work/keys" -o "$1" -f "$2.signed" "$2" "$work/keys/$k" >/dev/null
    dnssec-dsfromkey -2 "$work/keys/$k.key"
  fi
  mv "$2.signed" "$2"
}
anchor=""
if [ "$VALIDATE" = 1 ]; then
  if ! command -v ldns-signzone >/dev/null && ! command -v dnssec-signzone >/dev/null; then
    echo "bench: VALIDATE=1 needs ldns-signzone or dnssec-signzone (apt-get install ldns-utils)" >&2; exit 1
  fi
  sign bench-tld. "$work/nsd/tld.zone" >>"$work/nsd/root.zone"
  anchor=$(sign . "$work/nsd/root.zone")
fi

start_tld_nsd "$auth_port"

printf '. 86400 IN NS a.root.test.\na.root.test. 86400 IN A 127.0.0.2\n' >"$work/hints"

# The resolvers, alike: one CPU (sovdns runs twice: as deployed, where
# serve keeps the runtime's one scheduler processor, as it holds no zones
# (with zones it raises them to at least 4 so that zone edits never hold a
# listener for a scheduling slice); and as sovdns-1p with GOMAXPROCS=1,
# one thread's worth like Unbound's num-threads 1, set by hand),
# a cache of $CACHE_MB MB (256 unless set), QNAME minimisation off, 0x20 off, loopback upstreams and
# clients allowed, the same root (or stub), the same trust anchor, and a
# 4 MB receive buffer on the client socket, which sovdns sets for itself (with
# the default 208 KB, dnsperf's first burst of 500 queries overflows it).
# Each start takes a new free port, written where @PORT@ stands.

# Unbound: num-threads 1; msg + rrset caches of $CACHE_MB MB together.
unbound_server "$work" @PORT@ >"$work/unbound.conf"
cat >>"$work/unbound.conf" <<CONF
  msg-cache-size: $((CACHE_MB / 2))m
  rrset-cache-size: $((CACHE_MB / 2))m
  qname-minimisation: no
  harden-referral-path: no
  module-config: "$([ "$VALIDATE" = 1 ] && echo "validator iterator" || echo iterator)"
  $([ "$VALIDATE" = 1 ] && echo "trust-anchor: \"$anchor\"")
  $([ "$MODE" = iterate ] && echo "root-hints: \"$work/hints\"")
CONF
if [ "$MODE" = stub ]; then
  printf 'stub-zone:\n  name: "."\n  stub-addr: 127.0.0.2@%s\n' "$auth_port" >>"$work/unbound.conf"
fi

# Knot Resolver: one kresd process (-n, no forks); the LMDB cache, $CACHE_MB MB,
# in a fresh directory per start (it outlives the process otherwise). The
# distribution's root key, loaded by default, is removed: the test root's DS
# is the only anchor, or none (VALIDATE=0: everything is insecure). Its
# default policy answers names under test. NXDOMAIN itself (RFC 6761), which
# would keep it from priming the root from a.root.test.: that rule (test.,
# onion., invalid., local.) is suspended (Unbound's local zone test. only
# concerns client questions; sovdns has none). kresd has no receive-buffer
# setting, so it is handed its UDP socket ready-made, as from a supervisor
# (kresd -S fd), opened with the 4 MB buffer by $with_rcvbuf. Its VmRSS
# counts the pages of the memory-mapped cache file it has touched.
with_rcvbuf='import os, socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.set_inheritable(True)
os.execvp(sys.argv[2], [a.replace("@FD@", str(s.fileno())) for a in sys.argv[2:]])'
kres_conf() { # cache-dir
  cat <<CONF
cache.open($CACHE_MB * MB, 'lmdb://$1')
option('NO_MINIMIZE', true)
option('NO_0X20', true)
option('ALLOW_LOCAL', true)
trust_anchors.remove('.')
policy.special_names[2].suspended = true
CONF
  [ "$VALIDATE" = 1 ] && echo "trust_anchors.add('$anchor')"
  if [ "$MODE" = iterate ]; then
    echo "modules.load('hints > iterate')"
    echo "hints.root({ ['a.root.test.'] = '127.0.0.2' })"
  else
    echo "policy.add(policy.all(policy.FORWARD('127.0.0.2@$auth_port')))"
  fi
}

# sovdns: as it is deployed but for the test hierarchy (root hints, upstream
# port, loopback) and the per-zone rate limit, which a benchmark sending
# every name to one zone would hit (zone_ratelimit; Unbound and Knot
# Resolver have none by default). Its other defaults stay, among them
# max_zone_in_flight (questions beyond it queue while the zone answers) and
# the cache persisted in data_dir (written behind, on CPU 0 too).
cat >"$work/sovdns.yaml" <<CONF
demo_zone: false
$([ -n "$RESPONSE_CACHE_MB" ] && echo "response_cache_mb: $RESPONSE_CACHE_MB")
listen: ["127.0.0.1:@PORT@"]
metrics: {listen: ""}
log: {level: warn}
resolver:
  allow: [127.0.0.0/8]
  root_hints: "$work/hints"
  upstream_port: $auth_port
  query_loopback: true
  cache_mb: $CACHE_MB
  qname_minimisation: "off"
  zone_ratelimit: 0
CONF
if [ "$MODE" = stub ]; then
  printf '  stub:\n    - zone: "."\n      servers: ["127.0.0.2:%s"]\n' "$auth_port" >>"$work/sovdns.yaml"
fi
if [ "$VALIDATE" = 1 ]; then
  printf '  dnssec:\n    builtin_root_anchors: false\n    trust_anchors: ["%s"]\n' "$anchor" >>"$work/sovdns.yaml"
else
  printf '  dnssec:\n    validation: false\n' >>"$work/sovdns.yaml"
fi

start() { # server round [cache-MB]: starts it fresh on CPU 0 on a new $port (with a cache of cache-MB, else $CACHE_MB), sets $pid, waits until it resolves
  local dir="$work/run-$1-$2" mb=${3:-$CACHE_MB}
  mkdir -p "$dir"
  port=$(free_port)
  case $1 in
  unbound)
    sed -e "s/@PORT@/$port/g" -e "s/^  msg-cache-size: .*/  msg-cache-size: $((mb / 2))m/" \
      -e "s/^  rrset-cache-size: .*/  rrset-cache-size: $((mb / 2))m/" "$work/unbound.conf" >"$dir/unbound.conf"
    taskset -c "$SERVER_CPUS" unbound -d -c "$dir/unbound.conf" >"$dir/log" 2>&1 & ;;
  kresd)
    CACHE_MB=$mb kres_conf "$dir/cache" >"$dir/kresd.conf"
    taskset -c "$SERVER_CPUS" python3 -c "$with_rcvbuf" "$port" kresd -n -S @FD@ -c "$dir/kresd.conf" "$dir" >"$dir/log" 2>&1 & ;;
  sovdns | sovdns-[0-9]p)
    local procs=""
    [ "$1" = sovdns ] || { procs=${1#sovdns-}; procs=${procs%p}; }
    sed -e "s/@PORT@/$port/g" -e "s/^  cache_mb: .*/  cache_mb: $mb/" "$work/sovdns.yaml" >"$dir/sovdns.yaml"
    GOMAXPROCS=$procs taskset -c "$SERVER_CPUS" "$BIN" serve --data-dir "$dir/data" --config "$dir/sovdns.yaml" >"$dir/log" 2>&1 & ;;
  esac
  pid=$!; pids+=("$pid")
  # The readiness check resolves bench-tld. SOA: every resolver knows the
  # root, the zone's servers and (VALIDATE=1) both zones' keys before the
  # cold pass, whose names are then all new to it.
  wait_up "$port" bench-tld. || { cat "$dir/log" >&2; exit 1; }
  # Unbound and sovdns listen with SO_REUSEPORT: a process of the same user
  # on the same port would silently take part of the queries.
  if ss -Hlunp "sport = :$port" | grep -v "pid=$pid," | grep -q .; then
    echo "bench: another process listens on port $port too: $(ss -Hlunp "sport = :$port")" >&2; exit 1
  fi
}

stop() { # stops $pid (TERM, then KILL after 10 s) and forgets it
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  local keep=() p
  for p in "${pids[@]}"; do [ "$p" = "$pid" ] || keep+=("$p"); done
  pids=("${keep[@]}")
}

forget() { # run: removes $work/run-<run>, its log kept in $KEEP_LOGS/<run>.log when set
  [ -z "${KEEP_LOGS:-}" ] || { mkdir -p "$KEEP_LOGS"; cp "$work/run-$1/log" "$KEEP_LOGS/$1.log" 2>/dev/null || true; }
  rm -rf "$work/run-$1"
}

cpu_ticks() { sed 's/.*) //' "/proc/$pid/stat" | awk '{print $12 + $13}'; } # utime + stime of $pid, all threads

# dnsperf on CPU 1 over the names, 8 clients, 500 outstanding; its output in
# $out. Shows the response codes (stderr), sets $ok to the NOERROR share of
# the completed queries (%), warns under 99% and fails under 90%: a
# misconfigured resolver, not a result.
perf() { # label dnsperf-options...
  local label=$1; shift
  out="$work/dnsperf-${label//[^a-z0-9]/-}.out"
  taskset -c 1 dnsperf -s 127.0.0.1 -p "$port" -d "${names:-$work/queries.txt}" -c 8 -q 500 -T 1 "$@" >"$out" 2>&1 \
    || { tail -20 "$out" >&2; echo "bench: dnsperf failed ($label)" >&2; exit 1; }
  ok=$(awk '/Queries completed:/ {n = $3} /Response codes:/ {for (i = 3; i < NF; i++) if ($i ~ /^NOERROR/) ok = $(i + 1)}
    END {printf "%.1f", (n > 0 ? 100 * ok / n : 0)}' "$out")
  [ -z "${KEEP_LOGS:-}" ] || { mkdir -p "$KEEP_LOGS"; cp "$out" "$KEEP_LOGS/"; }
  echo "$label: $(grep -E 'Queries (sent|completed|lost)' "$out" | awk '{printf "%s %s %s  ", $1, $2, $3}')$(grep 'Response codes' "$out" | sed 's/^ *//')" >&2
  awk -v ok="$ok" 'BEGIN {exit !(ok >= 99)}' || echo "bench: warning: $label: only $ok% NOERROR" >&2
  awk -v ok="$ok" 'BEGIN {exit !(ok >= 90)}' \
    || { echo "bench: $label: most answers are not NOERROR: $(grep 'Response codes' "$out" | sed 's/^ *//'); the resolver is misconfigured (log: $work/run-*)" >&2; exit 1; }
}

# A throughput phase: sets $tq (queries/s) and $tc (CPU µs per query).
throughput() { # label dnsperf-options...
  local before after
  before=$(cpu_ticks)
  perf "$@"
  after=$(cpu_ticks)
  read -r tq tc < <(awk -v d=$((after - before)) -v t="$tck" '/Queries per second:/ {q = $4} /Queries completed:/ {n = $3}
    END {printf "%.0f %.1f\n", q, d / t * 1e6 / n}' "$out")
}

# The median, 99th and 99.9th percentile, in ms, of the latencies in
# dnsperf -v's output on stdin.
percentiles() {
  awk '/^> / && $NF ~ /^[0-9.]+$/ {print $NF * 1000}' | sort -g |
    awk '{v[NR] = $1} END {i50 = int(NR * 0.5); i99 = int(NR * 0.99); i999 = int(NR * 0.999); if (i50 < 1) i50 = 1; if (i99 < 1) i99 = 1; if (i999 < 1) i999 = 1; printf "%.3f %.3f %.3f\n", v[i50], v[i99], v[i999]}'
}

declare -A res ad
for round in $(seq 1 "$ROUNDS"); do
  for s in $servers; do
    if has_phase cold; then
      start "$s" "$round"
      throughput "$s/$round cold" -n 1 -l 300
      cq=$tq cc=$tc cok=$ok
      throughput "$s/$round hit" -l "$HIT_SECONDS"
      hq=$tq hc=$tc
      rss=$(awk '/^VmRSS:/ {printf "%.0f", $2 / 1024}' "/proc/$pid/status")
      # dnsperf -v prints one line per answer, its latency in seconds last
      # (lost queries, none so far, have none and are left out).
      perf "$s/$round latency" -Q "$LAT_QPS" -l "$LAT_SECONDS" -v
      read -r p50 p99 < <(awk '/^> / && $NF ~ /^[0-9.]+$/ {print $NF * 1000}' "$out" | sort -g |
        awk '{v[NR] = $1} END {i50 = int(NR * 0.5); i99 = int(NR * 0.99); if (i50 < 1) i50 = 1; if (i99 < 1) i99 = 1; printf "%.3f %.3f\n", v[i50], v[i99]}')
      if [ "$VALIDATE" = 1 ]; then
        ad[$s]=$(dig +dnssec +tries=1 +time=2 @127.0.0.1 -p "$port" h1.bench-tld. A | grep -cE 'flags:.* ad' || true)
        [ "${ad[$s]}" = 1 ] || { echo "bench: $s did not set AD on a validated answer: is it validating?" >&2; exit 1; }
    fi
    stop
    forget "$s-$round"
    for m in cq cc hq hc p50 p99 rss; do res[$s,$m]+="${!m} "; done
    printf 'round %d %-8s cold %7s q/s %6s µs/q (%s%% NOERROR)   hit %7s q/s %6s µs/q   latency at %s q/s: p50 %s ms p99 %s ms   RSS %s MB\n' \
      "$round" "$s" "$cq" "$cc" "$cok" "$hq" "$hc" "$LAT_QPS" "$p50" "$p99" "$rss"
    fi
    if [ "$misses" = 1 ]; then
      start "$s" "$round-misses"
      perf "$s/$round misses" -n 1 -Q "$MISS_QPS" -l 300 -v
      read -r mp50 mp99 mp999 < <(percentiles <"$out")
      stop
      forget "$s-$round-misses"
      for m in mp50 mp99 mp999; do res[$s,$m]+="${!m} "; done
      printf 'round %d %-8s misses at %s q/s: p50 %s ms p99 %s ms p99.9 %s ms\n' "$round" "$s" "$MISS_QPS" "$mp50" "$mp99" "$mp999"
    fi
    if [ "$FULL_MB" -gt 0 ]; then
      start "$s" "$round-full" "$FULL_MB"
      perf "$s/$round full-fill" -n 1 -l 300
      names="$work/fresh.txt" throughput "$s/$round full" -n 1 -Q "$MISS_QPS" -l 300 -v
      fc=$tc
      read -r fp50 fp99 fp999 < <(percentiles <"$out")
      frss=$(awk '/^VmRSS:/ {printf "%.0f", $2 / 1024}' "/proc/$pid/status")
      sleep "$REST_SECONDS"
      rrss=$(awk '/^VmRSS:/ {printf "%.0f", $2 / 1024}' "/proc/$pid/status")
      stop
      forget "$s-$round-full"
      for m in fp50 fp99 fp999 fc frss rrss; do res[$s,$m]+="${!m} "; done
      printf 'round %d %-8s full %s MB cache, new names at %s q/s: p50 %s ms p99 %s ms p99.9 %s ms, %s µs/q, RSS %s MB, %s MB %s s after\n' \
        "$round" "$s" "$FULL_MB" "$MISS_QPS" "$fp50" "$fp99" "$fp999" "$fc" "$frss" "$rrss" "$REST_SECONDS"
    fi
    if has_phase syscalls; then
      start "$s" "$round-syscalls"
      head -n "$SYSCALL_NAMES" "$work/queries.txt" >"$work/syscall-names.txt"
      # strace counts every thread's calls (-f), once it traces them all.
      strace -f -c -p "$pid" -o "$work/strace.out" & tpid=$!
      for _ in $(seq 1 100); do
        awk '/^TracerPid:/ && $2 == 0 {u = 1} END {exit u}' /proc/"$pid"/task/*/status 2>/dev/null && break
        sleep 0.1
      done
      names="$work/syscall-names.txt" perf "$s/$round syscalls" -n 1 -Q 2000 -l 300
      kill -INT "$tpid"; wait "$tpid" 2>/dev/null || true
      stop
      forget "$s-$round-syscalls"
      n=$(awk '/Queries completed:/ {print $3}' "$out")
      sc=$(awk -v n="$n" '$NF == "total" {printf "%.1f", $4 / n}' "$work/strace.out")
      by=$(awk -v n="$n" '$1 ~ /^[0-9.]+$/ && NF >= 5 && $NF != "total" && $4 / n >= 0.05 {printf "%s %.2f, ", $NF, $4 / n}' "$work/strace.out")
      res[$s,sc]+="$sc "
      printf 'round %d %-8s system calls a miss: %s (%s)\n' "$round" "$s" "$sc" "${by%, }"
    fi
  done
done

median() { tr ' ' '\n' | grep . | sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
declare -A med
for s in $servers; do
  if has_phase cold; then
    for m in cq cc hq hc p50 p99 rss; do med[$s,$m]=$(median <<<"${res[$s,$m]}"); done
  fi
  if [ "$misses" = 1 ]; then
    for m in mp50 mp99 mp999; do med[$s,$m]=$(median <<<"${res[$s,$m]}"); done
  fi
  if [ "$FULL_MB" -gt 0 ]; then
    for m in fp50 fp99 fp999 fc frss rrss; do med[$s,$m]=$(median <<<"${res[$s,$m]}"); done
  fi
  if has_phase syscalls; then med[$s,sc]=$(median <<<"${res[$s,sc]}"); fi
done

echo
echo "$NAMES names, $ROUNDS round(s), mode $MODE, validation $VALIDATE; dnsperf -c 8 -q 500 -T 1; resolver on CPU 0, dnsperf and NSD on CPU 1"
echo "cold: each name once (all misses); hit: ${HIT_SECONDS}s over the same names; latency: ${LAT_QPS} q/s for ${LAT_SECONDS}s, cached"
if [ "$VALIDATE" = 1 ]; then
  line="AD on a validated answer:"
  for s in $servers; do line+=" $s ${ad[$s]:-?}"; done
  echo "$line"
fi
echo "$(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), kernel $(uname -r)"
echo "Unbound $(unbound -V | awk '/^Version/ {print $2; exit}'); Knot Resolver $(kresd --version | awk '{print $NF; exit}'); sovdns $("$BIN" version 2>/dev/null | head -1 | awk '{print $NF}'); authority $(nsd -v 2>&1 | head -1)"
if has_phase cold; then
  echo
  echo "medians:"
  printf '%-20s %9s %9s %9s %9s %8s %8s %7s\n' "" "cold q/s" "cold µs/q" "hit q/s" "hit µs/q" "p50 ms" "p99 ms" "RSS MB"
  for s in $servers; do
    printf '%-20s %9.0f %9.1f %9.0f %9.1f %8.3f %8.3f %7.0f\n' "$s" "${med[$s,cq]}" "${med[$s,cc]}" "${med[$s,hq]}" "${med[$s,hc]}" "${med[$s,p50]}" "${med[$s,p99]}" "${med[$s,rss]}"
  done
  for v in sovdns sovdns-1p sovdns-2p; do
    [[ " $servers " == *" $v "* ]] || continue
    for o in unbound kresd; do
      [[ " $servers " == *" $o "* ]] || continue
      printf '%-20s' "$v / $o"
      for mw in cq:9 cc:9 hq:9 hc:9 p50:8 p99:8 rss:7; do
        m=${mw%:*}
        awk -v a="${med[$v,$m]}" -v b="${med[$o,$m]}" -v f=" %${mw#*:}" \
          'BEGIN {if (b > 0) printf f ".2f", a / b; else printf f "s", "-"}'
      done
      echo
    done
  done
  echo "(ratios: above 1 is better for q/s, worse for µs/q, ms and MB)"
fi
if [ "$misses" = 1 ]; then
  echo
  echo "misses: each name once at $MISS_QPS q/s, the resolver started afresh (medians, ms):"
  printf '%-20s %8s %8s %8s\n' "" "p50" "p99" "p99.9"
  for s in $servers; do
    printf '%-20s %8.3f %8.3f %8.3f\n' "$s" "${med[$s,mp50]}" "${med[$s,mp99]}" "${med[$s,mp999]}"
  done
fi
if [ "$FULL_MB" -gt 0 ]; then
  echo
  echo "full: a $FULL_MB MB cache overflowed by $NAMES names, then $NAMES new names at $MISS_QPS q/s (medians):"
  printf '%-20s %8s %8s %8s %8s %7s %8s\n' "" "p50 ms" "p99 ms" "p99.9 ms" "µs/q" "RSS MB" "at rest"
  for s in $servers; do
    printf '%-20s %8.3f %8.3f %8.3f %8.1f %7.0f %8.0f\n' "$s" "${med[$s,fp50]}" "${med[$s,fp99]}" "${med[$s,fp999]}" "${med[$s,fc]}" "${med[$s,frss]}" "${med[$s,rrss]}"
  done
fi
if has_phase syscalls; then
  echo
  echo "system calls a miss (strace -f -c over $SYSCALL_NAMES new names at 2,000 q/s; medians):"
  for s in $servers; do printf '%-20s %6.1f\n' "$s" "${med[$s,sc]}"; done
fi
