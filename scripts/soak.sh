#!/usr/bin/env bash
# Runs the long-run test (server/tests/soak.rs) in release mode for SECS seconds (default 600):
# hundreds of members chatting on one chat-server while others join, leave, stall and are
# dropped, with the server's RSS and descriptor count sampled every second. Fails if any
# healthy member loses a message, if RSS is not flat after warm-up, or if descriptors do not
# come back to their baseline. The last lines printed are the samples and a one-line summary
# (copy it into docs/RELIABILITY.md with the command).
#
#   scripts/soak.sh [SECS]
#
# Knobs (environment, passed through): SOAK_SENDERS (20), SOAK_READERS (180), SOAK_RATE
# (messages per second per sender, 10), SOAK_SEED (replays the churn of a failed run).
set -euo pipefail

secs=${1:-600}
if ! [[ $secs =~ ^[0-9]+$ ]] || ((secs < 5)); then
    echo "usage: scripts/soak.sh [SECS]   (SECS >= 5)" >&2
    exit 2
fi
cd "$(dirname "$0")/.."
SOAK_SECS=$secs exec cargo test --release -p chat-server --test soak -- --nocapture
