#!/usr/bin/env bash
# Smoke test: room history and actions (protocol version 2), as a person would see them with netcat.
# With --history 3, alice says four things, whispers to carol, and waves with /me; carol's bare
# /me is a usage error. bob joins late: right after WELCOME he gets exactly the last three room
# messages as HIST lines, oldest first (the /me among them as ACT, the private one never), each
# with an RFC 3339 UTC time with milliseconds; then live lines. bob leaves with /quit.
# At the end every transcript, and the console, must be exactly as expected (HIST times become
# TIME once their form was checked).
# Usage: bash scripts/smoke/05-history.sh [DIR-HOLDING-chat-server]   (default target/debug)
set -euo pipefail
# shellcheck source=lib.bash source-path=SCRIPTDIR
source "$(dirname "$0")/lib.bash"
smoke_init "$@"
server_start --auto-approve --history 3

NAMEQ="NAME? choose a name: 1-32 of A-Z a-z 0-9 _ -"

# canon_hist: lib.bash's canonical form, then the time of each well-formed HIST line becomes
# TIME. A HIST line whose time has any other form keeps it, so it can never match.
canon_hist() {
    complete_lines "$1" |
        sed -E 's/^HIST [0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z /HIST TIME /'
}

# wait_hist NAME LINE: waits until NAME got `HIST <time> LINE` with a well-formed time.
wait_hist() {
    local file=$SMOKE_DIR/$1.out want="HIST TIME $2" deadline=$((SECONDS + SMOKE_WAIT))
    until canon_hist "$file" | grep -qxF -- "$want"; do
        [ "$SECONDS" -lt "$deadline" ] || fail "timed out waiting for '$want' in $1.out"
        sleep "$SMOKE_STEP"
    done
}

# expect_hist_transcript NAME: like expect_transcript, with HIST times as TIME.
expect_hist_transcript() {
    local file=$SMOKE_DIR/$1.out
    if ! diff -u --label "expected $1" --label "actual $1" - <(canon_hist "$file") >"$SMOKE_DIR/diff"; then
        cat "$SMOKE_DIR/diff" >&2
        fail "transcript of $1 differs from the expected one (diff above: - expected, + actual)"
    fi
}

say "alice and carol join (auto-approved)"
client_start alice
send alice "alice"
wait_client alice "WELCOME alice 1"
wait_console "joined alice from 127.0.0.1:PORT (1 online)"
client_start carol
send carol "carol"
wait_client carol "WELCOME carol 2"
wait_client alice "JOIN carol"
wait_console "joined carol from 127.0.0.1:PORT (2 online)"

# Each line is awaited at carol before the next is sent, so the room's order is fixed.
say "alice says four things, whispers to carol and waves"
send alice "one"
wait_client carol "MSG alice - one"
send alice "two"
wait_client carol "MSG alice - two"
send alice "three **bold**"
wait_client carol "MSG alice - three **bold**"
send alice "/color green four"
wait_client carol "MSG alice green four"
send alice "/private carol never in the history"
wait_client carol "PRIV alice carol - never in the history"
send alice "/me waves"
wait_client carol "ACT alice waves"

say "carol's /me without text is a usage error"
send carol "/me"
wait_client carol "ERROR usage"

say "bob joins late and gets the last three room messages as history"
client_start bob
send bob "bob"
wait_client bob "WELCOME bob 3"
wait_hist bob "ACT alice waves"
wait_client alice "JOIN bob"
wait_client carol "JOIN bob"
wait_console "joined bob from 127.0.0.1:PORT (3 online)"

say "live lines come after the history"
send bob "hi all"
wait_client alice "MSG bob - hi all"
wait_client carol "MSG bob - hi all"
send alice "/me nods"
wait_client bob "ACT alice nods"
wait_client carol "ACT alice nods"

say "bob leaves with /quit"
send bob "/quit"
wait_client bob "BYE goodbye"
expect_closed bob
wait_client alice "LEAVE bob left"
wait_client carol "LEAVE bob left"
wait_console "left bob (left)"

say "the operator quits"
console "quit"
wait_client alice "BYE server shutting down"
wait_client carol "BYE server shutting down"
expect_closed alice
expect_closed carol
server_exit_is 0

expect_hist_transcript bob <<EOF
$NAMEQ
WELCOME bob 3
HIST TIME MSG alice - three **bold**
HIST TIME MSG alice green four
HIST TIME ACT alice waves
ACT alice nods
BYE goodbye
EOF

expect_transcript alice <<EOF
$NAMEQ
WELCOME alice 1
JOIN carol
JOIN bob
MSG bob - hi all
LEAVE bob left
BYE server shutting down
EOF

expect_transcript carol <<EOF
$NAMEQ
WELCOME carol 2
MSG alice - one
MSG alice - two
MSG alice - three **bold**
MSG alice green four
PRIV alice carol - never in the history
ACT alice waves
ERROR usage
JOIN bob
MSG bob - hi all
ACT alice nods
LEAVE bob left
BYE server shutting down
EOF

expect_transcript server <<'EOF'
listening on 127.0.0.1:PORT
joined alice from 127.0.0.1:PORT (1 online)
joined carol from 127.0.0.1:PORT (2 online)
joined bob from 127.0.0.1:PORT (3 online)
left bob (left)
stopping the server (by stdin)
shutting down
EOF
