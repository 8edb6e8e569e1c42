#!/usr/bin/env bash
# Scale-out benchmark of `chat-server --cluster` (run by `scripts/bench.sh --scale-out`, or alone):
# one room on 1 server, then on 2 servers sharing it through Redis, each server pinned to its own
# CPU, with chat-load spreading the members over them (`--addr` repeated).
#
# Usage: scripts/bench-cluster.sh [--quick] [--out DIR]
# Scenarios:
#   big room   N members, S senders as fast as the window allows: deliveries/s and p99, for
#              1 server without Redis, 1 server with --cluster (what Redis costs), 2 servers.
#   chat rate  1000 members (300 with --quick), 100 senders at rising rates: p99 at each total
#              message rate, and the first rate where p99 passes 50 ms, for 1 and 2 servers.
# CPUs: server A on 0, server B on 1, chat-load on 2 and redis-server on 3 when there are 4 or
# more; with fewer, the generator and Redis share the servers' CPUs and the table says so (then
# the generator, not the servers, is the limit, and the 2-server figure is no scale-out measure).
# Installs redis-server with apt when missing. Every request loop is bounded (chat-load --timeout).
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0
out=""
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) quick=1 ;;
        --out) out="$2"; shift ;;
        -h|--help) sed -n '2,/^set -euo/{/^#/p}' "$0"; exit 0 ;;
        *) echo "bench-cluster.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
    esac
    shift
done
if [ "$quick" = 1 ]; then
    BIG_N=200; BIG_S=20; BIG_M=200; RATE_N=300; RATES="1 2 4"; RATE_D=3
else
    BIG_N=1000; BIG_S=50; BIG_M=500; RATE_N=1000; RATES="1 2 4 8 16 32"; RATE_D=5
fi
RATE_S=100

step() { printf '==> %s\n' "$*" >&2; }
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
if ! command -v redis-server >/dev/null 2>&1; then
    step "installing redis-server"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq redis-server >/dev/null
fi
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

cpus=$(nproc)
if [ "$cpus" -ge 4 ]; then
    pin_a="taskset -c 0"; pin_b="taskset -c 1"; pin_load="taskset -c 2"; pin_redis="taskset -c 3"
    shared=""
elif [ "$cpus" -ge 2 ]; then
    pin_a="taskset -c 0"; pin_b="taskset -c 1"; pin_load=""; pin_redis=""
    shared="only $cpus CPUs: chat-load and redis-server share the servers' CPUs, so the generator is the limit and 2 servers cannot show their scale-out here"
else
    pin_a=""; pin_b=""; pin_load=""; pin_redis=""
    shared="one CPU: everything shares it; figures are not comparable"
fi

step "cargo build --release -p chat-server -p chat-load"
cargo build --release -p chat-server -p chat-load >&2
server_bin=target/release/chat-server
load_bin=target/release/chat-load

work=$(mktemp -d)
[ -n "$out" ] || out="$work/results"
mkdir -p "$out"
rm -f "$out"/*.json
pids=()
cleanup() {
    local p
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port() {
    local p
    for _ in $(seq 50); do
        p=$((10000 + RANDOM % 20000))
        if port_free "$p"; then echo "$p"; return 0; fi
    done
    echo "bench-cluster.sh: no free port" >&2; return 1
}

redis_port=""
start_redis() {
    redis_port=$(free_port)
    $pin_redis redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no \
        > "$work/redis.log" 2>&1 &
    pids+=($!)
    local i
    for i in $(seq 100); do
        port_free "$redis_port" || return 0
        sleep 0.1
    done
    echo "bench-cluster.sh: redis-server did not start" >&2; cat "$work/redis.log" >&2; return 1
}

# start_server PIN NAME [--cluster URL]: prints the address once the server is in the room.
start_server() {
    local pin=$1 name=$2; shift 2
    $pin "$server_bin" --auto-approve --rate 0 --max-clients 20000 --listen 127.0.0.1:0 \
        --data-dir none "$@" \
        < /dev/null > "$work/$name.out" 2> "$work/$name.log" &
    pids+=($!)
    local i want="listening on"
    [ $# -eq 0 ] || want="cluster: in the room"
    for i in $(seq 150); do
        if grep -q "$want" "$work/$name.out" 2>/dev/null; then
            sed -n 's/^listening on //p' "$work/$name.out" | head -n1
            echo "$!" > "$work/$name.pid"
            return 0
        fi
        sleep 0.1
    done
    echo "bench-cluster.sh: $name did not start:" >&2; cat "$work/$name.log" >&2; return 1
}

stop_all() {
    local p
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    pids=()
}

# run SETUP LABEL chat-load-args...: SETUP is solo (no Redis), one (1 server, --cluster) or two.
run() {
    local setup=$1 label=$2; shift 2
    local addrs=() a b pidarg=()
    case "$setup" in
        solo)
            a=$(start_server "$pin_a" a); addrs=(--addr "$a")
            pidarg=(--server-pid "$(cat "$work/a.pid")") ;;
        one)
            start_redis
            a=$(start_server "$pin_a" a --cluster "redis://127.0.0.1:$redis_port")
            addrs=(--addr "$a"); pidarg=(--server-pid "$(cat "$work/a.pid")") ;;
        two)
            start_redis
            a=$(start_server "$pin_a" a --cluster "redis://127.0.0.1:$redis_port")
            b=$(start_server "$pin_b" b --cluster "redis://127.0.0.1:$redis_port")
            addrs=(--addr "$a" --addr "$b") ;;
    esac
    step "$label on $setup (chat-load $*)"
    $pin_load "$load_bin" --json "${pidarg[@]}" "${addrs[@]}" "$@" > "$out/$label-$setup.json" \
        2> "$work/load.err" || true
    [ -s "$out/$label-$setup.json" ] || { echo "chat-load printed nothing:" >&2; cat "$work/load.err" >&2; }
    stop_all
}

for setup in solo one two; do
    run "$setup" big --scenario messages -n "$BIG_N" -s "$BIG_S" -m "$BIG_M" -w 64 --timeout 120
done
for setup in one two; do
    for r in $RATES; do
        run "$setup" "rate$r" --scenario messages -n "$RATE_N" -s "$RATE_S" --rate "$r" \
            --duration "$RATE_D" --timeout 120
    done
done

jget() {
    [ -s "$1" ] || { echo null; return; }
    local v
    v=$(grep -o "\"$2\":[^,}]*" "$1" | head -n1 | cut -d: -f2-)
    echo "${v:-null}"
}
ok() { [ "$(jget "$1" ok)" = true ] && echo "" || echo "!"; }
echo
echo "big room: $BIG_N members, $BIG_S senders x $BIG_M messages, window 64"
printf '| %-30s | %14s | %10s | %16s |\n' setup "deliveries/s" "p99 ms" "server ns/deliv"
echo "|--------------------------------|----------------|------------|------------------|"
for setup in solo one two; do
    f="$out/big-$setup.json"
    awk -v s="$setup" -v d="$(jget "$f" deliveries_per_s)" -v p="$(jget "$f" lat_p99_us)" \
        -v c="$(jget "$f" server_ns_per_delivery)" -v m="$(ok "$f")" 'BEGIN {
        name = (s == "solo") ? "1 server, no Redis" : (s == "one") ? "1 server + Redis" : "2 servers + Redis"
        printf "| %-30s | %13.0f%1s | %10.2f | %16s |\n", name, d, m, p / 1000, (c == "null") ? "-" : sprintf("%.1f", c) }'
done
awk -v one="$(jget "$out/big-one.json" deliveries_per_s)" -v two="$(jget "$out/big-two.json" deliveries_per_s)" \
    -v solo="$(jget "$out/big-solo.json" deliveries_per_s)" 'BEGIN {
    if (one > 0) printf "2 servers / 1 server: %.2fx (aim: 1.7x when the generator is not the limit)\n", two / one
    if (solo > 0) printf "1 server with Redis / without: %.2fx\n", one / solo }'
echo
echo "chat rate: $RATE_N members, $RATE_S senders; total rate = senders x rate; p99 ms"
printf '| %-22s | %12s | %12s |\n' "total messages/s" "1 server" "2 servers"
echo "|------------------------|--------------|--------------|"
for r in $RATES; do
    total=$(awk -v r="$r" -v s="$RATE_S" 'BEGIN { printf "%.0f", r * s }')
    p1=$(jget "$out/rate$r-one.json" lat_p99_us); p2=$(jget "$out/rate$r-two.json" lat_p99_us)
    awk -v t="$total" -v a="$p1" -v b="$p2" -v ma="$(ok "$out/rate$r-one.json")" -v mb="$(ok "$out/rate$r-two.json")" 'BEGIN {
        printf "| %22s | %11s%1s | %11s%1s |\n", t, (a == "null") ? "-" : sprintf("%.2f", a / 1000), ma,
            (b == "null") ? "-" : sprintf("%.2f", b / 1000), mb }'
done
for setup in one two; do
    first="-"
    for r in $RATES; do
        p=$(jget "$out/rate$r-$setup.json" lat_p99_us)
        if [ "$p" != null ] && awk -v p="$p" 'BEGIN { exit !(p > 50000) }'; then
            first=$(awk -v r="$r" -v s="$RATE_S" 'BEGIN { printf "%.0f", r * s }'); break
        fi
    done
    echo "p99 passes 50 ms on $setup server(s) at: $first messages/s (- = not within the rates tried)"
done
echo "! = the run did not check out (loss, duplicates, reordering or timeout)"
[ -z "$shared" ] || echo "note: $shared"
echo "JSON reports: $out$( [ "$out" = "$work/results" ] && echo " (removed on exit; keep them with --out DIR)")"
