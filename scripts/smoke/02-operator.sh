#!/usr/bin/env bash
# Smoke test: the operator console.
# who, pending (empty and with two joins), bare deny (the oldest waiting), approve/deny/kick of
# nobody, unknown command, kick (the kicked member gets BYE and is closed, the others see LEAVE
# ... kicked), say (INFO to every member), and quit: every connection, whether a member, a join
# still waiting, or one that never gave a name, gets BYE and is closed, and the server exits 0.
# Usage: bash scripts/smoke/02-operator.sh [DIR-HOLDING-chat-server]   (default target/debug)
set -euo pipefail
# shellcheck source=lib.bash source-path=SCRIPTDIR
source "$(dirname "$0")/lib.bash"
smoke_init "$@"
server_start

NAMEQ="NAME? choose a name: 1-32 of A-Z a-z 0-9 _ -"

# join NAME: NAME connects and asks to join; the console announces it.
join() {
    client_start "$1"
    send "$1" "$1"
    wait_client "$1" "WAIT waiting for the operator to approve $1"
    wait_console "join request: $1 from 127.0.0.1:PORT (approve $1 / deny $1)"
}

say "alice and bob are admitted; the console lists them"
join alice
console "approve alice"
wait_client alice "WELCOME alice 1"
join bob
console "approve bob"
wait_client bob "WELCOME bob 2"
wait_client alice "JOIN bob"
console "who"
wait_console "  bob from 127.0.0.1:PORT (tcp), T in the room"

say "nobody is waiting: pending is empty and a bare deny has nobody to refuse"
console "pending"
wait_console "pending: 0 waiting"
console "deny"
wait_console "error: nobody is waiting"

say "carol and dave wait; pending lists both, oldest first; a bare deny refuses carol"
join carol
join dave
console "pending"
wait_console "  dave from 127.0.0.1:PORT, waiting Ns"
console "deny"
wait_console "denied carol (by stdin)"
wait_client carol "DENIED the operator refused you"
expect_closed carol

say "approving nobody, then dave by name"
console "approve nobody"
wait_console "error: nobody named nobody is waiting"
console "approve dave"
wait_console "approved dave (by stdin; 3 online)"
wait_client dave "WELCOME dave 3"
wait_client alice "JOIN dave"
wait_client bob "JOIN dave"

say "kick bob: he gets BYE and is closed, the others see him kicked; kicking him again fails"
console "kick bob"
wait_console "kicked bob (by stdin)"
wait_client bob "BYE kicked by the operator"
expect_closed bob
wait_client alice "LEAVE bob kicked"
wait_client dave "LEAVE bob kicked"
console "kick bob"
wait_console "error: no member named bob"

say "say: every member gets the operator's notice"
console "say hello from the **operator**"
wait_console "said to 2 members (by stdin)"
wait_client alice "INFO operator: hello from the **operator**"
wait_client dave "INFO operator: hello from the **operator**"

say "an unknown console command"
console "frobnicate now"
wait_console 'error: unknown command "frobnicate"; type help'

say "eve connects and gives no name, frank waits for approval; then the operator quits"
client_start eve
join frank
console "quit"
for who in alice dave eve frank; do
    wait_client "$who" "BYE server shutting down"
    expect_closed "$who"
done
server_exit_is 0

expect_transcript alice <<EOF
$NAMEQ
WAIT waiting for the operator to approve alice
WELCOME alice 1
JOIN bob
JOIN dave
LEAVE bob kicked
INFO operator: hello from the **operator**
BYE server shutting down
EOF

expect_transcript bob <<EOF
$NAMEQ
WAIT waiting for the operator to approve bob
WELCOME bob 2
JOIN dave
BYE kicked by the operator
EOF

expect_transcript carol <<EOF
$NAMEQ
WAIT waiting for the operator to approve carol
DENIED the operator refused you
EOF

expect_transcript dave <<EOF
$NAMEQ
WAIT waiting for the operator to approve dave
WELCOME dave 3
LEAVE bob kicked
INFO operator: hello from the **operator**
BYE server shutting down
EOF

expect_transcript eve <<EOF
$NAMEQ
BYE server shutting down
EOF

expect_transcript frank <<EOF
$NAMEQ
WAIT waiting for the operator to approve frank
BYE server shutting down
EOF

# `left bob (kicked)` is the departure announcement, `kicked bob` the reply to the command; the
# brief fixes both lines but not their order, and the server prints the announcement first.
# `shutting down` is what the server prints when it begins to quit.
expect_transcript server <<'EOF'
listening on 127.0.0.1:PORT
join request: alice from 127.0.0.1:PORT (approve alice / deny alice)
approved alice (by stdin; 1 online)
join request: bob from 127.0.0.1:PORT (approve bob / deny bob)
approved bob (by stdin; 2 online)
online: 2
  alice from 127.0.0.1:PORT (tcp), T in the room
  bob from 127.0.0.1:PORT (tcp), T in the room
pending: 0 waiting
error: nobody is waiting
join request: carol from 127.0.0.1:PORT (approve carol / deny carol)
join request: dave from 127.0.0.1:PORT (approve dave / deny dave)
pending: 2 waiting
  carol from 127.0.0.1:PORT, waiting Ns
  dave from 127.0.0.1:PORT, waiting Ns
denied carol (by stdin)
error: nobody named nobody is waiting
approved dave (by stdin; 3 online)
left bob (kicked)
kicked bob (by stdin)
error: no member named bob
said to 2 members (by stdin)
error: unknown command "frobnicate"; type help
join request: frank from 127.0.0.1:PORT (approve frank / deny frank)
stopping the server (by stdin)
shutting down
EOF
