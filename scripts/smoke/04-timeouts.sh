#!/usr/bin/env bash
# Smoke test: the limits a person meets while joining.
# --login-timeout: a connection that never gives a name gets BYE and is closed, not before its
# time. --approval-timeout: a join nobody decides gets DENIED and is closed, not before its time.
# --max-pending 1: while one join waits, the next one gets ERROR server-full and is closed.
# Usage: bash scripts/smoke/04-timeouts.sh [DIR-HOLDING-chat-server]   (default target/debug)
set -euo pipefail
# shellcheck source=lib.bash source-path=SCRIPTDIR
source "$(dirname "$0")/lib.bash"
smoke_init "$@"
server_start --login-timeout 1 --approval-timeout 2 --max-pending 1

NAMEQ="NAME? choose a name: 1-32 of A-Z a-z 0-9 _ -"

# now_ms: wall-clock milliseconds, to check that a timeout did not fire early.
now_ms() { local t=${EPOCHREALTIME/[.,]/}; echo $((t / 1000)); }

# at_least WHAT START_MS MIN_MS: fails when less than MIN_MS passed since START_MS.
at_least() {
    local took=$(($(now_ms) - $2))
    [ "$took" -ge "$3" ] || fail "$1 came after $took ms, before its time ($3 ms)"
    say "$1 after $took ms"
}

say "silent connects and never gives a name"
t_silent=$(now_ms)
client_start silent

say "slow asks to join and nobody decides"
client_start slow
# Both clocks start before the server's can, so an early timeout is never hidden.
t_slow=$(now_ms)
send slow "slow"
wait_client slow "WAIT waiting for the operator to approve slow"
wait_console "join request: slow from 127.0.0.1:PORT (approve slow / deny slow)"

say "extra asks to join while slow fills the waiting room"
client_start extra
send extra "extra"
wait_client extra "ERROR server-full"
expect_closed extra

wait_client silent "BYE no name given in time"
at_least "the login timeout (1 s)" "$t_silent" 900
expect_closed silent

wait_client slow "DENIED no operator approved you in time"
at_least "the approval timeout (2 s)" "$t_slow" 1900
expect_closed slow

console "quit"
server_exit_is 0

expect_transcript silent <<EOF
$NAMEQ
BYE no name given in time
EOF

expect_transcript slow <<EOF
$NAMEQ
WAIT waiting for the operator to approve slow
DENIED no operator approved you in time
EOF

expect_transcript extra <<EOF
$NAMEQ
ERROR server-full
EOF

expect_transcript server <<'EOF'
listening on 127.0.0.1:PORT
join request: slow from 127.0.0.1:PORT (approve slow / deny slow)
join request of slow timed out: denied
stopping the server (by stdin)
shutting down
EOF
