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
    assert "the rule's choice" in (tmp_path/'out'/'precision.log').read_text()   # facevae speed ran


def test_bench_gpu_bad_mode():
    bash = shutil.which('bash')
    if bash is None: pytest.skip('bash is not installed')
    r = subprocess.run([bash, str(ROOT/'benchmarks'/'bench_gpu.sh'), '--nonsense'], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 2 and 'usage' in r.stdout


def test_nb_errors_lists_every_failing_cell(tmp_path):
    "benchmarks/nb_errors.py runs on past errors: both broken cells are named, the good ones are not, exit status 1."
    import json
    cells = [dict(cell_type='code', execution_count=None, metadata={}, outputs=[], source=s)
             for s in ('x = 1', '1/0', 'y = x + 1', 'undefined_name_xyz', 'assert y == 2')]
    fn = tmp_path/'broken.ipynb'
    fn.write_text(json.dumps(dict(cells=cells, metadata=dict(kernelspec=dict(language='python', name='python3')),
                                  nbformat=4, nbformat_minor=5)))
    r = subprocess.run([sys.executable, str(ROOT/'benchmarks'/'nb_errors.py'), str(fn)], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 1, r.stdout + r.stderr
    assert 'broken.ipynb: 2 failing cell(s)' in r.stdout, r.stdout
    assert 'cell 1: 1/0' in r.stdout and 'ZeroDivisionError' in r.stdout and 'cell 3: undefined_name_xyz' in r.stdout
    assert 'cell 4' not in r.stdout and 'cell 2' not in r.stdout
