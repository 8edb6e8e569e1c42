#!/usr/bin/env bash
# Counts what one delivery costs the server in instructions and L1 cache misses, with the server
# under valgrind's cachegrind (a simulated CPU): the same figure on a quiet or a busy machine, so
# a change's cost can be told from the noise that moves the timed benchmark (scripts/bench.sh) by
# tens of percent on a shared 2-CPU host. It complements bench.sh, it does not replace it: it
# counts the server's own instructions (every thread, the kernel excluded), not the time they
# take, and a run under cachegrind batches more per round than a real one.
#
# One run: chat-server (--auto-approve --rate 0 --data-dir none) under cachegrind, chat-load
# --scenario messages -n 100 -s 100 -m M -w 32 against it (every member hears every message:
# 100 x 100 x M deliveries), then SIGTERM; the totals divided by the deliveries. Scenario irc-100
# is the same over the IRC listener (chat-load --proto irc), mixed-100 a room of half native and
# half IRC members (chat-load --proto mixed).
#
# Usage: scripts/bench-instructions.sh [--scenario fanout-100|irc-100|mixed-100] [--messages M]
#                                       [--baseline BIN]
#   --scenario   what to run (default fanout-100)
#   --messages M messages per sender (default 200; the figures settle from about 100)
#   --baseline BIN  also count another chat-server binary (an earlier build) and print the ratio
#                (a build without --data-dir, such as 1b43220, is run without it)
# Installs valgrind with apt when missing. Exits non-zero when a build, a server start or a load
# run fails (a count of a run that lost messages would mean nothing).
set -euo pipefail
cd "$(dirname "$0")/.."

scenario=fanout-100
messages=200
baseline=""
while [ $# -gt 0 ]; do
    case "$1" in
        --scenario) scenario="$2"; shift ;;
        --messages) messages="$2"; shift ;;
        --baseline) baseline="$2"; shift ;;
        -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
        *) echo "bench-instructions.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
case "$scenario" in fanout-100|irc-100|mixed-100) ;; *)
    echo "bench-instructions.sh: unknown scenario $scenario (fanout-100, irc-100 or mixed-100)" >&2
    exit 2 ;;
esac
case "$messages" in ''|*[!0-9]*|0)
    echo "bench-instructions.sh: --messages needs a positive number" >&2; exit 2 ;;
esac

if ! command -v valgrind > /dev/null; then
    echo "bench-instructions.sh: installing valgrind" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q valgrind > /dev/null
fi
cargo build --release -q -p chat-server -p chat-load
server_bin=target/release/chat-server
load_bin=target/release/chat-load
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# count NAME BIN: prints "NAME instructions reads writes l1-read-misses l1-write-misses" per
# delivery.
count() {
    local name=$1 bin=$2 store=(--data-dir none) listen=() pattern load=()
    if ! "$bin" --help 2>/dev/null | grep -q -- --data-dir; then store=(); fi
    pattern='s/^listening on \([^ ]*\)$/\1/p'
    if [ "$scenario" != fanout-100 ]; then
        listen=(--irc-listen 127.0.0.1:0 --irc-channel '#load')
    fi
    if [ "$scenario" = irc-100 ]; then
        pattern='s/^listening on \(.*\) (IRC)$/\1/p'
        load=(--proto irc)
    fi
    valgrind --tool=cachegrind --cache-sim=yes --cachegrind-out-file="$work/$name.cg" \
        "$bin" --auto-approve --rate 0 --max-clients 20000 --listen 127.0.0.1:0 \
        "${listen[@]}" "${store[@]}" < /dev/null > "$work/$name.out" 2> "$work/$name.err" &
    local pid=$! addr="" irc="" i
    for i in $(seq 300); do
        addr=$(sed -n "$pattern" "$work/$name.out" | head -n1)
        irc=$(sed -n 's/^listening on \(.*\) (IRC)$/\1/p' "$work/$name.out" | head -n1)
        [ -n "$addr" ] && { [ "$scenario" != mixed-100 ] || [ -n "$irc" ]; } && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if [ -z "$addr" ]; then
        echo "bench-instructions.sh: $name did not start:" >&2; cat "$work/$name.err" >&2
        kill "$pid" 2>/dev/null || true; return 1
    fi
    [ "$scenario" != mixed-100 ] || load=(--proto mixed --irc-addr "$irc")
    if ! "$load_bin" "${load[@]}" --scenario messages -n 100 -s 100 -m "$messages" -w 32 \
        --timeout 300 "$addr" > "$work/$name.load" 2>&1; then
        echo "bench-instructions.sh: the load run against $name failed:" >&2
        cat "$work/$name.load" >&2; kill "$pid" 2>/dev/null || true; return 1
    fi
    kill -TERM "$pid"
    wait "$pid" || true
    python3 - "$work/$name.cg" "$name" $((100 * 100 * messages)) <<'EOF'
import re, sys
path, name, deliveries = sys.argv[1], sys.argv[2], int(sys.argv[3])
text = open(path).read()
events = re.search(r'^events: (.*)$', text, re.M).group(1).split()
totals = dict(zip(events, map(int, re.search(r'^summary: (.*)$', text, re.M).group(1).split())))
print(name, *(f"{totals[k] / deliveries:.1f}" for k in ("Ir", "Dr", "Dw", "D1mr", "D1mw")))
EOF
}

{
    echo "server instructions data-reads data-writes L1-read-misses L1-write-misses"
    count ours "$server_bin"
    [ -z "$baseline" ] || count base "$baseline"
} > "$work/table"
echo "$scenario, $messages messages per sender, per delivery (cachegrind):"
column -t < "$work/table"
if [ -n "$baseline" ]; then
    awk 'NR==2{for(i=2;i<=NF;i++)o[i]=$i} NR==3{printf "ours/base"; for(i=2;i<=NF;i++) printf " %.2fx", o[i]/$i; print ""}' \
        "$work/table"
fi
