#!/usr/bin/env bash
# Registry scale: ZONES small zones (10000; 18 records each, origins
# z0.gov.test. ...) served by NSD, Knot DNS and sovdns, one server at a
# time. For each server: the time from start until the last zone answers
# (sovdns: after `zone import` of the directory, timed too), resident memory
# then and SETTLE_SECONDS (5) later (what a start leaves to collect is
# gone), after one dnsperf pass asking every zone's SOA once, and
# after three edits of one zone (Knot: knotc zone-begin/set/commit; sovdns:
# record add), each edit timed from its command until kdig sees it. For
# sovdns also: status, zone list and a /metrics scrape. Then, for each,
# SOAK_SECONDS (60) of queries at 20,000 a second with SOAK_EDITS (1,000)
# edits meanwhile (NSD: queries only), and RSS after it. Then (CATALOG=0
# skips it) sovdns publishes a catalog zone (RFC 9432) and Knot consumes it,
# transferring every member from sovdns by TSIG-signed AXFR: the time until
# Knot serves the last member, and from each of CREATES (3) `zone create` on
# sovdns, CREATE_GAP seconds (0) after Knot served the one before, until Knot
# serves the new zone (both polled every 2 ms); then a second sovdns consumes the same
# catalog: the time until it serves the last member; then, as the
# reference, the Knot consumer is fed by a Knot DNS primary generating the
# catalog from the same zone files, and three zones added there are timed
# the same way.
# Servers are not pinned to CPUs. Every wait is bounded (LOAD_TIMEOUT s for
# loads, 30 s for edits). Loopback only.
#
# Needs: nsd, knotd, knotc, dig, kdig, dnsperf, curl, python3 (Debian: nsd knot
# knot-dnsutils dnsutils dnsperf curl python3).
set -euo pipefail
cd "$(dirname "$0")/.."
ZONES=${ZONES:-10000}
CATALOG=${CATALOG:-1}
LOAD_TIMEOUT=${LOAD_TIMEOUT:-300}
SOAK_SECONDS=${SOAK_SECONDS:-60}
SOAK_EDITS=${SOAK_EDITS:-1000}
SETTLE_SECONDS=${SETTLE_SECONDS:-5}
CREATES=${CREATES:-3}
CREATE_GAP=${CREATE_GAP:-0}
NEED="nsd knotd knotc dig kdig dnsperf curl python3"
. bench/common.sh

go build -o "$work/firstanswer" ./bench/firstanswer
last="z$((ZONES - 1)).gov.test."
free_port() { # free for TCP and UDP, below the kernel's ephemeral range (from
  # which the tests running beside take theirs): common.sh's races with them
  python3 -c 'import random, socket
lo = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
for _ in range(100):
    p = random.randrange(max(1024, lo - 12000), lo)
    try:
        for kind in socket.SOCK_STREAM, socket.SOCK_DGRAM: socket.socket(socket.AF_INET, kind).bind(("127.0.0.1", p))
        print(p); break
    except OSError: pass
else: raise SystemExit("bench: no free port")'
}
now_ms() { date +%s%3N; }
since() { echo $(($(now_ms) - $1)); } # milliseconds since $1
secs() { awk -v m="$1" 'BEGIN { printf "%.2f", m / 1000 }'; }

# The zones, the dnsperf query file (every zone's SOA once, shuffled) and
# the list of origins.
python3 - "$ZONES" "$work" <<'PY'
import os, random, sys
n, work = int(sys.argv[1]), sys.argv[2]
os.makedirs(work + "/zones")
text = """$ORIGIN {o}
$TTL 3600
@ 3600 IN SOA ns1.gov.test. hostmaster.gov.test. 1 3600 600 1209600 300
@ NS ns1.gov.test.
@ NS ns2.gov.test.
@ MX 10 mail
@ TXT "v=spf1 mx -all"
@ A {a}.1
@ AAAA 2001:db8:{h}::1
www A {a}.2
www AAAA 2001:db8:{h}::2
www TXT "web site of {o}"
mail A {a}.3
mail AAAA 2001:db8:{h}::3
portal CNAME www
api A {a}.4
api AAAA 2001:db8:{h}::4
docs A {a}.5
vpn A {a}.6
"""
origins = [f"z{i}.gov.test." for i in range(n)]
for i, o in enumerate(origins):
    with open(f"{work}/zones/{o}zone", "w") as f:
        f.write(text.format(o=o, a=f"10.{i >> 8 & 255}.{i & 255}", h=f"{i >> 16:x}:{i & 0xffff:x}"))
with open(work + "/origins", "w") as f:
    f.write("".join(o + "\n" for o in origins))
random.shuffle(origins)
with open(work + "/queries", "w") as f:
    f.write("".join(o + " SOA\n" for o in origins))
PY

# serves port name type [kdig]: an authoritative answer with records in it.
# dig fails at once on a port not yet open, so it waits for servers to
# start; kdig (8 ms a run against dig's 30) polls running servers for edits.
serves() {
  local out dig=(dig +tries=1)
  [ "${4:-}" = kdig ] && dig=(kdig +retry=0)
  out=$("${dig[@]}" +norec +time=1 -p "$1" @127.0.0.1 "$2" "$3" 2>/dev/null) || return 1
  grep -qi 'flags:[^;]* aa' <<<"$out" && grep -q 'ANSWER: [1-9]' <<<"$out"
}
# await interval max_s what cmd...: runs cmd every interval s until it
# succeeds, for max_s at most (by the clock and by count), else fails.
await() {
  local iv=$1 max=$2 what=$3 n=0 deadline; shift 3
  deadline=$(($(now_ms) + max * 1000))
  until "$@"; do
    n=$((n + 1))
    if [ "$(now_ms)" -gt "$deadline" ] || [ "$n" -gt $((max * 1000)) ]; then
      echo "bench: $what: not within ${max}s" >&2; return 1
    fi
    sleep "$iv"
  done
}
up() { # pid port name: whether the server answers for name; exits if it died (log in $log)
  kill -0 "$1" 2>/dev/null || { echo "bench: the server exited; $log:" >&2; tail -5 "$log" >&2; exit 1; }
  serves "$2" "$3" SOA
}
descendants() { echo "$1"; local c; for c in $(pgrep -P "$1" || true); do descendants "$c"; done; }
rss_mib() { # pid: VmRSS of it and its descendants, MiB
  local kb=0 p v
  for p in $(descendants "$1"); do
    v=$(awk '/^VmRSS/ {print $2}' "/proc/$p/status" 2>/dev/null || true)
    kb=$((kb + ${v:-0}))
  done
  awk -v k="$kb" 'BEGIN { printf "%.1f", k / 1024 }'
}
perf_pass() { # port: every zone's SOA once; prints "qps lost"
  local out
  out=$(dnsperf -s 127.0.0.1 -p "$1" -d "$work/queries" -n 1 -l 60 2>&1)
  echo "$out" >>"$work/dnsperf.log"
  awk '/Queries per second/ {q = $4} /Queries lost/ {l = $3} END {printf "%.0f %s\n", q, l}' <<<"$out"
}
declare -A r # r[figure,server]
measure_load() { # server pid port: start time, RSS after load and after a dnsperf pass
  local qps lost
  await 0.05 "$LOAD_TIMEOUT" "$1 serving $last" up "$2" "$3" "$last"
  r[start,$1]=$(secs "$(since "$t0")")
  r[rss_load,$1]=$(rss_mib "$2")
  sleep "$SETTLE_SECONDS"
  r[rss_settled,$1]=$(rss_mib "$2")
  read -r qps lost < <(perf_pass "$3")
  r[perf,$1]="$qps q/s, $lost lost"
  r[rss_perf,$1]=$(rss_mib "$2")
}
# soak server pid port edit: SOAK_SECONDS of dnsperf at 20,000 q/s over
# every zone's SOA while SOAK_EDITS edits run one after another (edit i
# adds soak$i to one of the first 500 zones; "-": no edits), then RSS.
soak() {
  local s=$1 pid=$2 port=$3 edit=$4 i qpid
  dnsperf -s 127.0.0.1 -p "$port" -d "$work/queries" -l "$SOAK_SECONDS" -Q 20000 >>"$work/soak.log" 2>&1 &
  qpid=$!
  if [ "$edit" != - ]; then
    for ((i = 0; i < SOAK_EDITS; i++)); do
      "$edit" "z$((i % (ZONES < 500 ? ZONES : 500))).gov.test." "soak$i" >>"$work/edits.log" 2>&1 ||
        { echo "bench: $s soak edit $i failed:" >&2; tail -5 "$work/edits.log" >&2; return 1; }
    done
  fi
  wait "$qpid" || true
  r[rss_soak,$s]=$(rss_mib "$pid")
}
timed_edit() { # server i port cmd...: runs cmd, then waits for new$i.z0.gov.test. A
  local s=$1 i=$2 p=$3 t; shift 3
  t=$(now_ms)
  "$@" >>"$work/edits.log" 2>&1 || { echo "bench: $s edit $i failed:" >&2; tail -5 "$work/edits.log" >&2; return 1; }
  await 0.005 30 "$s edit $i visible" serves "$p" "new$i.z0.gov.test." A kdig
  r[edit$i,$s]=$(since "$t")
}

# NSD. Ports are taken just before each start: other programs run beside.
port=$(free_port)
{
  printf 'server:\n  ip-address: 127.0.0.1@%s\n  zonesdir: "%s/zones"\n  chroot: ""\n  username: ""\n' "$port" "$work"
  printf '  pidfile: "%s/nsd.pid"\n  database: ""\n  verbosity: 0\n  rrl-ratelimit: 0\n' "$work"
  printf '  zonelistfile: "%s/zone.list"\n  xfrdfile: "%s/xfrd.state"\n' "$work" "$work"
  awk '{printf "zone:\n  name: %s\n  zonefile: %szone\n", $1, $1}' "$work/origins"
} >"$work/nsd.conf"
t0=$(now_ms)
log=$work/nsd.log
nsd -d -c "$work/nsd.conf" >"$log" 2>&1 &
pid=$!; pids+=("$pid")
measure_load nsd "$pid" "$port"
soak nsd "$pid" "$port" -
stop_all

# Knot DNS.
mkdir -p "$work/knot"
kport=$(free_port)
knot_conf() { # file extra-config zones...
  cat >"$1" <<CONF
server:
    rundir: "$work/knot"
    listen: 127.0.0.1@$kport
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
control:
    listen: "$work/knot/knot.sock"
log:
  - target: stderr
    any: notice
database:
    storage: "$work/knot"
$2
CONF
}
knot_conf "$work/knot.conf" "template:
  - id: default
    storage: \"$work/zones\"
    zonefile-sync: -1
    journal-content: none
zone:
$(awk '{printf "  - domain: %s\n    file: %szone\n", $1, $1}' "$work/origins")"
t0=$(now_ms)
log=$work/knot.log
knotd -c "$work/knot.conf" >"$log" 2>&1 &
pid=$!; pids+=("$pid")
measure_load knot "$pid" "$kport"
kc() { knotc -s "$work/knot/knot.sock" "$@"; } # -c would parse the whole configuration each time
for i in 1 2 3; do
  timed_edit knot "$i" "$kport" eval "kc zone-begin z0.gov.test. && kc zone-set z0.gov.test. new$i 3600 A 192.0.2.9$i && kc zone-commit z0.gov.test."
done
r[rss_edit,knot]=$(rss_mib "$pid")
knot_soak_edit() { kc zone-begin "$1" && kc zone-set "$1" "$2" 3600 A 192.0.2.7 && kc zone-commit "$1"; }
soak knot "$pid" "$kport" knot_soak_edit
stop_all

# sovdns: the directory imported (every file a zone), then served.
printf 'demo_zone: false\nresolver:\n  allow: []\nrate_limit:\n  responses_per_second: 0\n' >"$work/sovdns.yaml"
sov() { "$BIN" --data-dir "$work/sovdns" "$@"; }
/usr/bin/time -f '%e %M' -o "$work/import.time" "$BIN" --data-dir "$work/sovdns" zone import "$work/zones" >"$work/import.log" 2>&1 ||
  { echo "bench: sovdns zone import failed:" >&2; tail -20 "$work/import.log" >&2; exit 1; }
read -r isecs ikb <"$work/import.time"
r[import,sovdns]=$isecs
serve() { # config: starts sovdns on new ports $port and $mport, sets $pid and $t0
  port=$(free_port); mport=$(free_port); log=$work/sovdns.log; t0=$(now_ms)
  "$BIN" serve --config "$1" --data-dir "$work/sovdns" --listen "127.0.0.1:$port" \
    --metrics-listen "127.0.0.1:$mport" --log-level warn >>"$work/sovdns.log" 2>&1 &
  pid=$!; pids+=("$pid")
}
serve "$work/sovdns.yaml"
measure_load sovdns "$pid" "$port"
r[total,sovdns]=$(awk -v a="$isecs" -v b="${r[start,sovdns]}" 'BEGIN { printf "%.2f", a + b }')
for i in 1 2 3; do
  timed_edit sovdns "$i" "$port" sov record add z0.gov.test "new$i 3600 A 192.0.2.9$i"
done
r[rss_edit,sovdns]=$(rss_mib "$pid")
sov_soak_edit() { sov record add "$1" "$2 3600 A 192.0.2.7"; }
soak sovdns "$pid" "$port" sov_soak_edit
rss_before_status=$(rss_mib "$pid")
t=$(now_ms); status_lines=$({ sov status || true; } | wc -l); status_ms=$(since "$t")
rss_after_status=$(rss_mib "$pid")
t=$(now_ms); sov zone list >/dev/null; list_ms=$(since "$t")
rss_after_list=$(rss_mib "$pid")
read -r scrape_s scrape_bytes < <(curl -s -o /dev/null -w '%{time_total} %{size_download}\n' "http://127.0.0.1:$mport/metrics")
stop_all

# Catalog: sovdns again, publishing a catalog of its zones; Knot consumes it.
if [ "$CATALOG" = 1 ]; then
  kport=$(free_port)
  secret=$(python3 -c 'import base64, os; print(base64.b64encode(os.urandom(32)).decode())')
  cat=catalog.gov.test.
  cat "$work/sovdns.yaml" - >"$work/sovdns-cat.yaml" <<CONF
tsig_keys:
  - {name: xfr, secret: $secret}
primary:
  allow_transfer: ["127.0.0.0/8 key:xfr"]
  notify: ["127.0.0.1:$kport key:xfr"]
catalog:
  zone: $cat
CONF
  serve "$work/sovdns-cat.yaml"
  await 0.05 "$LOAD_TIMEOUT" "sovdns (catalog) serving $last" up "$pid" "$port" "$last"
  await 0.05 "$LOAD_TIMEOUT" "sovdns serving the catalog" up "$pid" "$port" "$cat"
  cat_start=$(since "$t0")
  rm -rf "$work/knot" "$work/members"; mkdir -p "$work/knot" "$work/members"
  # knot_consumer_conf file primary-port: Knot consuming the catalog from
  # the primary at 127.0.0.1@primary-port (TSIG-signed transfers).
  knot_consumer_conf() {
    knot_conf "$1" "key:
  - id: xfr
    algorithm: hmac-sha256
    secret: $secret
remote:
  - id: primary
    address: 127.0.0.1@$2
    via: 127.0.0.1
    key: xfr
acl:
  - id: xfr
    address: 127.0.0.0/8
    key: xfr
    action: [transfer, notify]
template:
  - id: default
    storage: \"$work/knot\"
    zonefile-sync: -1
    zonefile-load: difference
    journal-content: changes
  - id: member
    storage: \"$work/members\"
    zonefile-sync: -1
    master: primary
    acl: xfr
zone:
  - domain: $cat
    master: primary
    acl: xfr
    catalog-role: interpret
    catalog-template: member"
  }
  knot_consumer_conf "$work/knot-cat.conf" "$port"
  t0=$(now_ms)
  log=$work/knot-cat.log
  knotd -c "$work/knot-cat.conf" >"$log" 2>&1 &
  kpid=$!; pids+=("$kpid")
  # Knot may take longer than LOAD_TIMEOUT (at 100,000 members it did):
  # the figure says so, and the rest of the run goes on.
  knot_cat_ok=1
  await 0.05 "$LOAD_TIMEOUT" "Knot serving the catalog member $last" up "$kpid" "$kport" "$last" || knot_cat_ok=0
  cat_knot="$(secs "$(since "$t0")") s"
  [ "$knot_cat_ok" = 1 ] || cat_knot="not within $cat_knot (LOAD_TIMEOUT)"
  # The NOTIFYs sovdns sends at start (500 a second) are gone before the new zones.
  pending() { [ "$(curl -s "http://127.0.0.1:$mport/metrics" | awk '/^sovdns_notify_pending / {print $2}')" = 0 ]; }
  await 0.2 "$LOAD_TIMEOUT" "sovdns NOTIFY backlog empty" pending
  cat_serial() { kdig +short +retry=0 +time=1 -p "$port" @127.0.0.1 "$cat" SOA | awk '{print $3}'; }
  create_cmd=() create_cat=() create_knot=()
  for i in $(seq 1 "$CREATES"); do
    [ "$knot_cat_ok" = 1 ] || break
    sleep "$CREATE_GAP"
    serial=$(cat_serial)
    # Both polled from before the command, every 2 ms, by a process each.
    t=$(now_ms)
    "$work/firstanswer" -server "127.0.0.1:$port" -name "$cat" -start-ms "$t" -serial-not "$serial" >"$work/cat$i" &
    catpoll=$!
    "$work/firstanswer" -server "127.0.0.1:$kport" -name "newzone$i.gov.test." -start-ms "$t" >"$work/knot$i" &
    knotpoll=$!
    sov zone create "newzone$i.gov.test" --ns ns1.gov.test >>"$work/edits.log" 2>&1
    create_cmd+=("$(since "$t")")
    wait "$catpoll" || echo "bench: sovdns's catalog did not take newzone$i.gov.test. within 30 s" >&2
    wait "$knotpoll" || echo "bench: Knot did not serve newzone$i.gov.test. within 30 s" >&2
    create_cat+=("$(cat "$work/cat$i")") create_knot+=("$(cat "$work/knot$i")")
  done
  rss_knot_cat=$(rss_mib "$kpid")
  # sovdns consuming the same catalog from the same primary, after Knot.
  cport=$(free_port)
  cat >"$work/consumer.yaml" <<CONF
demo_zone: false
tsig_keys:
  - {name: xfr, secret: $secret}
secondary:
  - zone: $cat
    primaries: ["127.0.0.1:$port"]
    key: xfr
    catalog: true
CONF
  t0=$(now_ms)
  log=$work/consumer.log
  "$BIN" serve --config "$work/consumer.yaml" --data-dir "$work/consumer" --listen "127.0.0.1:$cport" \
    --metrics-listen "" --log-level warn >>"$log" 2>&1 &
  cpid=$!; pids+=("$cpid")
  await 0.05 "$LOAD_TIMEOUT" "sovdns (consumer) serving the catalog member $last" up "$cpid" "$cport" "$last"
  cat_sov=$(since "$t0")
  rss_sov_cat=$(rss_mib "$cpid")
  stop_all

  # The reference: the same Knot consumer fed by a Knot DNS primary that
  # serves the same zone files and generates the catalog (catalog-role:
  # generate); three zones added to it with knotc conf-set, each timed
  # until the consumer serves it.
  pport=$(free_port)
  rm -rf "$work/kp" "$work/knot" "$work/members"; mkdir -p "$work/kp" "$work/knot" "$work/members"
  cat >"$work/knot-primary.conf" <<CONF
server:
    rundir: "$work/kp"
    listen: 127.0.0.1@$pport
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
control:
    listen: "$work/kp/knot.sock"
log:
  - target: stderr
    any: notice
database:
    storage: "$work/kp"
key:
  - id: xfr
    algorithm: hmac-sha256
    secret: $secret
remote:
  - id: consumer
    address: 127.0.0.1@$kport
    key: xfr
acl:
  - id: xfr
    address: 127.0.0.0/8
    key: xfr
    action: transfer
template:
  - id: default
    storage: "$work/zones"
    zonefile-sync: -1
    journal-content: changes
    catalog-role: member
    catalog-zone: $cat
    acl: xfr
  - id: catalog
    storage: "$work/kp"
    acl: xfr
    notify: consumer
zone:
  - domain: $cat
    template: catalog
    catalog-role: generate
$(awk '{printf "  - domain: %s\n    file: %szone\n", $1, $1}' "$work/origins")
CONF
  knotd -c "$work/knot-primary.conf" >"$work/knot-primary.log" 2>&1 &
  pids+=($!)
  knot_consumer_conf "$work/knot-cat2.conf" "$pport"
  log=$work/knot-cat2.log
  knotd -c "$work/knot-cat2.conf" >"$log" 2>&1 &
  kpid=$!; pids+=("$kpid")
  knot_ref=()
  if await 0.05 "$LOAD_TIMEOUT" "Knot (consumer of Knot) serving the catalog member $last" up "$kpid" "$kport" "$last"; then
    kpc() { knotc -s "$work/kp/knot.sock" "$@" >/dev/null; }
    for i in 1 2 3; do
      o="newzone$i.gov.test."
      printf '$ORIGIN %s\n$TTL 3600\n@ SOA ns1.gov.test. hostmaster.gov.test. 1 3600 600 1209600 300\n@ NS ns1.gov.test.\n' "$o" >"$work/zones/${o}zone"
      t=$(now_ms)
      "$work/firstanswer" -server "127.0.0.1:$kport" -name "$o" -start-ms "$t" >"$work/ref$i" &
      refpoll=$!
      kpc conf-begin && kpc conf-set "zone[$o]" && kpc conf-set "zone[$o].file" "${o}zone" && kpc conf-commit ||
        echo "bench: knotc could not add $o to the Knot primary" >&2
      wait "$refpoll" || echo "bench: the Knot consumer did not serve $o from the Knot primary within 30 s" >&2
      knot_ref+=("$(cat "$work/ref$i")")
    done
  fi
  stop_all
fi

echo
echo "Registry scale: $ZONES zones of 18 records, loopback, $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs))"
echo "$(nsd -v 2>&1 | head -1); Knot DNS $(knotd -V 2>&1 | awk '{print $NF; exit}'); $("$BIN" version 2>/dev/null | head -1)"
echo
row() { printf '| %-44s | %18s | %18s | %18s |\n' "$1" "${r[$2,nsd]:--}" "${r[$2,knot]:--}" "${r[$2,sovdns]:--}"; }
r[total,nsd]=${r[start,nsd]}; r[total,knot]=${r[start,knot]}
printf '| %-44s | %18s | %18s | %18s |\n' figure NSD "Knot DNS" sovdns
printf '|%s|%s|%s|%s|\n' "$(printf -- '-%.0s' {1..46})" "$(printf -- '-%.0s' {1..20})" "$(printf -- '-%.0s' {1..20})" "$(printf -- '-%.0s' {1..20})"
row "zone import of the directory (s)" import
row "start until the last zone answers (s)" start
row "import + start (s)" total
row "RSS after load (MiB)" rss_load
row "RSS ${SETTLE_SECONDS}s after load (MiB)" rss_settled
row "dnsperf pass, every zone's SOA once" perf
row "RSS after the dnsperf pass (MiB)" rss_perf
for i in 1 2 3; do row "edit $i: command until kdig sees it (ms)" "edit$i"; done
row "RSS after the edits (MiB)" rss_edit
row "RSS after ${SOAK_SECONDS}s of queries, $SOAK_EDITS edits (MiB)" rss_soak
echo
echo "sovdns:"
echo "  zone import: ${isecs} s, max RSS $(awk -v k="$ikb" 'BEGIN { printf "%.1f", k / 1024 }') MiB; $(tail -1 "$work/import.log")"
echo "  status: $status_lines lines in $status_ms ms (the server's RSS $rss_before_status MiB before, $rss_after_status after); zone list: $list_ms ms (RSS after it $rss_after_list MiB)"
echo "  /metrics scrape: $(awk -v s="$scrape_s" 'BEGIN { printf "%.1f", s * 1000 }') ms, $scrape_bytes bytes"
if [ "$CATALOG" = 1 ]; then
  echo
  echo "Catalog $cat of $ZONES members, sovdns primary, Knot DNS consuming it (TSIG-signed AXFR):"
  echo "  sovdns start (catalog on) until the last zone and the catalog answer: $(secs "$cat_start") s"
  echo "  Knot start until it serves the last member: $cat_knot; Knot RSS then: $rss_knot_cat MiB"
  echo "  sovdns consuming the same catalog (after Knot): start until it serves the last member: $(secs "$cat_sov") s; RSS then: $rss_sov_cat MiB"
  echo "  zone create newzone{1..$CREATES}.gov.test, ${CREATE_GAP} s apart, until Knot serves it (target < 200 ms): ${create_knot[*]} ms"
  echo "    the zone create command itself: ${create_cmd[*]} ms; until sovdns's catalog SOA serial moves: ${create_cat[*]} ms"
  echo "  the same with a Knot DNS primary generating the catalog (knotc conf-set of a zone), until the consumer serves it: ${knot_ref[*]:-not measured} ms"
fi
echo
echo "sovdns log, warn and above ($(grep -c . "$work/sovdns.log" || true) lines), distinct messages:"
sed 's/^time=[^ ]* //' "$work/sovdns.log" | sort | uniq -c | sort -rn | head -5 | cut -c1-300
