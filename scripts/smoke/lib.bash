# Shared helpers for the netcat smoke tests in scripts/smoke/*.sh. Sourced, never run: the name
# ends in .bash so that scripts/test.sh (which runs scripts/smoke/*.sh) does not take it for a test.
#
# What it owns: a temp dir per script, starting chat-server and `nc` clients on FIFOs, writing to
# them, waiting (always with a deadline) for lines in their transcripts, comparing the final
# transcripts exactly, and killing everything it started when the script exits, however it exits.
#
# How a script uses it:
#   source "$(dirname "$0")/lib.bash"
#   smoke_init "$@"                     # $1 = directory holding chat-server (default target/debug)
#   server_start [--flag ...]           # --listen 127.0.0.1:0 is added; sets PORT
#   client_start alice                  # nc 127.0.0.1 PORT, transcript in $SMOKE_DIR/alice.out
#   send alice "alice"; wait_client alice "WAIT waiting for the operator to approve alice"
#   console "approve alice"; wait_console "approved alice (1 online)"
#   ...
#   expect_transcript alice <<'EOF'     # exact, whole transcript
#   ...
#   EOF
#
# Transcripts are compared in a canonical form (see `canon`): ephemeral ports become PORT, the
# seconds of `pending` become N, and an ERROR line keeps only its tag and code (the code is the
# contract; the words after it are for people and may change). Everything else is compared exactly.
#
# Why FIFOs held open by us: a process reading a FIFO sees end of file when the last writer goes
# away, so each FIFO is opened once here, read-write (`exec {fd}<>fifo`: on Linux this never
# blocks, unlike a write-only open, which waits for a reader), and kept open until we choose to
# close it. Children get none of these descriptors (see `spawn`), or closing ours would not be
# the last close and the reader would never see end of file.
#
# Why `nc` without -N: netcat-openbsd without -N does nothing on the socket when its stdin ends; it
# exits only once the server has closed the connection. So "close the client's stdin, then wait for
# nc to exit" proves that the *server* closed the connection (after BYE or DENIED) without the test
# itself sending anything that could race with it. With -N, closing stdin would half-close the
# socket and the server would see the client quit, which is a different event.

# Every wait polls in steps of this many seconds, up to its own deadline.
SMOKE_STEP=0.05
# Default deadline of one wait, in seconds (override with SMOKE_WAIT=...).
SMOKE_WAIT=${SMOKE_WAIT:-5}
# Hard bound on a whole script, in seconds: a watchdog ends the script after it, and every wait
# also fails once it is passed.
SMOKE_LIMIT=${SMOKE_LIMIT:-25}

SMOKE_NAME=$(basename "$0")
SMOKE_DIR=""
SMOKE_START=$SECONDS
SERVER_PID=""
SERVER_FD=""
WATCHDOG_PID=""
PORT=""
declare -A CLIENT_PID=()
declare -A CLIENT_FD=()
# Descriptors we opened and must not leak into children.
OPEN_FDS=()

say() { printf '[%s] %s\n' "$SMOKE_NAME" "$*"; }

# fail MESSAGE: print the message and every transcript, then exit 1 (the EXIT trap cleans up).
fail() {
    trap - ERR
    printf '\n[%s] FAIL: %s\n' "$SMOKE_NAME" "$*" >&2
    if [ -n "$SMOKE_DIR" ] && [ -d "$SMOKE_DIR" ]; then
        local f
        for f in "$SMOKE_DIR"/*.out "$SMOKE_DIR"/server.err; do
            [ -e "$f" ] || continue
            printf -- '--- %s ---\n' "$(basename "$f")" >&2
            tail -n 60 "$f" | cat -v >&2
        done
    fi
    exit 1
}

# Kills what we started, closes our FIFO ends and removes the temp dir. Runs on every exit.
cleanup() {
    local rc=$?
    trap - EXIT ERR TERM INT
    set +e
    local pids=() pid n fd
    [ -n "$WATCHDOG_PID" ] && pids+=("$WATCHDOG_PID")
    for n in "${!CLIENT_PID[@]}"; do pids+=("${CLIENT_PID[$n]}"); done
    [ -n "$SERVER_PID" ] && pids+=("$SERVER_PID")
    for pid in "${pids[@]}"; do
        alive "$pid" && kill -TERM "$pid" 2>/dev/null
    done
    # Give them two seconds to go, then force it; never leave a server behind.
    local deadline=$((SECONDS + 2))
    for pid in "${pids[@]}"; do
        while alive "$pid" && [ "$SECONDS" -lt "$deadline" ]; do sleep "$SMOKE_STEP"; done
        alive "$pid" && kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    for fd in "${OPEN_FDS[@]}"; do
        exec {fd}>&-
    done
    OPEN_FDS=()
    if [ -n "$SMOKE_DIR" ] && [ -z "${SMOKE_KEEP:-}" ]; then
        rm -rf "$SMOKE_DIR"
    elif [ -n "$SMOKE_DIR" ]; then
        say "kept $SMOKE_DIR"
    fi
    if [ "$rc" -eq 0 ]; then
        say "ok ($((SECONDS - SMOKE_START)) s)"
    fi
    exit "$rc"
}

# alive PID: the process exists and is not a zombie.
alive() {
    local state
    [ -e "/proc/$1" ] || return 1
    state=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) || return 1
    [ -n "$state" ] && [ "$state" != Z ]
}

# smoke_init [BIN_DIR]: checks tools, makes the temp dir, installs the traps and the watchdog.
smoke_init() {
    local bin=${1:-target/debug}
    [ -x "$bin/chat-server" ] || { echo "$SMOKE_NAME: no executable $bin/chat-server (build it first)" >&2; exit 2; }
    BIN=$(cd "$bin" && pwd)
    command -v nc >/dev/null || { echo "$SMOKE_NAME: nc not found (apt-get install netcat-openbsd)" >&2; exit 2; }
    SMOKE_DIR=$(mktemp -d "${TMPDIR:-/tmp}/chat-smoke.XXXXXX")
    # errtrace: the ERR trap also fires inside functions.
    set -E
    trap cleanup EXIT
    trap 'fail "interrupted (signal or the ${SMOKE_LIMIT} s watchdog)"' TERM INT
    trap 'fail "command failed at line $LINENO: $BASH_COMMAND"' ERR
    # The watchdog waits with `read -t` on a FIFO nobody writes: no sleep process to leave behind.
    mkfifo "$SMOKE_DIR/.watchdog"
    (
        trap - EXIT ERR TERM INT
        exec {w}<>"$SMOKE_DIR/.watchdog"
        read -r -t "$SMOKE_LIMIT" -u "$w" || true
        kill -TERM $$ 2>/dev/null
    ) &
    WATCHDOG_PID=$!
    say "temp dir $SMOKE_DIR, server $BIN/chat-server"
}

# close_fd FD: closes one of our descriptors, once (closing a closed one is a bug: bash may
# have reused the number) and stops tracking it.
close_fd() {
    local fd=$1 kept=() f
    for f in "${OPEN_FDS[@]}"; do
        [ "$f" = "$fd" ] || kept+=("$f")
    done
    [ "${#kept[@]}" -lt "${#OPEN_FDS[@]}" ] || fail "close_fd: descriptor $fd is not open"
    OPEN_FDS=("${kept[@]}")
    exec {fd}>&-
}

# spawn IN OUT ERR CMD...: starts CMD in the background with the given stdin/stdout/stderr files
# and none of our FIFO descriptors; the new pid is in SPAWNED.
spawn() {
    local in=$1 out=$2 err=$3
    shift 3
    (
        trap - EXIT ERR TERM INT
        for fd in "${OPEN_FDS[@]}"; do exec {fd}>&-; done
        exec "$@" <"$in" >"$out" 2>"$err"
    ) &
    SPAWNED=$!
}

# canon: the canonical form of transcript lines on stdin (see the header).
canon() {
    sed -E \
        -e 's/127\.0\.0\.1:[0-9]+/127.0.0.1:PORT/g' \
        -e 's/, waiting [0-9.]+s$/, waiting Ns/' \
        -e 's/, [0-9hms]+ in the room$/, T in the room/' \
        -e 's/^(ERROR [a-z0-9-]+) .*$/\1/'
}

# complete_lines FILE: the lines of FILE that end in a newline (a line still being written is
# left out, so a prefix of it can never match), in canonical form.
complete_lines() {
    local line
    while IFS= read -r line; do
        printf '%s\n' "$line"
    done <"$1" | canon
}

# wait_for FILE LINE [COUNT]: waits until LINE (exact, canonical form) is a complete line of FILE,
# at least COUNT times (default 1). On timeout prints the file and fails.
wait_for() {
    local file=$1 want=$2 count=${3:-1}
    local deadline=$((SECONDS + SMOKE_WAIT)) have
    while :; do
        if [ -e "$file" ]; then
            have=$(complete_lines "$file" | grep -cxF -- "$want" || true)
            [ "$have" -ge "$count" ] && return 0
        fi
        if [ "$SECONDS" -ge "$deadline" ] || [ $((SECONDS - SMOKE_START)) -ge "$SMOKE_LIMIT" ]; then
            fail "timed out waiting for line '$want' (x$count) in $(basename "$file")"
        fi
        sleep "$SMOKE_STEP"
    done
}

wait_client() { wait_for "$SMOKE_DIR/$1.out" "$2" "${3:-1}"; }
wait_console() { wait_for "$SMOKE_DIR/server.out" "$1" "${2:-1}"; }

# server_start [FLAGS...]: starts chat-server on a free port with its console on a FIFO, waits
# for `listening on 127.0.0.1:PORT` as the first stdout line and sets PORT.
# shellcheck disable=SC2120 # the flags are optional
server_start() {
    mkfifo "$SMOKE_DIR/server.in"
    exec {SERVER_FD}<>"$SMOKE_DIR/server.in"
    OPEN_FDS+=("$SERVER_FD")
    : >"$SMOKE_DIR/server.out"
    spawn "$SMOKE_DIR/server.in" "$SMOKE_DIR/server.out" "$SMOKE_DIR/server.err" \
        "$BIN/chat-server" --listen 127.0.0.1:0 --data-dir "$SMOKE_DIR/data" "$@"
    SERVER_PID=$SPAWNED
    local deadline=$((SECONDS + SMOKE_WAIT)) first=""
    # `read` succeeds only on a whole line, so a half-written port is never taken.
    until IFS= read -r first <"$SMOKE_DIR/server.out"; do
        alive "$SERVER_PID" || fail "chat-server exited before printing 'listening on'"
        [ "$SECONDS" -lt "$deadline" ] || fail "chat-server printed no 'listening on' line in ${SMOKE_WAIT} s"
        sleep "$SMOKE_STEP"
    done
    [[ $first =~ ^listening\ on\ 127\.0\.0\.1:([0-9]+)$ ]] ||
        fail "first stdout line of chat-server is '$first', expected 'listening on 127.0.0.1:PORT'"
    PORT=${BASH_REMATCH[1]}
    say "server pid $SERVER_PID listening on 127.0.0.1:$PORT"
}

# console LINE: types LINE on the operator console.
console() {
    printf '%s\n' "$1" >&"$SERVER_FD"
}

# console_close: ends the console's stdin (the server should print `console closed`).
console_close() {
    close_fd "$SERVER_FD"
}

# server_signal SIG: sends a signal to the server.
server_signal() {
    kill -"$1" "$SERVER_PID"
}

# server_exit_is STATUS: waits for the server to exit and checks its exit status.
server_exit_is() {
    local want=$1 rc=0
    wait_gone "$SERVER_PID" "chat-server"
    wait "$SERVER_PID" || rc=$?
    SERVER_PID=""
    [ "$rc" -eq "$want" ] || fail "chat-server exited with status $rc, expected $want"
    if grep -q 'panicked' "$SMOKE_DIR/server.err"; then
        fail "chat-server panicked (see server.err)"
    fi
}

# wait_gone PID WHAT: waits (with the deadline) until PID has exited.
wait_gone() {
    local deadline=$((SECONDS + SMOKE_WAIT))
    while alive "$1"; do
        [ "$SECONDS" -lt "$deadline" ] || fail "$2 (pid $1) still running after ${SMOKE_WAIT} s"
        sleep "$SMOKE_STEP"
    done
}

# client_start NAME: connects `nc 127.0.0.1 PORT` with stdin on NAME.in and stdout in NAME.out,
# and waits for the server's first line (`NAME? ...`).
client_start() {
    local name=$1 fd
    mkfifo "$SMOKE_DIR/$name.in"
    exec {fd}<>"$SMOKE_DIR/$name.in"
    OPEN_FDS+=("$fd")
    CLIENT_FD[$name]=$fd
    : >"$SMOKE_DIR/$name.out"
    spawn "$SMOKE_DIR/$name.in" "$SMOKE_DIR/$name.out" "$SMOKE_DIR/$name.err" nc 127.0.0.1 "$PORT"
    CLIENT_PID[$name]=$SPAWNED
    wait_for_prefix "$SMOKE_DIR/$name.out" "NAME? "
}

# wait_for_prefix FILE PREFIX: waits until some complete line of FILE starts with PREFIX.
wait_for_prefix() {
    local file=$1 prefix=$2 deadline=$((SECONDS + SMOKE_WAIT))
    until complete_lines "$file" | awk -v p="$prefix" 'index($0, p) == 1 { f = 1 } END { exit !f }'; do
        [ "$SECONDS" -lt "$deadline" ] || fail "timed out waiting for a line starting '$prefix' in $(basename "$file")"
        sleep "$SMOKE_STEP"
    done
}

# send NAME LINE: NAME types LINE (a newline is added).
send() {
    printf '%s\n' "$2" >&"${CLIENT_FD[$1]}"
}

# send_raw NAME FORMAT: NAME sends printf FORMAT as is (for control bytes, CRLF, bad UTF-8).
send_raw() {
    # shellcheck disable=SC2059 # the format is the point
    printf "$2" >&"${CLIENT_FD[$1]}"
}

# expect_closed NAME: the server must have closed NAME's connection: we end nc's stdin (which,
# without -N, sends nothing) and nc must then exit by itself.
expect_closed() {
    local name=$1
    close_fd "${CLIENT_FD[$name]}"
    unset "CLIENT_FD[$name]"
    wait_gone "${CLIENT_PID[$name]}" "nc of $name (the server did not close the connection)"
    wait "${CLIENT_PID[$name]}" 2>/dev/null || true
    unset "CLIENT_PID[$name]"
}

# client_kill NAME: NAME's nc dies abruptly (its socket is closed by the kernel).
client_kill() {
    local name=$1 pid=${CLIENT_PID[$1]}
    close_fd "${CLIENT_FD[$name]}"
    unset "CLIENT_FD[$name]"
    kill -TERM "$pid"
    wait_gone "$pid" "nc of $name"
    wait "$pid" 2>/dev/null || true
    unset "CLIENT_PID[$name]"
}

# expect_transcript NAME|server: compares the whole transcript (canonical form) with stdin.
expect_transcript() {
    local file=$SMOKE_DIR/$1.out
    [ "$1" = server ] && file=$SMOKE_DIR/server.out
    if ! diff -u --label "expected $1" --label "actual $1" - <(complete_lines "$file") >"$SMOKE_DIR/diff"; then
        cat "$SMOKE_DIR/diff" >&2
        fail "transcript of $1 differs from the expected one (diff above: - expected, + actual)"
    fi
    # A line without its newline at the end would have been left out above.
    if [ -s "$file" ] && [ "$(tail -c1 "$file" | od -An -c | tr -d ' ')" != '\n' ]; then
        fail "transcript of $1 ends with an unterminated line"
    fi
}
