# Shared by the benchmark scripts: sourced, not run.
# Requires the tools named in $NEED, a built $BIN, and sets up $work, a
# temporary directory removed on exit with every process listed in $pids.

SECONDS_PER_RUN=${SECONDS_PER_RUN:-10}
BIN=${BIN:-bin/sovdns}
for t in $NEED; do
  command -v "$t" >/dev/null || { echo "bench: $t is not installed (Debian package of that name)" >&2; exit 1; }
done
[ -x "$BIN" ] || { echo "bench: build $BIN first (make build)" >&2; exit 1; }

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
stop_all() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; pids=(); }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

wait_up() { # port name: until the server on 127.0.0.1:port answers SOA name, $WAIT_UP s (10) at most
  for _ in $(seq 1 $((${WAIT_UP:-10} * 10))); do
    dig +time=1 +tries=1 -p "$1" @127.0.0.1 "$2" SOA +short >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "bench: server on port $1 did not come up" >&2; return 1
}

# start_tld_nsd PORT: NSD on 127.0.0.2:PORT, unprivileged, from $work, on
# CPU 1: one server process, response-rate limiting off (resolvers are its
# only clients), no control socket, serving $work/nsd/root.zone (.) and
# $work/nsd/tld.zone (bench-tld.). Returns once it answers.
start_tld_nsd() {
  cat >"$work/nsd.conf" <<CONF
server:
  ip-address: 127.0.0.2
  port: $1
  server-count: 1
  username: ""
  chroot: ""
  zonesdir: "$work/nsd"
  pidfile: "$work/nsd/nsd.pid"
  xfrdfile: "$work/nsd/xfrd.state"
  xfrdir: "$work/nsd"
  zonelistfile: "$work/nsd/zone.list"
  database: ""
  verbosity: 0
  rrl-ratelimit: 0
remote-control:
  control-enable: no
zone:
  name: "."
  zonefile: root.zone
zone:
  name: bench-tld.
  zonefile: tld.zone
CONF
  taskset -c 1 nsd -d -c "$work/nsd.conf" >"$work/nsd.log" 2>&1 & pids+=($!)
  for _ in $(seq 1 100); do
    dig +time=1 +tries=1 -p "$1" @127.0.0.2 bench-tld. SOA +short 2>/dev/null | grep -q . && return 0
    sleep 0.1
  done
  cat "$work/nsd.log" >&2
  echo "bench: NSD on 127.0.0.2:$1 did not come up (port 53 needs root or CAP_NET_BIND_SERVICE)" >&2
  exit 1
}

# unbound_server DIR PORT: the server clause every benchmark's Unbound
# starts with: on 127.0.0.1:PORT, unprivileged, its files in DIR, one
# thread, a 4 MB receive buffer (the one sovdns sets for itself),
# loopback clients and upstreams allowed. The caller adds its caches and
# modules.
unbound_server() {
  cat <<CONF
server:
  interface: 127.0.0.1@$2
  port: $2
  username: ""
  chroot: ""
  directory: "$1"
  pidfile: "$1/unbound.pid"
  use-syslog: no
  verbosity: 0
  num-threads: 1
  so-rcvbuf: 4m
  do-not-query-localhost: no
  access-control: 127.0.0.0/8 allow
CONF
}
