#!/usr/bin/env bash
# The offline demo in one command, on a fresh clone:
#   bash tools/demo.sh            # MSL
#   bash tools/demo.sh baseline   # the plain classifier, for comparison
# Sets up .venv (unless one is active), trains on overlapping handwritten
# digits (generated from scikit-learn's digits; no download), then prints
# mAP on clean test images and on test images with 50-60% removed by fixed
# held-out masks.
set -euo pipefail
cd "$(dirname "$0")/.."
KIND=${1:-msl}
if [ -z "${VIRTUAL_ENV:-}" ]; then
  if [ ! -f .venv/.complete ]; then
    python3 -m venv .venv
    .venv/bin/python -m pip install -q "setuptools<80" wheel
    .venv/bin/python -m pip install -q -r .ci/torch.txt
    .venv/bin/python -m pip install -q -e ".[lite,demo]"
    touch .venv/.complete
  fi
  # shellcheck disable=SC1091
  source .venv/bin/activate
fi
CONFIG=configs/$KIND/demo_digits.py
WD=work_dirs/demo_$KIND
python tools/train.py "$CONFIG" --work-dir "$WD"
CKPT=$(cat "$WD/last_checkpoint")
clean=$(python tools/test.py "$CONFIG" "$CKPT" --work-dir "$WD" 2>&1 |
  grep -o 'multi-label/mAP: [0-9.]*' | tail -1)
masked=$(python tools/test.py "$CONFIG" "$CKPT" --work-dir "$WD" --mask high 2>&1 |
  grep -o 'multi-label/mAP: [0-9.]*' | tail -1)
echo "== $KIND demo: clean ${clean#multi-label/}, masked (50-60% removed) ${masked#multi-label/}"
[ "$KIND" = msl ] && echo "== compare with the baseline: bash tools/demo.sh baseline"
exit 0
