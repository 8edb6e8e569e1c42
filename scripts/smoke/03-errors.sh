#!/usr/bin/env bash
# Smoke test: what a person gets wrong, and what the server refuses or cleans.
# Names: bad, taken (case-insensitively, by a member and by a join still waiting), an empty line
# (ignored). While waiting: any line is ERROR not-admitted. As a member: unknown command, bad color,
# no such user, usage, over-long lines with --max-line 64 (64 bytes pass, 65 and 200 are refused
# whole and the connection stays), invalid UTF-8, control and bidi characters removed, a line of
# only control characters ignored, CRLF. Every error goes to the sender alone: bob's transcript
# holds only the lines that were meant for him. Then the console reaches end of file: a new join
# is DENIED at once. SIGTERM ends the server like quit (BYE to all, exit 0).
# Usage: bash scripts/smoke/03-errors.sh [DIR-HOLDING-chat-server]   (default target/debug)
set -euo pipefail
# shellcheck source=lib.bash source-path=SCRIPTDIR
source "$(dirname "$0")/lib.bash"
smoke_init "$@"
server_start --max-line 64

NAMEQ="NAME? choose a name: 1-32 of A-Z a-z 0-9 _ -"

say "alice offers a bad name, an empty line, then a good one"
client_start alice
send alice "bad name!"
wait_client alice "ERROR bad-name"
wait_client alice "$NAMEQ" 2
send alice ""
send alice "alice"
wait_client alice "WAIT waiting for the operator to approve alice"
wait_console "join request: alice from 127.0.0.1:PORT (approve alice / deny alice)"

say "alice talks before she is admitted"
send alice "hello? anyone?"
wait_client alice "ERROR not-admitted"
console "approve alice"
wait_client alice "WELCOME alice 1"

say "names are unique without regard to case, among members and joins still waiting"
client_start bob
send bob "ALICE"
wait_client bob "ERROR name-taken"
wait_client bob "$NAMEQ" 2
send bob "bob"
wait_console "join request: bob from 127.0.0.1:PORT (approve bob / deny bob)"
client_start carol
send carol "carol"
wait_console "join request: carol from 127.0.0.1:PORT (approve carol / deny carol)"
client_start dave
send dave "Carol"
wait_client dave "ERROR name-taken"
wait_client dave "$NAMEQ" 2
console "approve bob"
wait_client bob "WELCOME bob 2"
wait_client alice "JOIN bob"
console "deny carol"
wait_client carol "DENIED the operator refused you"
expect_closed carol
# dave goes away without a name: nobody is told.
client_kill dave

say "alice's bad requests each get one ERROR, to her alone"
send alice "/frob"
wait_client alice "ERROR unknown-command"
send alice "/color purple hi"
wait_client alice "ERROR bad-color"
send alice "/private nobody hi"
wait_client alice "ERROR no-such-user"
send alice "/private bob"
wait_client alice "ERROR usage"
send alice "/who is there"
wait_client alice "ERROR usage" 2

say "line length: 64 bytes pass, 65 and 200 are refused whole, the connection stays"
line64=$(printf 'L%.0s' {1..63})X
line65=$(printf 'M%.0s' {1..64})X
line200=$(printf 'N%.0s' {1..199})X
[ "${#line64}" -eq 64 ] && [ "${#line65}" -eq 65 ] && [ "${#line200}" -eq 200 ]
send alice "$line64"
wait_client bob "MSG alice - $line64"
send alice "$line65"
wait_client alice "ERROR line-too-long"
send alice "$line200"
wait_client alice "ERROR line-too-long" 2
send alice "still here"
wait_client bob "MSG alice - still here"

say "invalid UTF-8 is refused; control and bidi characters are removed; CRLF works"
send_raw alice 'caf\xe9\n'
wait_client alice "ERROR bad-utf8"
# BEL, ESC (of a color sequence), DEL and U+202E (right-to-left override) vanish.
send_raw alice 'a\x07b\x1b[31mc\x7fd\xe2\x80\xaee\n'
wait_client bob "MSG alice - ab[31mcde"
# A line that is empty once cleaned is ignored silently; the next line shows it was handled.
send_raw alice '\x01\x02\x1b\n'
send_raw alice 'crlf line\r\n'
wait_client bob "MSG alice - crlf line"

say "the console reaches end of file: a new join is denied at once"
console_close
wait_console "console closed"
client_start erin
send erin "erin"
wait_client erin "DENIED no operator is present to approve joins"
expect_closed erin

say "SIGTERM acts like quit"
server_signal TERM
for who in alice bob; do
    wait_client "$who" "BYE server shutting down"
    expect_closed "$who"
done
server_exit_is 0

expect_transcript alice <<EOF
$NAMEQ
ERROR bad-name
$NAMEQ
WAIT waiting for the operator to approve alice
ERROR not-admitted
WELCOME alice 1
JOIN bob
ERROR unknown-command
ERROR bad-color
ERROR no-such-user
ERROR usage
ERROR usage
ERROR line-too-long
ERROR line-too-long
ERROR bad-utf8
BYE server shutting down
EOF

expect_transcript bob <<EOF
$NAMEQ
ERROR name-taken
$NAMEQ
WAIT waiting for the operator to approve bob
WELCOME bob 2
MSG alice - $line64
MSG alice - still here
MSG alice - ab[31mcde
MSG alice - crlf line
BYE server shutting down
EOF

expect_transcript carol <<EOF
$NAMEQ
WAIT waiting for the operator to approve carol
DENIED the operator refused you
EOF

expect_transcript dave <<EOF
$NAMEQ
ERROR name-taken
$NAMEQ
EOF

expect_transcript erin <<EOF
$NAMEQ
DENIED no operator is present to approve joins
EOF

expect_transcript server <<'EOF'
listening on 127.0.0.1:PORT
join request: alice from 127.0.0.1:PORT (approve alice / deny alice)
approved alice (by stdin; 1 online)
join request: bob from 127.0.0.1:PORT (approve bob / deny bob)
join request: carol from 127.0.0.1:PORT (approve carol / deny carol)
approved bob (by stdin; 2 online)
denied carol (by stdin)
console closed
shutting down
EOF
