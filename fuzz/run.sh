#!/usr/bin/env bash
# Builds the fuzz targets once and runs each in turn (README.md here).
#
#   fuzz/run.sh short            every target 15 s on its seed corpus (.ci/run)
#   fuzz/run.sh long [notes.md]  every target until 10 M executions or 30 min,
#                                one process each, one after the other, at
#                                nice 10; a line per target is appended to
#                                notes.md as it finishes
#   TARGETS="ics template" fuzz/run.sh long    only these targets
#
# New inputs libFuzzer finds go to a work corpus outside the checkout
# ($FUZZ_WORK, default /tmp/hearth-fuzz; the committed seeds in
# fuzz/corpus/<target> are read, never written), crash artifacts to
# $FUZZ_WORK/artifacts/<target>/. Exits non-zero if a target crashed.
set -euo pipefail
cd "$(dirname "$0")"

mode=${1:-short}
notes=${2:-}
work=${FUZZ_WORK:-/tmp/hearth-fuzz}
case "$mode" in
  short) flags=(-max_total_time=15) ;;
  long) flags=(-runs=10000000 -max_total_time=1800) ;;
  *) echo "usage: $0 short|long [notes.md]" >&2; exit 2 ;;
esac
# -timeout: an input running 10 s is a hang (a recurrence rule, a
# template), reported as a crash.
flags+=(-timeout=10 -print_final_stats=1)

# Release with debug assertions and AddressSanitizer (cargo fuzz's
# default), built once for every target; see README.md for -O vs --dev.
cargo +nightly fuzz build -O
targets=${TARGETS:-$(cargo +nightly fuzz list)}

# As `cargo fuzz run` does: ASan's one-definition-rule check trips on
# SQLite's amalgamation (a static table, `aiOff`, seen twice), not a bug in
# the code under test.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_odr_violation=0}

failed=0
for t in $targets; do
  mkdir -p "$work/corpus/$t" "$work/artifacts/$t"
  log="$work/$t.log"
  start=$(date +%s)
  status=0
  # shellcheck disable=SC2086
  # The binary built above, not `cargo fuzz run`: that would rebuild
  # `hearth` whenever a source changed meanwhile (a shared checkout).
  nice -n 10 "target/x86_64-unknown-linux-gnu/release/$t" "$work/corpus/$t" "corpus/$t" \
    "${flags[@]}" -artifact_prefix="$work/artifacts/$t/" >"$log" 2>&1 || status=$?
  secs=$(( $(date +%s) - start ))
  # libFuzzer's last status line: `#N DONE cov: C ft: F corp: …`.
  last=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
  runs=$(grep -oE 'stat::number_of_executed_units: [0-9]+' "$log" | grep -oE '[0-9]+$' || true)
  cov=$(sed -nE 's/.* cov: ([0-9]+).*/\1/p' <<<"$last")
  ft=$(sed -nE 's/.* ft: ([0-9]+).*/\1/p' <<<"$last")
  corp=$(sed -nE 's/.* corp: ([0-9]+\/[^ ]+).*/\1/p' <<<"$last")
  crashes=$(find "$work/artifacts/$t" -type f | wc -l)
  line="| $t | ${runs:-?} | ${cov:-?} | ${ft:-?} | ${corp:-?} | ${secs} s | $crashes | exit $status |"
  echo "$line"
  if [ -n "$notes" ]; then echo "$line" >>"$notes"; fi
  if [ "$status" -ne 0 ] || [ "$crashes" -ne 0 ]; then
    failed=1
    grep -E 'ERROR: |panicked at|SUMMARY' "$log" | head -5 >&2 || true
    echo "fuzz target $t failed: see $log and $work/artifacts/$t/" >&2
  fi
done
exit "$failed"
