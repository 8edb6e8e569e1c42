#!/usr/bin/env bash
# Smoke test: a chat as a person would have it with netcat.
# The operator approves alice, bob (with a bare `approve`: the oldest waiting) and carol and
# denies mallory; the members exchange room, colored, escaped (//) and private messages; bob asks
# /who; carol leaves with /leave, bob's netcat dies (LEAVE ... quit); the operator quits.
# At the end every transcript, and the operator console, must be exactly as expected: this also
# proves that nobody got their own MSG and that the private messages reached bob alone.
# Usage: bash scripts/smoke/01-chat.sh [DIR-HOLDING-chat-server]   (default target/debug)
set -euo pipefail
# shellcheck source=lib.bash source-path=SCRIPTDIR
source "$(dirname "$0")/lib.bash"
smoke_init "$@"
server_start

NAMEQ="NAME? choose a name: 1-32 of A-Z a-z 0-9 _ -"

say "alice joins and the operator approves her by name"
client_start alice
send alice "alice"
wait_client alice "WAIT waiting for the operator to approve alice"
wait_console "join request: alice from 127.0.0.1:PORT (approve alice / deny alice)"
console "approve alice"
wait_console "approved alice (by stdin; 1 online)"
wait_client alice "WELCOME alice 1"

say "bob joins; a bare 'approve' admits the oldest waiting join"
client_start bob
send bob "bob"
wait_console "join request: bob from 127.0.0.1:PORT (approve bob / deny bob)"
console "approve"
wait_console "approved bob (by stdin; 2 online)"
wait_client bob "WELCOME bob 2"
wait_client alice "JOIN bob"

say "mallory asks to join and is denied; the server closes her connection"
client_start mallory
send mallory "mallory"
wait_client mallory "WAIT waiting for the operator to approve mallory"
wait_console "join request: mallory from 127.0.0.1:PORT (approve mallory / deny mallory)"
console "deny mallory"
wait_console "denied mallory (by stdin)"
wait_client mallory "DENIED the operator refused you"
expect_closed mallory

say "carol joins"
client_start carol
send carol "carol"
wait_console "join request: carol from 127.0.0.1:PORT (approve carol / deny carol)"
console "approve carol"
wait_console "approved carol (by stdin; 3 online)"
wait_client carol "WELCOME carol 3"
wait_client alice "JOIN carol"
wait_client bob "JOIN carol"

# Each message is awaited at every recipient before the next is sent, so the order of lines in
# every transcript is fixed and the final comparison can be exact.
say "room messages: plain with markup, colored, colored with an upper-case command and color"
send alice "hello **everyone**"
wait_client bob "MSG alice - hello **everyone**"
wait_client carol "MSG alice - hello **everyone**"
send bob "/color red I am __red__"
wait_client alice "MSG bob red I am __red__"
wait_client carol "MSG bob red I am __red__"
send carol "/COLOR Blue ~~shouting~~ quietly"
wait_client alice "MSG carol blue ~~shouting~~ quietly"
wait_client bob "MSG carol blue ~~shouting~~ quietly"

say "private messages from alice to bob, plain and colored"
send alice "/private bob psst, only for you"
wait_client bob "PRIV alice bob - psst, only for you"
send alice "/private BOB /color green **secret** in green"
wait_client bob "PRIV alice bob green **secret** in green"
# alice's next room message reaches carol only after the server handled both private ones (one
# connection's lines are handled in order), so had carol been sent one, it would be in her
# transcript before this line; the exact comparison at the end proves it is not.
send alice $'//slash at the start, and a tab:\there'
wait_client bob "MSG alice - /slash at the start, and a tab: here"
wait_client carol "MSG alice - /slash at the start, and a tab: here"

say "bob asks who is online"
# They joined in alphabetical order, so this line holds whether /who lists by join or by name.
send bob "/who"
wait_client bob "INFO online (3): alice, bob, carol"

say "carol leaves with /leave"
send carol "/leave"
wait_client carol "BYE goodbye"
expect_closed carol
wait_client alice "LEAVE carol left"
wait_client bob "LEAVE carol left"
wait_console "left carol (left)"

say "bob's netcat dies: the others see him quit"
client_kill bob
wait_client alice "LEAVE bob quit"
wait_console "left bob (quit)"
send alice "/who"
wait_client alice "INFO online (1): alice"

say "the operator quits: alice gets BYE, the server exits 0"
console "quit"
wait_client alice "BYE server shutting down"
expect_closed alice
server_exit_is 0

expect_transcript alice <<EOF
$NAMEQ
WAIT waiting for the operator to approve alice
WELCOME alice 1
JOIN bob
JOIN carol
MSG bob red I am __red__
MSG carol blue ~~shouting~~ quietly
LEAVE carol left
LEAVE bob quit
INFO online (1): alice
BYE server shutting down
EOF

expect_transcript bob <<EOF
$NAMEQ
WAIT waiting for the operator to approve bob
WELCOME bob 2
JOIN carol
MSG alice - hello **everyone**
MSG carol blue ~~shouting~~ quietly
PRIV alice bob - psst, only for you
PRIV alice bob green **secret** in green
MSG alice - /slash at the start, and a tab: here
INFO online (3): alice, bob, carol
LEAVE carol left
EOF

expect_transcript carol <<EOF
$NAMEQ
WAIT waiting for the operator to approve carol
WELCOME carol 3
MSG alice - hello **everyone**
MSG bob red I am __red__
MSG alice - /slash at the start, and a tab: here
BYE goodbye
EOF

expect_transcript mallory <<EOF
$NAMEQ
WAIT waiting for the operator to approve mallory
DENIED the operator refused you
EOF

# `shutting down` is what the server prints when it begins to quit.
expect_transcript server <<'EOF'
listening on 127.0.0.1:PORT
join request: alice from 127.0.0.1:PORT (approve alice / deny alice)
approved alice (by stdin; 1 online)
join request: bob from 127.0.0.1:PORT (approve bob / deny bob)
approved bob (by stdin; 2 online)
join request: mallory from 127.0.0.1:PORT (approve mallory / deny mallory)
denied mallory (by stdin)
join request: carol from 127.0.0.1:PORT (approve carol / deny carol)
approved carol (by stdin; 3 online)
left carol (left)
left bob (quit)
stopping the server (by stdin)
shutting down
EOF
