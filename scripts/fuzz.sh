#!/usr/bin/env bash
# Runs every coverage-guided fuzz target in fuzz/ for SECONDS_PER_TARGET seconds (default 10)
# with cargo-fuzz (libFuzzer), installing cargo-fuzz first when it is missing. Exits non-zero if
# any target crashes (a panic, a failed property assertion, a timeout or memory blow-up) or fails
# to build; crashers are kept in fuzz/artifacts/<target>/.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]     (default: all targets, 10 s each)
#
# Stable Rust only: `-s none` (no sanitizer) needs no -Z flag, so no nightly and no
# RUSTC_BOOTSTRAP. The code under test forbids `unsafe`, so AddressSanitizer would find nothing
# that a panic does not, at several times the cost.
#
# Corpora: fuzz/corpus/<target>/ is the committed seed corpus and is only read. What the fuzzer
# learns goes to fuzz/target/corpus/<target>/ (not committed; it persists between local runs).
# libFuzzer runs every seed before fuzzing, so a seed that crashes fails the run at once.
#
# Crasher -> regression test, the convention:
#  1. A crash leaves fuzz/artifacts/<target>/crash-<sha1> (not committed) and the run fails.
#  2. Reproduce: (cd fuzz && cargo fuzz run -s none <target> artifacts/<target>/crash-<sha1>);
#     shrink:    (cd fuzz && cargo fuzz tmin -s none <target> artifacts/<target>/crash-<sha1>).
#  3. Copy the minimized input to fuzz/corpus/<target>/regress-<what-broke> and commit it, so
#     every later fuzz run replays it first.
#  4. Add a unit test beside the code that broke (common/src/<module>.rs), named after what
#     broke, holding the input as a byte-string literal; it must fail before the fix.
#  5. Fix the code, not the target's property, unless the property itself was wrong (then say
#     why in the target's header).
set -euo pipefail

seconds=${1:-10}
if ! [[ $seconds =~ ^[0-9]+$ ]] || ((seconds < 1)); then
    echo "usage: $0 [SECONDS_PER_TARGET] [TARGET...]" >&2
    exit 2
fi
shift $(($# > 0 ? 1 : 0))

cd "$(dirname "$0")/../fuzz"
start=$SECONDS

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz (cargo install --locked cargo-fuzz)"
    t0=$SECONDS
    cargo install --locked cargo-fuzz
    echo "== installed cargo-fuzz in $((SECONDS - t0)) s"
fi

if (($# > 0)); then
    targets=("$@")
else
    mapfile -t targets < <(cargo fuzz list)
fi

echo "== building ${#targets[@]} targets"
cargo fuzz build -s none

mkdir -p target/logs
failed=()
for target in "${targets[@]}"; do
    work=target/corpus/$target
    mkdir -p "$work" "corpus/$target" "artifacts/$target"
    log=target/logs/$target.log
    before=$(find "artifacts/$target" -type f | sort)
    echo "== $target: ${seconds} s"
    # The first corpus directory is where libFuzzer writes new inputs; the seeds are read only.
    # -max_len: the protocol's longest line (4096 bytes) plus the framer target's 2 header bytes.
    # -timeout: any single input taking 10 s is a hang, and a crash.
    status=0
    cargo fuzz run -s none "$target" "$work" "corpus/$target" -- \
        -max_total_time="$seconds" -max_len=4098 -timeout=10 -print_final_stats=1 \
        >"$log" 2>&1 || status=$?
    # The last status line says how far it got: "#N DONE cov: C ft: F corp: K/S ...".
    summary=$(grep -E '^#[0-9]+[[:space:]]+(DONE|pulse|NEW|REDUCE|INITED)' "$log" | tail -n 1 |
        sed -E 's/[[:space:]]+/ /g; s/ (lim|exec\/s):.*//' || true)
    rate=$(grep -E '^stat::average_exec_per_sec' "$log" | awk '{print $2}' || true)
    echo "   ${summary:-no status line} | ${rate:-?} exec/s"
    new=$(comm -13 <(echo "$before") <(find "artifacts/$target" -type f | sort))
    if ((status != 0)) || [[ -n $new ]]; then
        failed+=("$target")
        echo "   FAILED (exit $status); log: fuzz/$log" >&2
        grep -E -A 3 "panicked at|ERROR: libFuzzer|SUMMARY" "$log" | head -n 20 >&2 || true
        [[ -z $new ]] || sed 's/^/   crasher: fuzz\//' <<<"$new" >&2
    fi
done

echo "== fuzzed ${#targets[@]} targets in $((SECONDS - start)) s"
if ((${#failed[@]} > 0)); then
    echo "== FAILED: ${failed[*]} (crashers in fuzz/artifacts/; see the top of $0)" >&2
    exit 1
fi
