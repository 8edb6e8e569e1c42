#!/usr/bin/env bash
# What one order for the room costs (issue 21): the latency of a chat-rate load on 2 servers of
# one room (`--cluster`), so a build where each server delivers its own members' lines only when
# the Redis stream brings them back can be compared with one that delivered them at once.
#
# Usage: scripts/bench-cluster-order.sh SERVER_BIN LOAD_BIN none|disk LABEL
#   SERVER_BIN, LOAD_BIN  chat-server and chat-load to run (e.g. two release builds)
#   none|disk             --data-dir none, or a fresh directory per server (fsync per commit)
# Prints one line: LABEL ok=... p50 p99 p99.9 mean (ms), from chat-load's JSON report.
# Servers on CPU 0 and 1 (taskset); 200 members over both, 20 senders x 5 messages/s for 10 s.
# Needs redis-server and redis-cli (scripts/bench-cluster.sh installs them). Every wait is bounded.
set -euo pipefail
[ $# -eq 4 ] || { sed -n '2,/^set -euo/{/^#/p}' "$0"; exit 2; }
server=$1; load=$2; data=$3; label=$4
case "$data" in none|disk) ;; *) echo "bench-cluster-order.sh: none or disk, not $data" >&2; exit 2 ;; esac

work=$(mktemp -d)
pids=()
cleanup() {
    local p
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

port=$((20000 + RANDOM % 20000))
redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no > "$work/redis.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do redis-cli -p "$port" ping > /dev/null 2>&1 && break; sleep 0.1; done

# start NAME CPU: prints the server's address once it is in the room.
start() {
    local name=$1 cpu=$2 dir=none
    [ "$data" = none ] || dir="$work/$name-data"
    taskset -c "$cpu" "$server" --auto-approve --rate 0 --max-clients 20000 \
        --listen 127.0.0.1:0 --data-dir "$dir" --cluster "redis://127.0.0.1:$port" \
        < /dev/null > "$work/$name.out" 2> "$work/$name.log" &
    pids+=($!)
    for _ in $(seq 150); do
        grep -q "cluster: in the room" "$work/$name.out" 2>/dev/null && break
        sleep 0.1
    done
    sed -n 's/^listening on //p' "$work/$name.out" | head -n1
}
a=$(start a 0)
b=$(start b 1)
"$load" --json --addr "$a" --addr "$b" --scenario messages -n 200 -s 20 --rate 5 --duration 10 \
    --timeout 60 > "$work/out.json" 2> "$work/load.err" || { cat "$work/load.err" >&2; exit 1; }
jget() { grep -o "\"$1\":[^,}]*" "$work/out.json" | head -n1 | cut -d: -f2-; }
awk -v l="$label" -v ok="$(jget ok)" -v p50="$(jget lat_p50_us)" -v p99="$(jget lat_p99_us)" \
    -v p999="$(jget lat_p999_us)" -v mean="$(jget lat_mean_us)" 'BEGIN {
    printf "%s ok=%s p50=%.2fms p99=%.2fms p999=%.2fms mean=%.2fms\n", l, ok, p50 / 1000,
        p99 / 1000, p999 / 1000, mean / 1000 }'
