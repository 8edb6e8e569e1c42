#!/usr/bin/env bash
# Runs every test of the project: formatting, lints, unit and integration tests, then the
# netcat smoke tests against the real binaries, then a short run of every fuzz target
# (FUZZ_SECONDS each, default 5; 0 skips it). Installs what it needs when it is missing.
# Usage: scripts/test.sh        (from anywhere; exits non-zero when any part fails)
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

need_pkg() { # need_pkg COMMAND DEBIAN-PACKAGE
    command -v "$1" >/dev/null 2>&1 && return 0
    step "installing $2 (for $1)"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$2" >/dev/null
}
need_deb() { # need_deb DEBIAN-PACKAGE: for a package with no command of its own (a plugin)
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'ok installed' && return 0
    step "installing $1"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$1" >/dev/null
}

need_pkg nc netcat-openbsd
need_pkg redis-server redis-server # server/tests/cluster.rs starts its own
need_pkg openssl openssl           # server/tests/tls.rs: `openssl s_client` as a raw member
need_pkg tmux tmux                 # server/tests/irc_clients.rs drives real IRC clients in tmux
need_pkg irssi irssi               # ... irssi
need_pkg weechat weechat-curses    # ... and weechat
need_pkg hexchat hexchat           # server/tests/irc_hexchat.rs drives HexChat ...
need_deb hexchat-python3           # ... through a Python plugin of ours
need_pkg Xvfb xvfb                 # ... on a virtual display
need_pkg setpriv util-linux        # ... as nobody when run as root (HexChat stops to warn root)
need_pkg systemd-analyze systemd   # server/tests/deploy_unit.rs: verify and rate the unit
need_pkg node nodejs               # server/tests/web_markup.rs: the page's markup parser
need_pkg prlimit util-linux        # server/tests/hostile_v3.rs and limits.rs: file and descriptor limits
need_pkg unshare util-linux        # server/tests/store_disk_faults.rs: a small tmpfs in a mount namespace
need_pkg mount mount               # ... mounted there
need_pkg chromium chromium         # server/tests/web_browser.rs: a real browser ...
need_pkg chromedriver chromium-driver # ... driven by Selenium
need_pip() { # need_pip MODULE PIP-PACKAGE
    python3 -c "import $1" >/dev/null 2>&1 && return 0
    step "installing $2 (python)"
    python3 -m pip install -q "$2" 2>/dev/null || python3 -m pip install -q --break-system-packages "$2"
}
need_pkg python3 python3
command -v pip3 >/dev/null 2>&1 || python3 -m pip --version >/dev/null 2>&1 || need_pkg pip3 python3-pip
need_pip selenium selenium                    # server/tests/web_browser.rs
need_pip prometheus_client prometheus-client  # server/tests/web.rs: /metrics read by Prometheus's parser

# The heavy tests (ten thousand members, accept storms) need tens of thousands of descriptors
# and fail, rather than skip, without them (testkit/src/limits.rs): raise the soft limit as far
# as the hard limit allows, and the hard limit first where we may (root).
ulimit -Hn 65536 2>/dev/null || true
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" || true
echo "open-file limit: $(ulimit -n) (hard $(ulimit -Hn))"

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings

step "cargo doc (every link in the documentation comments resolves)"
RUSTDOCFLAGS="-D warnings" cargo doc --quiet --no-deps --workspace --document-private-items

step "cargo build (the smoke tests and the client's tests drive the real binaries)"
cargo build --workspace --bins

step "cargo test"
cargo test --workspace

shopt -s nullglob
smokes=(scripts/smoke/*.sh)
if [ ${#smokes[@]} -eq 0 ]; then
    echo "no smoke tests found in scripts/smoke/" >&2
    exit 1
fi
for s in "${smokes[@]}"; do
    step "smoke: $s"
    bash "$s" target/debug
done

# A short coverage-guided run of every fuzz target (scripts/fuzz.sh; longer runs: see
# docs/RELIABILITY.md). FUZZ_SECONDS=0 skips it.
if [ "${FUZZ_SECONDS:-5}" -gt 0 ]; then
    step "fuzz: ${FUZZ_SECONDS:-5} s per target"
    (cd fuzz && cargo fmt --check)
    scripts/fuzz.sh "${FUZZ_SECONDS:-5}"
fi

step "all tests passed"
