#!/usr/bin/env bash
# `make fuzz`: every afl++ target for FUZZ_SECONDS each (default 300), one
# after the other, then a table of executions and crashes. Never run by CI.
#
#   FUZZ_SECONDS=60 make fuzz            # a quick pass
#   FUZZ_TARGETS="applink sdp" make fuzz # some targets only
#
# Two runs with different FUZZ_TARGETS may go side by side, one per core.
#
# Crashes are copied to fuzz/crashes/<target>/ for triage; each one fixed is
# kept as a regression test beside the code it broke.
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_EACH="${FUZZ_SECONDS:-300}"
TARGETS="${FUZZ_TARGETS:-applink partner_reply client_message effect_manifest skyway_batch imageflux_fields sdp h264_assembler apng face_filter_manifest}"
CACHE="${NEXMILE_CACHE:-$HOME/.cache/nexmile}"
export CARGO_TARGET_DIR="$CACHE/fuzz-target"
OUT="$CACHE/fuzz-out"

# afl++ from Debian gives afl-fuzz's companions (afl-tmin, afl-cmin,
# afl-whatsup); cargo-afl builds the targets with the matching runtime.
if ! dpkg-query -W -f='${Status}' afl++ 2>/dev/null | grep -q "install ok installed"; then
  SUDO=""; if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends afl++
fi
if ! cargo afl --version >/dev/null 2>&1; then
  cargo install --locked cargo-afl
fi
# The AFL++ runtime cargo-afl links into each target, built once per version.
if ! cargo afl config --help >/dev/null 2>&1 || ! ls "${XDG_DATA_HOME:-$HOME/.local/share}"/afl.rs/rustc-*/afl.rs-*/afl/bin/afl-fuzz >/dev/null 2>&1; then
  cargo afl config --build
fi

(cd fuzz && cargo afl build --release)

# No CPU frequency scaling or core dumps to configure on a CI-like machine:
# the fuzzer is told to go on without them.
export AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_UI=1 AFL_NO_AFFINITY=1

mkdir -p "$OUT"
for target in $TARGETS; do
  rm -rf "$OUT/$target"
  mkdir -p "$OUT/$target"
  echo "fuzz: $target for ${SECONDS_EACH}s"
  cargo afl fuzz -V "$SECONDS_EACH" -i "fuzz/seeds/$target" -o "$OUT/$target" \
    "$CARGO_TARGET_DIR/release/$target" > "$OUT/$target.log" 2>&1 || {
    echo "fuzz: $target did not run, see $OUT/$target.log" >&2
    tail -20 "$OUT/$target.log" >&2
    continue
  }
  stats="$OUT/$target/default/fuzzer_stats"
  field() { awk -F' *: *' -v k="$1" '$1 == k { print $2 }' "$stats"; }
  printf '%-22s %12s %10s %8s %8s\n' "$target" "$(field execs_done)" "$(field execs_per_sec)" \
    "$(field saved_crashes)" "$(field saved_hangs)" | tee "$OUT/$target.row"
  if ls "$OUT/$target/default/crashes"/id:* >/dev/null 2>&1; then
    mkdir -p "fuzz/crashes/$target"
    cp "$OUT/$target/default/crashes"/id:* "fuzz/crashes/$target/"
  fi
done
echo
printf '%-22s %12s %10s %8s %8s\n' target executions exec/s crashes hangs
for target in $TARGETS; do cat "$OUT/$target.row" 2>/dev/null || true; done
