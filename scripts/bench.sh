#!/usr/bin/env bash
# Benchmarks chat-server against two IRC servers, ngIRCd and InspIRCd, with chat-load: the same
# scenarios against each server in turn, a fresh server process per scenario, the server pinned
# to CPU 0 and the generator to CPU 1. Prints one table: our figures and the ratio to each anchor.
# One scenario is ours alone: fanout-100-tls, fanout-100 with every member on TLS (a self-signed
# certificate made at run time with openssl), and the ratio of its server CPU per delivery to
# plain fanout-100's. Two more are ours alone too: fanout-100-ws and latency-1000-ws, the same
# with every member on WebSocket (--http-listen, chat-load --ws), and the ratio of server CPU per
# delivery to plain fanout-100's (the contract's bound: 1.3x).
#
# The store (issue 21): fanout-100-disk and latency-1000-disk run ours with its store on disk
# (--data-dir in a fresh directory: every message fsynced before it is delivered) against the
# same scenarios in memory (--data-dir none); ours also serves --metrics-listen, so chat-load
# --metrics reports messages made durable and flushes per second. resume-storm and
# resume-storm-disk cut RESUME_N members at once and time until all have resumed (aim: 1000 in
# under 2 s). Each summary line gives the ratio or difference, store on vs off.
#
# Server "ours-irc" is chat-server's IRC listener (--irc-listen) under the same IRC load as the
# anchors (chat-load --proto irc): its column is its figures, with its ratios to ngIRCd and
# InspIRCd and its server CPU per delivery against ours over the native protocol. Scenario
# fanout-100-mixed is ours alone: one room of half native, half IRC members (chat-load --proto
# mixed), its server CPU per delivery against the native room's (the issue's bound: 1.2x).
#
# Usage: scripts/bench.sh [--quick] [--repeat N] [--servers "ours ngircd inspircd"] [--out DIR]
#                        [--baseline BIN]
#        scripts/bench.sh --scale-out [--quick] [--out DIR]   (1 vs 2 servers through Redis:
#              scripts/bench-cluster.sh)
#   --quick    smaller members/messages/time: about a minute instead of several
#   --repeat N run everything N times (interleaved) and print each figure's median: on a shared
#              machine single runs vary by tens of percent
#   --servers  which servers to run (default all three; ours alone needs no IRC server; add
#              ours-irc for our IRC listener)
#   --scenarios which scenarios to run (default all: fanout-100 fanout-100-tls fanout-100-disk
#              fanout-100-ws fanout-100-mixed fanout-1000 latency-1000 latency-1000-disk
#              latency-1000-ws idle-10000 join-storm resume-storm resume-storm-disk)
#   --out DIR  keep each run's JSON report there (default: a temporary directory, removed);
#              the *.json already in DIR are deleted first, so the table shows only this run
#   --baseline BIN  also run another chat-server binary (an earlier build) as server "base",
#              interleaved with the others, and add "base" and "ours/base" columns: the way to
#              tell a change's cost from the machine's noise
# Installs ngircd and inspircd with apt when missing. Needs 2+ CPUs for the pinning (runs
# unpinned, with a warning, on one). Exits non-zero when a build or a server start fails; a
# scenario that does not check out (loss, timeout) is marked in the table, not fatal.
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0
repeat=1
servers="ours ngircd inspircd"
out=""
baseline=""
scenarios=""
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) quick=1 ;;
        --servers) servers="$2"; shift ;;
        --scenarios) scenarios="$2"; shift ;;
        --out) out="$2"; shift ;;
        --repeat) repeat="$2"; shift ;;
        --baseline) baseline="$2"; shift ;;
        --scale-out) shift; exec "$(dirname "$0")/bench-cluster.sh" "$@" ;;
        -h|--help) sed -n '2,/^set -euo/{/^#/p}' "$0"; exit 0 ;;
        *) echo "bench.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
    esac
    shift
done
case "$repeat" in ''|*[!0-9]*|0) echo "bench.sh: --repeat needs a positive number" >&2; exit 2 ;; esac
if [ -n "$baseline" ]; then
    [ -x "$baseline" ] || { echo "bench.sh: --baseline $baseline is not an executable" >&2; exit 2; }
    baseline=$(cd "$(dirname "$baseline")" && pwd)/$(basename "$baseline")
    servers="$servers base"
fi

step() { printf '==> %s\n' "$*" >&2; }

# ---- sizes ----------------------------------------------------------------------------------
# Each scenario: members, and the generator arguments. The anchors' slow paths are bounded by
# per-scenario timeouts; what they did not finish in time is reported as such, never waited for.
if [ "$quick" = 1 ]; then
    F100_M=100; F1K_N=300; F1K_M=100; LAT_N=300; LAT_D=3; IDLE_N=2000; STORM_N=300
    STORM_N_INSP=5; TIME_BIG=40; TIME_ANCHOR_BIG=20; RESUME_N=300
else
    F100_M=500; F1K_N=1000; F1K_M=500; LAT_N=1000; LAT_D=10; IDLE_N=10000; STORM_N=2000
    STORM_N_INSP=20; TIME_BIG=120; TIME_ANCHOR_BIG=45; RESUME_N=1000
fi

# ---- tools ----------------------------------------------------------------------------------
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
need_pkg() { # need_pkg PATH DEBIAN-PACKAGE
    [ -x "$1" ] && return 0
    step "installing $2"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$2" >/dev/null
    [ -x "$1" ] || { echo "bench.sh: $2 installed no $1" >&2; exit 1; }
}
case " $servers " in *" ngircd "*) need_pkg /usr/sbin/ngircd ngircd ;; esac
case " $servers " in *" inspircd "*) need_pkg /usr/sbin/inspircd inspircd ;; esac
command -v taskset >/dev/null 2>&1 || need_pkg /usr/bin/taskset util-linux
has_ours=0
case " $servers " in *" ours "*|*" base "*) has_ours=1 ;; esac
[ "$has_ours" = 0 ] || command -v openssl >/dev/null 2>&1 || need_pkg /usr/bin/openssl openssl

# Every member is a descriptor in the generator and in the server (both inherit this limit).
want_fds=$((IDLE_N + 1000))
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$want_fds" ]; then
    ulimit -Hn "$want_fds" 2>/dev/null && ulimit -n "$want_fds" 2>/dev/null || true
fi
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$want_fds" ]; then
    IDLE_N=$(( $(ulimit -n) - 1000 ))
    echo "bench.sh: warning: open-file limit $(ulimit -n); idle scenario cut to $IDLE_N members" >&2
fi

if [ "$(nproc)" -ge 2 ]; then
    pin_server="taskset -c 0"; pin_load="taskset -c 1"
else
    pin_server=""; pin_load=""
    echo "bench.sh: warning: one CPU: server and generator share it; figures are not comparable" >&2
fi

step "cargo build --release -p chat-server -p chat-load"
cargo build --release -p chat-server -p chat-load >&2
load_bin=target/release/chat-load
server_bin=target/release/chat-server

work=$(mktemp -d)
[ -n "$out" ] || out="$work/results"
mkdir -p "$out"
# The table reads every *.json in $out: reports of an earlier run there would be mixed in.
rm -f "$out"/*.json
server_pid=""
metrics_addr=""
irc_addr=""
cleanup() {
    if [ -n "$server_pid" ]; then kill -9 "$server_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT
if [ "$has_ours" = 1 ]; then
    # fanout-100-tls: a self-signed certificate for 127.0.0.1, CA:FALSE so rustls accepts it as
    # the server's own and chat-load can trust it directly with --ca.
    openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost \
        -addext subjectAltName=IP:127.0.0.1,DNS:localhost \
        -addext basicConstraints=critical,CA:FALSE \
        -keyout "$work/tls-key.pem" -out "$work/tls-cert.pem" 2>/dev/null ||
        { echo "bench.sh: openssl could not make a test certificate" >&2; exit 1; }
fi

# ---- servers --------------------------------------------------------------------------------
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port() {
    # Below the ephemeral range: a port the generator's own connections (or their TIME_WAIT
    # remains) may hold cannot be bound by a server that does not set SO_REUSEADDR.
    local p low
    low=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
    for _ in $(seq 50); do
        p=$((10000 + RANDOM % (low - 10000)))
        if port_free "$p"; then echo "$p"; return 0; fi
    done
    echo "bench.sh: no free port found" >&2; return 1
}
wait_port() { # wait_port PORT PID LOG: until something listens, at most 15 s
    local i
    for i in $(seq 150); do
        if ! kill -0 "$2" 2>/dev/null; then
            echo "bench.sh: the server exited at start; its output:" >&2; cat "$3" >&2; return 1
        fi
        port_free "$1" || return 0
        # InspIRCd keeps running when its bind fails; do not wait 15 s for nothing.
        if grep -qi "failed to listen\|could not bind\|address already in use" "$3" 2>/dev/null; then
            echo "bench.sh: the server could not bind $1" >&2; return 1
        fi
        sleep 0.1
    done
    echo "bench.sh: nothing listens on $1 after 15 s; server output:" >&2; cat "$3" >&2; return 1
}

write_ngircd_conf() { # PORT
    # Throttling off: MaxPenaltyTime = 0 disables the command penalties, user mode F (set on
    # every client by DefaultUserModes) lifts the 3-commands-per-second read limit. No DNS,
    # ident or PAM lookups; no connection limits. Its write buffer and listen backlog (10) are
    # compiled in: chat-load keeps 8 connects in flight for it (see --parallel below).
    cat > "$work/ngircd.conf" <<EOF
[Global]
    Name = bench.test
    Info = chat-load anchor
    Listen = 127.0.0.1
    Ports = $1
    MotdPhrase = bench
    PidFile = $work/ngircd.pid
[Limits]
    MaxConnections = 0
    MaxConnectionsIP = 0
    MaxJoins = 0
    MaxNickLength = 32
    MaxPenaltyTime = 0
    PingTimeout = 600
    PongTimeout = 600
[Options]
    DNS = no
    Ident = no
    PAM = no
    DefaultUserModes = F
    RequireAuthPing = no
EOF
}

write_inspircd_conf() { # PORT
    # Flood control off: fakelag no, a command rate and threshold no client reaches, sendq and
    # recvq far above what the load queues, no per-IP limits, 20000 sockets, backlog 1024.
    echo bench > "$work/motd"
    cat > "$work/inspircd.conf" <<EOF
<server name="bench.test" description="chat-load anchor" network="bench">
<admin name="bench" nick="bench" email="bench@localhost">
<bind address="127.0.0.1" port="$1" type="clients">
<connect allow="*" timeout="60" pingfreq="600" threshold="1000000" commandrate="100000000"
         fakelag="no" hardsendq="64M" softsendq="16M" recvq="16M" localmax="100000"
         globalmax="100000" maxconnwarn="no" resolvehostnames="no" useident="no" limit="100000">
<performance netbuffersize="65536" somaxconn="1024" softlimit="20000" clonesonconnect="no"
             timeskipwarn="0" quietbursts="yes">
<pid file="$work/inspircd.pid">
<log method="file" type="* -USERINPUT -USEROUTPUT" level="default" target="$work/inspircd.log">
<files motd="$work/motd">
<limits maxnick="32">
EOF
}

# start_server NAME [tls] [disk]: sets server_pid and server_addr (with tls, ours only: the
# address of its TLS listener; with disk, ours only: its store in a fresh directory, fsync per
# round, instead of in memory); three tries (a port can be taken between the check and the bind).
start_server() {
    local try
    for try in 1 2 3; do
        start_server_once "$1" "${2:-}" "${3:-}" && return 0
        stop_server
        echo "bench.sh: $1 did not start (try $try of 3)" >&2
    done
    return 1
}

start_server_once() {
    local log="$work/$1.log" port
    metrics_addr=""
    case "$1" in
        ours|base|ours-irc)
            local bin=$server_bin tls=() pattern='s/^listening on \([^ ]*\)$/\1/p'
            # Ours keeps its store in the run's directory (the default is the user's, and one
            # server per directory); an earlier build (base) has no store.
            local store=(--data-dir none)
            if [ "${3:-}" = disk ]; then
                rm -rf "$work/data"; store=(--data-dir "$work/data")
            fi
            # Ours serves its metrics (store counters for chat-load --metrics); base may not.
            local metrics=(--metrics-listen 127.0.0.1:0)
            [ "$1" = base ] && bin=$baseline && store=() && metrics=()
            if [ "$1" = ours-irc ]; then
                # chat-load joins #load; the server's one channel is named so.
                tls=(--irc-listen 127.0.0.1:0 --irc-channel '#load')
                pattern='s/^listening on \(.*\) (IRC)$/\1/p'
            fi
            if [ "$2" = tls ]; then
                tls=(--tls-listen 127.0.0.1:0 --tls-cert "$work/tls-cert.pem"
                     --tls-key "$work/tls-key.pem")
                pattern='s/^listening on \(.*\) (TLS)$/\1/p'
            elif [ "$2" = ws ]; then
                tls=(--http-listen 127.0.0.1:0)
                pattern='s/^listening on \(.*\) (HTTP)$/\1/p'
            elif [ "$2" = mixed ]; then
                # Half the room on the native listener, half on the IRC one (irc_addr).
                tls=(--irc-listen 127.0.0.1:0 --irc-channel '#load')
            fi
            : > "$work/$1.out"
            $pin_server "$bin" --auto-approve --rate 0 --max-clients 20000 \
                --listen 127.0.0.1:0 "${tls[@]}" "${store[@]}" "${metrics[@]}" \
                < /dev/null > "$work/$1.out" 2> "$log" &
            server_pid=$!
            local i
            for i in $(seq 150); do
                server_addr=$(sed -n "$pattern" "$work/$1.out" | head -n1)
                metrics_addr=$(sed -n 's/^listening on \(.*\) (metrics)$/\1/p' "$work/$1.out" | head -n1)
                irc_addr=$(sed -n 's/^listening on \(.*\) (IRC)$/\1/p' "$work/$1.out" | head -n1)
                [ "$2" != mixed ] || [ -n "$irc_addr" ] || { sleep 0.1; continue; }
                [ -n "$server_addr" ] && return 0
                kill -0 "$server_pid" 2>/dev/null || break
                sleep 0.1
            done
            echo "bench.sh: chat-server did not start:" >&2; cat "$log" >&2; return 1
            ;;
        ngircd)
            port=$(free_port); write_ngircd_conf "$port"
            $pin_server /usr/sbin/ngircd -n -f "$work/ngircd.conf" > "$log" 2>&1 &
            server_pid=$!
            ;;
        inspircd)
            port=$(free_port); write_inspircd_conf "$port"
            local root=""
            [ "$(id -u)" -eq 0 ] && root="--runasroot"
            $pin_server /usr/sbin/inspircd --nofork $root --config="$work/inspircd.conf" \
                > "$log" 2>&1 &
            server_pid=$!
            ;;
    esac
    server_addr="127.0.0.1:$port"
    wait_port "$port" "$server_pid" "$log"
}

stop_server() {
    [ -n "$server_pid" ] || return 0
    kill -TERM "$server_pid" 2>/dev/null || true
    local i
    for i in $(seq 50); do
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -9 "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
}

# ---- scenarios ------------------------------------------------------------------------------
# run_scenario SERVER SCENARIO REPEAT: one fresh server, one chat-load run, JSON in $out.
run_scenario() {
    local srv=$1 sc=$2 rep=$3 proto=chat parallel=64 big=$TIME_BIG storm_n=$STORM_N
    case "$srv" in
        # Half of each server's listen backlog (ours 1024, set by chat-server, ngIRCd's compiled-in
        # 10, InspIRCd's somaxconn above), so no SYN is dropped: a dropped SYN costs a 1 s
        # retransmit, which would measure the kernel, not the server.
        ngircd) proto=irc; parallel=8; big=$TIME_ANCHOR_BIG ;;
        inspircd) proto=irc; parallel=512; big=$TIME_ANCHOR_BIG; storm_n=$STORM_N_INSP ;;
        ours-irc) proto=irc ;;
    esac
    local args=(--proto "$proto" --parallel "$parallel" --stall 5) tls="" disk=""
    case "$sc" in
        *-disk) disk=disk ;;
    esac
    case "${sc%-disk}" in
        fanout-100) args+=(--scenario messages -n 100 -s 100 -m "$F100_M" -w 32 --timeout 60) ;;
        fanout-100-tls) args+=(--scenario messages -n 100 -s 100 -m "$F100_M" -w 32 --timeout 60
                               --tls --ca "$work/tls-cert.pem"); tls=tls ;;
        fanout-100-ws) args+=(--scenario messages -n 100 -s 100 -m "$F100_M" -w 32 --timeout 60
                              --ws); tls=ws ;;
        # A mixed room: members 0, 2, 4... native, 1, 3, 5... on the IRC listener (ours only).
        fanout-100-mixed) args+=(--scenario messages -n 100 -s 100 -m "$F100_M" -w 32 --timeout 60)
                          tls=mixed ;;
        fanout-1000) args+=(--scenario messages -n "$F1K_N" -s 10 -m "$F1K_M" -w 64 --timeout 90) ;;
        latency-1000) args+=(--scenario messages -n "$LAT_N" -s 10 --rate 5 --duration "$LAT_D"
                             --timeout 90) ;;
        latency-1000-ws) args+=(--scenario messages -n "$LAT_N" -s 10 --rate 5 --duration "$LAT_D"
                                --timeout 90 --ws); tls=ws ;;
        idle-10000) args+=(--scenario idle -n "$IDLE_N" --hold 1 --timeout "$big") ;;
        join-storm) args+=(--scenario join-storm -n "$storm_n" --timeout "$big") ;;
        # Every socket cut at once, every member resuming: 512 in flight (half the backlog).
        resume-storm) args=(--proto chat --parallel 512 --stall 5 --scenario resume-storm
                            -n "$RESUME_N" --timeout "$big") ;;
    esac
    start_server "$srv" "$tls" "$disk"
    if [ "$tls" = mixed ]; then
        args=(--proto mixed --irc-addr "$irc_addr" "${args[@]:2}")
    fi
    step "$srv: $sc, run $rep of $repeat (chat-load ${args[*]})"
    local json="$out/$srv-$sc.$rep.json"
    [ -z "$metrics_addr" ] || args+=(--metrics "$metrics_addr")
    $pin_load "$load_bin" --json --server-pid "$server_pid" "${args[@]}" "$server_addr" \
        > "$json" 2> "$work/load.err" || true
    if [ ! -s "$json" ]; then
        echo "bench.sh: chat-load printed nothing for $srv $sc:" >&2; cat "$work/load.err" >&2
    fi
    stop_server
}

# *-disk: ours with its store on disk (--data-dir DIR: every message fsynced before delivery,
# one commit per round) instead of in memory (--data-dir none), the store's cost.
[ -n "$scenarios" ] || scenarios="fanout-100 fanout-100-tls fanout-100-disk fanout-100-ws fanout-100-mixed fanout-1000 latency-1000 latency-1000-disk latency-1000-ws idle-10000 join-storm resume-storm resume-storm-disk"
step "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), load average $(cut -d' ' -f1-3 /proc/loadavg)"
# Each repeat starts the servers' turns one place further round (ours ngircd inspircd, then
# ngircd inspircd ours, ...): a run right after another server's run can meet the kernel still
# tearing down thousands of its sockets, and no server should always be the one that does.
read -r -a order <<< "$servers"
for rep in $(seq "$repeat"); do
    for sc in $scenarios; do
        for i in "${!order[@]}"; do
            srv=${order[$(( (i + rep - 1) % ${#order[@]} ))]}
            # TLS is measured on ours only (the anchors' TLS set-up would be a bench of its own).
            case "$sc:$srv" in *-tls:ngircd|*-tls:inspircd|*-tls:base|*-tls:ours-irc) continue ;; esac
            case "$sc:$srv" in *-disk:ngircd|*-disk:inspircd|*-disk:base|*-disk:ours-irc) continue ;; esac
            # Resuming is version 3: ours only.
            case "$sc:$srv" in resume-storm*:ngircd|resume-storm*:inspircd|resume-storm*:base|resume-storm*:ours-irc) continue ;; esac
            # So is WebSocket (an earlier build has no --http-listen).
            case "$sc:$srv" in *-ws:ngircd|*-ws:inspircd|*-ws:base|*-ws:ours-irc) continue ;; esac
            # And the mixed room (native and IRC members of one server).
            case "$sc:$srv" in *-mixed:ngircd|*-mixed:inspircd|*-mixed:base|*-mixed:ours-irc) continue ;; esac
            run_scenario "$srv" "$sc" "$rep"
        done
    done
done

# ---- the table ------------------------------------------------------------------------------
# jget FILE KEY: a value of chat-load's flat JSON object ("null" when absent).
jget() {
    [ -s "$1" ] || { echo null; return; }
    local v
    # A string value runs to its closing quote (chat-load's strings hold no escaped quotes
    # that matter here); anything else to the next comma or brace.
    v=$(grep -o "\"$2\":\"[^\"]*\"" "$1" | head -n1 | cut -d: -f2-)
    [ -n "$v" ] || v=$(grep -o "\"$2\":[^,}]*" "$1" | head -n1 | cut -d: -f2-)
    echo "${v:-null}"
}
# raw FILE WHAT: one figure of one run, unformatted ("null" when not measured).
raw() {
    local f=$1
    case "$2" in
        dps) jget "$f" deliveries_per_s ;;
        p50) jget "$f" lat_p50_us ;;
        p99) jget "$f" lat_p99_us ;;
        p999) jget "$f" lat_p999_us ;;
        cpu) jget "$f" server_ns_per_delivery ;;
        admit) jget "$f" admit_s ;;
        rss) jget "$f" rss_per_member_b ;;
        gen) jget "$f" gen_ns_per_delivery ;;
        busy) jget "$f" gen_busy ;;
        admitted) jget "$f" admitted ;;
        rate) awk -v a="$(jget "$f" admitted)" -v s="$(jget "$f" admit_s)" \
                  'BEGIN { if (s > 0) printf "%.3f", a / s; else print "null" }' ;;
        storm) awk -v a="$(jget "$f" admitted)" -v s="$(jget "$f" admit_s)" \
                  'BEGIN { if (a > 0) printf "%.6f", s * 1000 / a; else print "null" }' ;;
        resume) jget "$f" resume_s ;;
        stormcpu) jget "$f" server_cpu_send_s ;;
        durable) jget "$f" store_durable_per_s ;;
        flushes) jget "$f" store_flushes_per_s ;;
        flushms) jget "$f" store_flush_ms ;;
    esac
}
# median SERVER SCENARIO WHAT: the median over the repeats ("null" when none measured it); with
# an even count, the mean of the two middle values.
median() {
    local f v vals=()
    for f in "$out/$1-$2".*.json; do
        [ -s "$f" ] || continue
        v=$(raw "$f" "$3")
        [ "$v" = null ] || [ -z "$v" ] || vals+=("$v")
    done
    [ ${#vals[@]} -gt 0 ] || { echo null; return; }
    printf '%s\n' "${vals[@]}" | sort -g | awk '{ a[NR] = $1 } END {
        if (NR % 2) print a[(NR + 1) / 2]; else printf "%.6f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}
# all_ok SERVER SCENARIO: every repeat checked out.
all_ok() {
    local f
    for f in "$out/$1-$2".*.json; do
        [ -s "$f" ] && [ "$(jget "$f" ok)" = true ] || return 1
    done
}
# fig SERVER SCENARIO WHAT: one figure (median over repeats), formatted; "!" marks a figure
# with a run that did not check out.
fig() {
    local v s
    v=$(median "$1" "$2" "$3")
    if [ "$v" = null ]; then echo "-"; return; fi
    case "$3" in
        p50|p99|p999) s=$(awk -v v="$v" 'BEGIN { printf "%.2f", v / 1000 }') ;;
        admit|resume|stormcpu|flushms) s=$(awk -v v="$v" 'BEGIN { printf "%.2f", v }') ;;
        storm) s=$(awk -v v="$v" 'BEGIN { printf "%.3f", v }') ;;
        *) s=$(awk -v v="$v" 'BEGIN { printf "%.0f", v }') ;;
    esac
    all_ok "$1" "$2" || s="$s!"
    echo "$s"
}
ratio() { # ratio OURS ANCHOR: ours / anchor, with a "!" when either side has one
    local mark=""
    case "$1$2" in *'!'*) mark='!' ;; esac
    awk -v a="${1%!}" -v b="${2%!}" -v m="$mark" 'BEGIN {
        if (a == "-" || b == "-" || b + 0 == 0) print "-"; else printf "%.2fx%s", a / b, m }'
}
note() { # the admitted counts when runs stopped short
    local f a n t=""
    for f in "$out/$1-$2".*.json; do
        a=$(jget "$f" admitted); n=$(jget "$f" members)
        [ "$a" = "$n" ] || t+="${t:+, }$a/$n"
    done
    [ -z "$t" ] || echo " ($t in)"
}

has() { case " $servers " in *" $1 "*) return 0 ;; esac; return 1; }
row() { # row LABEL SCENARIO WHAT
    local o n i line
    o=$(fig ours "$2" "$3")
    line=$(printf '| %-44s | %12s' "$1" "$o")
    if has ngircd; then
        n=$(fig ngircd "$2" "$3")
        line+=$(printf ' | %12s | %8s' "$n" "$(ratio "$o" "$n")")
    fi
    if has inspircd; then
        i=$(fig inspircd "$2" "$3")
        line+=$(printf ' | %12s | %8s' "$i" "$(ratio "$o" "$i")")
    fi
    if has base; then
        i=$(fig base "$2" "$3")
        line+=$(printf ' | %12s | %9s' "$i" "$(ratio "$o" "$i")")
    fi
    if has ours-irc; then
        i=$(fig ours-irc "$2" "$3")
        line+=$(printf ' | %12s | %8s' "$i" "$(ratio "$i" "$o")")
        has ngircd && line+=$(printf ' | %8s' "$(ratio "$i" "$(fig ngircd "$2" "$3")")")
        has inspircd && line+=$(printf ' | %9s' "$(ratio "$i" "$(fig inspircd "$2" "$3")")")
    fi
    echo "$line |"
}

echo
header=$(printf '| %-44s | %12s' "figure (higher/lower is better)" "ours")
sep="|$(printf -- '-%.0s' $(seq 46))|$(printf -- '-%.0s' $(seq 14))"
if has ngircd; then header+=$(printf ' | %12s | %8s' ngircd "ours/ng"); sep+="|--------------|----------"; fi
if has inspircd; then header+=$(printf ' | %12s | %8s' inspircd "ours/insp"); sep+="|--------------|----------"; fi
if has base; then header+=$(printf ' | %12s | %9s' base "ours/base"); sep+="|--------------|-----------"; fi
if has ours-irc; then
    header+=$(printf ' | %12s | %8s' ours-irc "irc/ours"); sep+="|--------------|----------"
    has ngircd && { header+=$(printf ' | %8s' "irc/ng"); sep+="|----------"; }
    has inspircd && { header+=$(printf ' | %9s' "irc/insp"); sep+="|-----------"; }
fi
echo "$header |"
echo "$sep|"
row "fanout-100: deliveries/s (higher)" fanout-100 dps
row "fanout-100: p99 latency ms (lower)" fanout-100 p99
row "fanout-100: server CPU ns/delivery (lower)" fanout-100 cpu
row "fanout-100 TLS: deliveries/s (higher)" fanout-100-tls dps
row "fanout-100 TLS: server CPU ns/deliv. (lower)" fanout-100-tls cpu
row "fanout-100 store on disk: deliveries/s" fanout-100-disk dps
row "fanout-100 store on disk: p99 ms (lower)" fanout-100-disk p99
row "fanout-100 store on disk: CPU ns/deliv." fanout-100-disk cpu
row "fanout-100 WS: deliveries/s (higher)" fanout-100-ws dps
row "fanout-100 WS: p99 latency ms (lower)" fanout-100-ws p99
row "fanout-100 WS: server CPU ns/deliv. (lower)" fanout-100-ws cpu
row "fanout-100 mixed: deliveries/s (higher)" fanout-100-mixed dps
row "fanout-100 mixed: p99 latency ms (lower)" fanout-100-mixed p99
row "fanout-100 mixed: server CPU ns/deliv. (lower)" fanout-100-mixed cpu
row "fanout-$F1K_N: deliveries/s (higher)" fanout-1000 dps
row "fanout-$F1K_N: p99 latency ms (lower)" fanout-1000 p99
row "fanout-$F1K_N: server CPU ns/delivery (lower)" fanout-1000 cpu
row "latency-$LAT_N: p50 ms (lower)" latency-1000 p50
row "latency-$LAT_N: p99 ms (lower)" latency-1000 p99
row "latency-$LAT_N: p99.9 ms (lower)" latency-1000 p999
row "latency-$LAT_N store on disk: p99 ms (lower)" latency-1000-disk p99
row "fanout-100 disk: msgs made durable/s" fanout-100-disk durable
row "fanout-100 disk: flushes/s" fanout-100-disk flushes
row "fanout-100 disk: ms per flush" fanout-100-disk flushms
row "latency-$LAT_N disk: msgs made durable/s" latency-1000-disk durable
row "latency-$LAT_N disk: flushes/s" latency-1000-disk flushes
row "resume-storm-$RESUME_N: s until all back (lower)" resume-storm resume
row "resume-storm-$RESUME_N disk: s until all back" resume-storm-disk resume
row "resume-storm-$RESUME_N disk: server CPU s" resume-storm-disk stormcpu
row "latency-$LAT_N WS: p50 ms (lower)" latency-1000-ws p50
row "latency-$LAT_N WS: p99 ms (lower)" latency-1000-ws p99
row "idle-$IDLE_N: admit time s (lower)" idle-10000 admit
row "idle-$IDLE_N: admissions/s (higher)" idle-10000 rate
row "idle-$IDLE_N: server RSS bytes/member (lower)" idle-10000 rss
row "join-storm: ms per join (lower)" join-storm storm
echo
storm_total() { # SERVER: "N members in T s" (the median of each over the repeats)
    local a t
    a=$(median "$1" join-storm admitted); t=$(median "$1" join-storm admit)
    awk -v a="$a" -v t="$t" 'BEGIN { if (a == "null" || t == "null") print "-";
        else printf "%.0f members in %.2f s\n", a, t }'
}
for srv in ours base; do
    has "$srv" || continue
    # The store on disk against in memory: what fsync before delivery costs.
    [ "$srv" = ours ] && awk -v d="$(median ours fanout-100-disk cpu)" -v p="$(median ours fanout-100 cpu)" \
        -v dl="$(median ours latency-1000-disk p99)" -v pl="$(median ours latency-1000 p99)" \
        'BEGIN { if (d != "null" && p != "null" && p > 0)
            printf "fanout-100 with the store on disk: server CPU per delivery %.0f ns vs %.0f in memory, %.2fx (aim: at most 1.10x)\n", d, p, d / p
          if (dl != "null" && pl != "null")
            printf "latency-1000 p99 with the store on disk: %.2f ms vs %.2f ms in memory, %+.2f ms (aim: at most +2 ms)\n", dl / 1000, pl / 1000, (dl - pl) / 1000 }'
    [ "$srv" = ours ] && awk -v m="$(median ours resume-storm resume)" -v d="$(median ours resume-storm-disk resume)" -v n="$RESUME_N" \
        'BEGIN { if (m != "null") printf "resume storm: %d members back in %.2f s in memory", n, m
                 if (d != "null") printf ", %.2f s with the store on disk (aim: 1000 in under 2 s)", d
                 if (m != "null" || d != "null") printf "\n" }'
    # The ratio of the medians: what encrypting each member's stream costs the server.
    awk -v t="$(median "$srv" fanout-100-tls cpu)" -v p="$(median "$srv" fanout-100 cpu)" -v s="$srv" \
        'BEGIN { if (t != "null" && p != "null" && p > 0)
            printf "fanout-100 with TLS members (%s): server CPU per delivery %.0f ns vs %.0f plain, %.2fx\n", s, t, p, t / p }'
    awk -v w="$(median "$srv" fanout-100-ws cpu)" -v p="$(median "$srv" fanout-100 cpu)" -v s="$srv" \
        'BEGIN { if (w != "null" && p != "null" && p > 0)
            printf "fanout-100 with WebSocket members (%s): server CPU per delivery %.0f ns vs %.0f plain, %.2fx (bound 1.3x)\n", s, w, p, w / p }'
done
# The mixed room (half native, half IRC members) against the native room: what the second
# dialect costs per delivery (the issue's bound: 1.2x).
awk -v m="$(median ours fanout-100-mixed cpu)" -v p="$(median ours fanout-100 cpu)" \
    -v i="$(median ours-irc fanout-100 cpu)" \
    'BEGIN { if (m != "null" && p != "null" && p > 0) {
        printf "fanout-100 mixed room (half IRC): server CPU per delivery %.0f ns vs %.0f native, %.2fx (bound 1.2x)", m, p, m / p
        if (i != "null") printf "; all IRC %.0f ns, %.2fx", i, i / p
        printf "\n" } }'
line="join-storm totals: ours $(storm_total ours)"
has ngircd && line+=", ngircd $(storm_total ngircd)"
has inspircd && line+=", inspircd $(storm_total inspircd) (its registration completes on a 1 s timer, so it joins $STORM_N_INSP)"
echo "$line"
for srv in $servers; do
    n=$(note "$srv" idle-10000)
    [ -z "$n" ] || echo "idle: $srv stopped at its time limit$n; its figures cover those members"
done
bad=""
for f in "$out"/*.json; do
    [ -s "$f" ] || continue
    [ "$(jget "$f" ok)" = true ] || bad+="  $(basename "$f" .json): $(jget "$f" error)"$'\n'
done
if [ -n "$bad" ]; then
    echo "! = the run did not check out (loss, duplicates, reordering, refusals or timeout):"
    printf '%s' "$bad"
fi
g=$(median ours fanout-100 gen); b=$(median ours fanout-100 busy)
awk -v g="$g" -v b="$b" 'BEGIN { if (g != "null" && g > 0)
    printf "generator (fanout-100 vs ours): %.0f ns CPU per delivery, ceiling ~%.1f M deliveries/s on its core; busy %.0f%% of the run\n", g, 1000 / g, b * 100 }'
[ "$repeat" = 1 ] || echo "each figure is the median of $repeat runs"
# How much CPU other processes took while chat-load ran, as a share of one CPU: a run with a
# large share measured the neighbours as much as the servers.
for f in "$out"/*.json; do
    [ -s "$f" ] || continue
    awk -v o="$(jget "$f" others_cpu_s)" -v w="$(jget "$f" wall_s)" -v n="$(basename "$f" .json)" \
        'BEGIN { if (o != "null" && w > 0) printf "%.0f %s\n", 100 * o / w, n }'
done | sort -n | awk '{ a[NR] = $1; r[NR] = $2 } END { if (NR > 0)
    printf "other processes took a median %d%% of one CPU during the runs (most: %d%%, %s)\n", a[int((NR + 1) / 2)], a[NR], r[NR] }'
echo "JSON reports: $out$( [ "$out" = "$work/results" ] && echo " (removed on exit; keep them with --out DIR)")"
