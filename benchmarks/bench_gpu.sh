#!/usr/bin/env bash
# One prepared GPU check for facevae_nb, well under 8 minutes on one H100:
#   1. installs what the machine lacks from wheels carried in .whl/ (offline), and this package with --no-deps;
#   2. training speed: images/s and seconds per CelebA-sized epoch (162,770 generated faces, 64 px), both presets,
#      with and without torch.compile -> a markdown table for BENCHMARKS.md (benchmarks/bench_gpu.py);
#   2b. `facevae speed` on the GPU: every precision and layout (fp16 + GradScaler forced: the T4's path), the rule's pick;
#   3. the notebook tests with their `cuda` cells (tests/test_notebooks.py forces `cuda` when a GPU is visible).
#
#   benchmarks/bench_gpu.sh --wheels    # where pip works: fill .whl/ (git-ignored) for an offline GPU machine
#   benchmarks/bench_gpu.sh             # on the GPU machine (with .whl/ carried along)
#   benchmarks/bench_gpu.sh --dry-run   # on a CPU: tiny sizes, no notebook run, < 60 s (tests/test_bench_gpu.py)
#
# Results go to $OUT if set (the device tool's result folder), else runs/bench-gpu/: bench_gpu.md (the table),
# speed.log, notebooks.log. PYTHON picks the interpreter (default python3). Exit status: 0 only if every part passed.
set -uo pipefail
cd "$(dirname "$0")/.."
MODE=${1:-run}
PY=${PYTHON:-python3}
RES=${OUT:-runs/bench-gpu}
# Pure-Python (or manylinux) packages the GPU image lacks, at the versions the project is tested with. The image
# already has torch, torchvision, numpy, pillow, matplotlib, seaborn, tqdm, safetensors, pytest(-xdist), pyyaml, ...
WHEELS="fastcore==1.14.5 nbdev==2.4.14 execnb==0.1.18 ghapi==1.1.1 fastgit==0.0.6 astunparse==1.6.3 asttokens==3.0.2
watchdog==7.1.0 ipython==9.18.1 ipython-pygments-lexers==1.1.1 jedi==0.20.1 parso==0.8.7 matplotlib-inline==0.2.2
pexpect==4.9.0 ptyprocess==0.7.0 prompt_toolkit==3.0.53 wcwidth==0.9.4 stack_data==0.6.3 executing==2.3.0
pure_eval==0.2.4 traitlets==5.16.1 ipywidgets==8.1.9 comm==0.2.3 widgetsnbextension==4.0.16 jupyterlab_widgets==3.0.17"

case "$MODE" in
  --wheels)
    mkdir -p .whl
    # the GPU image's Python is 3.12 on x86-64; --no-deps: the list above is the complete set of what is missing
    $PY -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
      --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
      --platform manylinux1_x86_64 --platform any -d .whl $WHEELS || exit 1
    ls .whl | wc -l | xargs echo "wheels in .whl/:"; du -sh .whl
    exit 0;;
  --dry-run) DRY=1;;
  run) DRY=0;;
  *) echo "usage: $0 [--wheels | --dry-run]"; exit 2;;
esac

mkdir -p "$RES"
export PYTHONUNBUFFERED=1 MPLBACKEND=agg
status=0

echo "== 1. install"
if ! $PY -c 'import fastcore, nbdev, execnb, ipywidgets, safetensors' 2>/dev/null; then
  if [ ! -d .whl ]; then
    echo "fastcore/nbdev/execnb/ipywidgets/safetensors missing and no .whl/ folder: run '$0 --wheels' where pip works and carry .whl"
    exit 2
  fi
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/facevae-site .whl/*.whl || exit 2
  export PYTHONPATH=/tmp/facevae-site${PYTHONPATH:+:$PYTHONPATH}
fi
if ! (cd /tmp && $PY -c 'import facevae_nb') 2>/dev/null; then
  # this package only (its requirements are there): editable, offline, no dependency resolution; and where an
  # editable install does not take (seen on the GPU image), the checkout itself on the path of every process
  $PY -m pip install -q --no-index --no-deps --no-build-isolation -e . 2>/dev/null
  (cd /tmp && $PY -c 'import facevae_nb') 2>/dev/null || export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
fi
$PY - <<'EOF' || exit 2
import torch, torchvision, fastcore, nbdev, facevae_nb
gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else 'none'
print(f'torch {torch.__version__}, torchvision {torchvision.__version__}, fastcore {fastcore.__version__}, '
      f'nbdev {nbdev.__version__}, facevae_nb {facevae_nb.__version__}; GPU: {gpu}')
EOF

echo "== 2. training speed"
if [ "$DRY" = 1 ]; then
  timeout 120 $PY benchmarks/bench_gpu.py --dry-run --md "$RES/bench_gpu.md" 2>&1 | tee "$RES/speed.log" || status=1
else
  # both presets with and without torch.compile at the recipe's batch (128), and `default` at batch 512 uncompiled
  timeout 300 $PY benchmarks/bench_gpu.py --md "$RES/bench_gpu.md" --also default:512:no 2>&1 | tee "$RES/speed.log" || status=1
fi

echo "== 2b. every precision and layout on this GPU (facevae speed): the rule's pick, and the fp16 + GradScaler path"
# the T4's path (fp16 autocast + GradScaler) runs nowhere else: its rows here are train_step with a GradScaler
if [ "$DRY" = 1 ]; then
  timeout 120 $PY -m facevae_nb.cli speed --preset seed --image-size 16 --batch-size 8 --seconds 1 --no-ceiling \
    2>&1 | tee "$RES/precision.log" || status=1
else
  for b in 128 512; do
    timeout 120 $PY -m facevae_nb.cli speed --preset default --batch-size $b --seconds 20 2>&1 | tee -a "$RES/precision.log" || status=1
  done
fi
grep -q "the rule's choice" "$RES/precision.log" || status=1

echo "== 3. notebook tests with their cuda cells"
grep -l '#| cuda' nbs/*.ipynb 2>/dev/null | xargs -r -n1 basename | tr '\n' ' ' | xargs -r echo "notebooks with cuda cells:"
if [ "$DRY" = 1 ]; then
  echo "dry run: skipped (on the GPU machine: $PY -m pytest tests/test_notebooks.py -q -n 8)"
else
  XDIST=$($PY -c 'import xdist' 2>/dev/null && echo "-n 8" || true)
  timeout 240 $PY -m pytest tests/test_notebooks.py -q -p no:cacheprovider $XDIST 2>&1 | tee "$RES/notebooks.log" | tail -8
  if [ "${PIPESTATUS[0]}" != 0 ]; then
    status=1
    # pytest stops each notebook at its first error: list every failing cell of the failed ones (one lease, all fixes)
    failed=$(grep -o 'test_notebook\[[^]]*\]' "$RES/notebooks.log" | sort -u | sed 's/test_notebook\[\(.*\)\]/nbs\/\1/')
    echo "$failed" | xargs -r -P 8 -n 1 timeout 150 $PY benchmarks/nb_errors.py 2>/dev/null | tee "$RES/nb_errors.log"
  fi
fi

echo "== summary: $([ $status = 0 ] && echo 'all parts passed' || echo 'SOME PART FAILED (see above)'); table in $RES/bench_gpu.md"
exit $status
