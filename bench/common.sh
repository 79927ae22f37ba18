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
