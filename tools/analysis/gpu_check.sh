#!/usr/bin/env bash
# One-call CUDA check for a bare machine (python3 + torch + torchvision).
#
#   bash tools/analysis/gpu_check.sh --build-wheels DIR    # here, with PyPI
#   bash tools/analysis/gpu_check.sh --wheels DIR [--out DIR]  # on the GPU
#   bash tools/analysis/gpu_check.sh --dry-run --out DIR   # CPU plumbing
#
# On the GPU (about 8 minutes): benchmark_train.py for ResNet-101 + CSRA @
# 448 (AMP, channels_last, batch 6 and 32, baseline / two_pass / concat),
# 30 iterations of tools/train.py configs/msl/resnet101_csra_voc.py --amp
# on a generated VOC2007 fixture, and MSL's loss under
# torch.cuda.set_sync_debug_mode('error'). Writes OUT/gpu_check.json and
# OUT/gpu_check.md; exits non-zero if any part failed (after writing both).
# See "One-call GPU check" in docs/benchmarks.md.
set -euo pipefail
export PYTHONUNBUFFERED=1

usage() {
    sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
    exit "${1:-0}"
}

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PY=${PYTHON:-python3}
WHEELS='' OUT='' DRY=0 BUILD=''
SITE=${GPU_CHECK_SITE:-/tmp/site}
while [ $# -gt 0 ]; do
    case "$1" in
        --wheels) WHEELS=${2:?--wheels needs a folder}; shift 2 ;;
        --out) OUT=${2:?--out needs a folder}; shift 2 ;;
        --dry-run) DRY=1; shift ;;
        --build-wheels) BUILD=${2:?--build-wheels needs a folder}; shift 2 ;;
        -h|--help) usage 0 ;;
        *) echo "gpu_check: unknown argument '$1'" >&2; usage 2 >&2 ;;
    esac
done

# ------------------------------------------------------------ build wheels --
# Pure-Python (or abi3) wheels that torch/torchvision don't bring.
# opencv-python-headless >= 4.10 is built against numpy 2 (works with 1.x);
# at 48 MiB it is most of the folder. Not matplotlib (+ kiwisolver,
# fonttools ...: ~11 MiB more, over the 64 MiB a device tree may carry):
# mmengine's Runner only builds an empty figure with it (Visualizer), so
# on the device a no-op stand-in is used when it is missing (see below).
WHEEL_PKGS=(
    mmengine==0.10.7 mmcv-lite==2.2.0 mmpretrain==1.2.0
    addict yapf platformdirs termcolor rich markdown-it-py mdurl pygments
    opencv-python-headless==4.10.0.84 modelindex model-index markdown
    ordered-set click mat4py einops importlib-metadata zipp packaging
    pyyaml 'setuptools<80'
)
if [ -n "$BUILD" ]; then
    mkdir -p "$BUILD"
    "$PY" -m pip download -q --no-deps --only-binary=:all: \
        --python-version 3.12 --implementation cp \
        --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        --platform any -d "$BUILD" "${WHEEL_PKGS[@]}"
    had_build=0; [ -e "$ROOT/build" ] && had_build=1
    (cd "$ROOT" && "$PY" -m pip wheel -q --no-deps --no-build-isolation \
        -w "$BUILD" .)
    # setuptools' scratch folder, unless it was there before
    [ "$had_build" = 1 ] || rm -rf "$ROOT/build"
    echo "gpu_check: $(ls "$BUILD"/*.whl | wc -l) wheels in $BUILD," \
        "$(du -sh "$BUILD" | cut -f1)"
    for w in "$BUILD"/mmengine-*.whl "$BUILD"/mmcv_lite-*.whl \
             "$BUILD"/mmpretrain-*.whl "$BUILD"/mmmsl-*.whl; do
        echo "== $(basename "$w")"
        unzip -p "$w" '*/METADATA' | grep '^Requires-Dist' | grep -v extra \
            || true
    done
    exit 0
fi

[ -n "$OUT" ] || OUT="$ROOT/work_dirs/gpu_check"
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

# ----------------------------------------------------------------- install --
if [ -n "$WHEELS" ]; then
    ls "$WHEELS"/*.whl >/dev/null 2>&1 || {
        echo "gpu_check: no wheels in $WHEELS (make them with" \
             "--build-wheels DIR on a machine with PyPI)" >&2; exit 2; }
    echo "gpu_check: installing $(ls "$WHEELS"/*.whl | wc -l) wheels" \
         "into $SITE"
    "$PY" -m pip install -q --no-index --no-deps --no-compile \
        --target "$SITE" --upgrade "$WHEELS"/*.whl
    # The checkout's mmmsl first: the tree may be newer than its wheel.
    export PYTHONPATH="$ROOT:$SITE${PYTHONPATH:+:$PYTHONPATH}"
else
    # Without wheels run from the checkout (mmmsl importable from it).
    export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
fi
cd "$ROOT"
# mmengine's Visualizer makes an (unused) matplotlib figure in every Runner.
# Without matplotlib: a no-op stand-in, last on the path, for this check
# only (no step here draws anything).
if ! "$PY" -c 'import matplotlib' 2>/dev/null; then
    STUBS="$SITE-stubs"
    mkdir -p "$STUBS/matplotlib/backends"
    cat > "$STUBS/matplotlib/__init__.py" <<'PYEOF'
"""gpu_check.sh's no-op stand-in for matplotlib (not installed here):
enough for mmengine's Visualizer to build its empty figure."""
__version__ = '0+gpu-check-stub'


class _NoOp:
    def __init__(self, *args, **kwargs):
        pass

    def __call__(self, *args, **kwargs):
        return _NoOp()

    def __getattr__(self, name):
        return _NoOp()
PYEOF
    echo 'from matplotlib import _NoOp as Figure  # noqa' \
        > "$STUBS/matplotlib/figure.py"
    : > "$STUBS/matplotlib/backends/__init__.py"
    echo 'from matplotlib import _NoOp as FigureCanvasAgg  # noqa' \
        > "$STUBS/matplotlib/backends/backend_agg.py"
    export PYTHONPATH="$PYTHONPATH:$STUBS"
    echo "gpu_check: no matplotlib: using a no-op stand-in ($STUBS)"
fi

# ----------------------------------------------------------------- the run --
# The report first checks, in its own process, that the packages import
# (exit status 2, naming them) and that there is a CUDA device (3, unless
# --dry-run).
export MMMSL_CACHE="$OUT/cache"
ARGS=(--out "$OUT")
[ "$DRY" = 1 ] && ARGS+=(--dry-run)
exec "$PY" "$ROOT/tools/analysis/gpu_check_report.py" "${ARGS[@]}"
