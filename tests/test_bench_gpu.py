"The GPU benchmark script's CPU dry run: tiny sizes, both presets with and without torch.compile, the table."
import os, shutil, subprocess, sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_bench_gpu_dry_run(tmp_path):
    bash = shutil.which('bash')
    if bash is None: pytest.skip('bash is not installed: benchmarks/bench_gpu.sh is a bash script')
    if shutil.which('timeout') is None: pytest.skip('coreutils `timeout` is missing: the script uses it to bound each part')
    env = dict(os.environ, OUT=str(tmp_path/'out'), PYTHON=sys.executable, FACEVAE_CACHE=os.environ.get('FACEVAE_CACHE', str(tmp_path/'cache')))
    r = subprocess.run([bash, str(ROOT/'benchmarks'/'bench_gpu.sh'), '--dry-run'], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    md = (tmp_path/'out'/'bench_gpu.md').read_text()
    assert '| preset | batch | compile | images/s | s / CelebA epoch |' in md, md
    for preset in ('default', 'seed'):
        for c in ('no', 'yes'): assert f'| {preset} | 16 | {c} |' in md, md
    assert 'goal: `default` >= 30,000 images/s' in md
    assert 'all parts passed' in r.stdout


def test_bench_gpu_bad_mode():
    bash = shutil.which('bash')
    if bash is None: pytest.skip('bash is not installed')
    r = subprocess.run([bash, str(ROOT/'benchmarks'/'bench_gpu.sh'), '--nonsense'], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 2 and 'usage' in r.stdout
