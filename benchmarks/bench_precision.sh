#!/usr/bin/env bash
# Issue 16's CPU measurements, one after another on a quiet machine (about 40 minutes on 2 cores):
#   1. `facevae speed` for both presets: every precision and layout, the rule's pick marked, the fp32 ceiling;
#   2. `facevae demo` (README command 1) with the code from before the rule (OLD, a worktree) and with this code:
#      steps trained in its 3 minutes;
#   3. `benchmarks/bench_train.py --which 1,2 --presets default`: the loop's speed against the classic pipeline, and
#      the 10-minute comparison of `default` with the classic recipe on the CelebA sample.
# Usage: git worktree add /tmp/old bafb084 && OLD=/tmp/old bash benchmarks/bench_precision.sh > bench16.txt 2>&1
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=${OUT:-runs/bench16}; mkdir -p "$OUT"
echo "== machine ($(date -u +%F' '%H:%M) UTC)"
lscpu | grep -E '^(Model name|CPU\(s\)|Flags)' | sed -E 's/^Flags:\s+/Flags: /'
python -c "from facevae_nb.speed import machine_line; print(machine_line())"
echo; echo "== 1. facevae speed"
facevae speed --preset seed
facevae speed --preset default
steps() { python -c "import json,sys; r=[json.loads(l) for l in open(sys.argv[1]+'/metrics.jsonl') if l.strip()][-1]; print(r['step'], 'steps,', r['epoch'], 'epochs, val PSNR', round(r.get('val_psnr', float('nan')), 2))" "$1"; }
echo; echo "== 2. facevae demo, 3 minutes"
if [ -n "${OLD:-}" ]; then
  rm -rf "$OUT/demo-old"; s=$SECONDS
  # run from inside OLD: `python -m` puts the current folder first on the path, so from here it would import this code
  (cd "$OLD" && PYTHONPATH="$OLD" python -m facevae_nb.cli demo --out "$ROOT/$OUT/demo-old" --quiet | tail -n 3)
  (cd "$OLD" && PYTHONPATH="$OLD" python -c "import facevae_nb.core as c; print('old code:', c.__file__)")
  echo "before the rule ($(git -C "$OLD" rev-parse --short HEAD)): $(steps "$OUT/demo-old"), $((SECONDS - s)) s in all"
fi
rm -rf "$OUT/demo-new"; s=$SECONDS
facevae demo --out "$OUT/demo-new" --quiet | tail -n 3
echo "with the rule ($(git rev-parse --short HEAD)): $(steps "$OUT/demo-new"), $((SECONDS - s)) s in all"
echo; echo "== 3. training benchmarks"
python benchmarks/bench_train.py --which 1,2 --presets default --out "$OUT"
