#!/usr/bin/env bash
# The sound benchmark (docs/benchmarks.md): two apps in a call through the
# server on real (virtual) PulseAudio devices, and Debian's Chromium running
# the web version as the anchor, on a clean network and on an impaired one.
# Never part of `make test`.
#
#   scripts/bench-sound.sh
#
# Chromium runs on the clean network only: the impairment is laid on by the
# apps (this kernel has no netem), and Chromium's receiving side is not ours.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh >/dev/null
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/nexmile/target}
OUT=$CARGO_TARGET_DIR/bench-sound
mkdir -p "$OUT"

# Scoring and speech: PyPI's pesq (ITU-T P.862.2) and pyopenjtalk-plus.
VENV=$HOME/.cache/nexmile/bench-venv
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/pip" install -q pyopenjtalk-plus pesq numpy scipy 2>/dev/null
"$VENV/bin/python" scripts/bench/speech.py "$OUT/a.raw" "$OUT/b.raw" 2>/dev/null

# The dev profile: dependencies (Opus, the APM, crypto) are built at
# opt-level 2 there, and a release build of the whole server takes long.
BENCH=$(cargo bench --workspace --bench sound --profile dev --no-run 2>&1 \
  | grep -o '(/[^)]*/sound-[0-9a-f]*)' | tr -d '()' | tail -1)

# Impairment: 5 % random loss and 30 ms of jitter on the sound each app
# receives, laid on by the app before its jitter buffer
# (NEXMILE_IMPAIR_RECEIVED_AUDIO): this machine kind's kernel has no
# sch_netem for `tc netem`.
run() { # network receiver
  local dir="$OUT/$1-$2" impair=""
  [ "$1" = impaired ] && impair="5,30"
  NEXMILE_IMPAIR_RECEIVED_AUDIO=$impair "$BENCH" "$OUT/a.raw" "$OUT/b.raw" "$dir" "$2" 2>"$dir.log" \
    || { tail -20 "$dir.log"; exit 1; }
  echo "$1 $2 $("$VENV/bin/python" scripts/bench/sound_score.py "$dir")"
}
echo "$(date -u +%F) $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores"
run clean app
run clean chromium
run impaired app
