"""Colab as it ships: the notebooks' install cell and the notebooks themselves in a venv of Colab's package versions.

These tests need a venv built from `../shared/colab/colab-pins.txt` (fastcore 2.2.12, ipywidgets 7.7.1, IPython 7.34,
ipykernel 6.17, torch 2.11, ...): minutes to build and ~6 GB, so they run only when `FACEVAE_COLAB_VENV` names one
(`.ci/run` builds it for its Colab job) and skip otherwise:

    python3 -m venv /tmp/colab && /tmp/colab/bin/pip install -r ../shared/colab/colab-pins.txt
    FACEVAE_COLAB_VENV=/tmp/colab python -m pytest tests/test_colab.py

`test_install_cell` runs the notebooks' own Colab install cell there (with this checkout in place of the GitHub URL)
and checks that it installs the package and nbdev while every package Colab ships keeps its version. The notebook
tests then run each notebook in a kernel of that venv, the way Colab runs it: a real ipykernel process, started in
an empty folder (no repository, no settings.ini around it), cells flagged `slow`/`cuda`/`eval: false` and the
`nbdev_export()` cells skipped as `nbdev_test` skips them. They need the install cell to have run first (run this
file as a whole, as CI does).
"""
import json, os, re, subprocess, sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
VENV = os.environ.get('FACEVAE_COLAB_VENV')
needs_venv = pytest.mark.skipif(not VENV, reason='FACEVAE_COLAB_VENV does not name a venv built from colab-pins.txt')
PY = str(Path(VENV or '.')/'bin'/'python')
NBS = sorted(p for p in (ROOT/'nbs').glob('*.ipynb'))
SKIP_FLAGS = {'slow', 'cuda'}


def _installed() -> dict:
    "{normalised name: version} of every distribution in the Colab venv."
    code = ('import importlib.metadata as md, json; print(json.dumps({d.metadata["Name"]: d.version '
            'for d in md.distributions() if d.metadata["Name"]}))')
    out = json.loads(subprocess.run([PY, '-c', code], capture_output=True, text=True, check=True).stdout)
    return {re.sub(r'[-_.]+', '-', k).lower(): v for k, v in out.items()}


def _install_cell() -> str:
    "The Colab install cell as every notebook has it (tools/colab_cells.py --check keeps them identical)."
    cells = json.loads((ROOT/'nbs'/'00_core.ipynb').read_text())['cells']
    return next(''.join(c['source']) for c in cells if c['cell_type'] == 'code' and '# colab: install' in ''.join(c['source']))


def test_every_notebook_has_the_current_colab_cells():
    "What the Colab tests run is what every notebook has (needs no venv: a quick check on every run)."
    sys.path.insert(0, str(ROOT/'tools'))
    try: import colab_cells
    finally: sys.path.pop(0)
    cfg = colab_cells.settings()
    bad = {p.name: colab_cells.problems(p, cfg) for p in colab_cells.notebooks([ROOT/'nbs'])}
    assert not any(bad.values()), f'run python tools/colab_cells.py: {bad}'


@needs_venv
def test_install_cell(tmp_path):
    src = _install_cell()
    url = re.search(r"'facevae_nb @ (git\+https://[^']+)'", src)
    assert url, src
    src = src.replace(url[1], ROOT.as_uri())                  # this checkout instead of GitHub (no network in CI)
    fake = tmp_path/'fake'; (fake/'google'/'colab').mkdir(parents=True)
    (fake/'google'/'colab'/'__init__.py').write_text('')     # what makes fastcore's IN_COLAB true
    before = _installed()
    r = subprocess.run([PY, '-c', 'import google.colab\n' + src], cwd=tmp_path, capture_output=True, text=True,
                       env=dict(os.environ, PYTHONPATH=str(fake)), timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    after = _installed()
    changed = {k: (v, after.get(k)) for k, v in before.items() if after.get(k) != v and k != 'facevae-nb'}
    assert not changed, f'the install cell changed packages Colab ships: {changed}'
    assert 'facevae-nb' in after and 'nbdev' in after, sorted(set(after) - set(before))
    r = subprocess.run([PY, '-m', 'pip', 'check'], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout


def _directives(src):
    "{name: [values]} of the `#| name value` lines at the top of a cell."
    out = {}
    for line in src.splitlines():
        if not line.startswith('#|'): break
        k, *v = line[2:].split()
        out[k.rstrip(':')] = v
    return out


def _skipped(cell) -> bool:
    src = ''.join(cell['source'])
    d = _directives(src)
    return (cell['cell_type'] != 'code' or 'nbdev_export' + '(' in src or SKIP_FLAGS & d.keys()
            or d.get('eval', [''])[0].lower() == 'false')


@pytest.fixture(scope='module')
def colab_kernel(tmp_path_factory):
    "A kernel of the Colab venv (ipykernel 6.17, IPython 7.34), like Colab's, started in an empty folder."
    jupyter_client = pytest.importorskip('jupyter_client')
    from jupyter_client.kernelspec import KernelSpecManager
    d = tmp_path_factory.mktemp('kernels')
    (d/'colab').mkdir()
    (d/'colab'/'kernel.json').write_text(json.dumps(dict(
        argv=[PY, '-m', 'ipykernel_launcher', '-f', '{connection_file}'], display_name='colab', language='python')))
    def start():
        km = jupyter_client.KernelManager(kernel_name='colab', kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(d)]))
        km.start_kernel(cwd=str(tmp_path_factory.mktemp('content')), env=dict(os.environ, IN_TEST='1'))
        kc = km.client(); kc.start_channels(); kc.wait_for_ready(timeout=120)
        return km, kc
    yield start


def _run_cell(kc, code, timeout=600):
    "Execute `code`; returns the error traceback text, or None."
    errs = []
    def hook(m):
        if m['msg_type'] == 'error': errs.append('\n'.join(m['content']['traceback']))
    reply = kc.execute_interactive(code, timeout=timeout, output_hook=hook, allow_stdin=False)
    if reply['content']['status'] != 'ok': return '\n'.join(errs) or str(reply['content'])
    return None


@needs_venv
@pytest.mark.parametrize('nb', NBS, ids=[p.name for p in NBS])
def test_notebook_on_colab(colab_kernel, nb):
    km, kc = colab_kernel()                                   # a fresh kernel per notebook, like a new Colab session
    try:
        for i, cell in enumerate(json.loads(nb.read_text())['cells']):
            if _skipped(cell): continue
            err = _run_cell(kc, ''.join(cell['source']))
            assert err is None, f'{nb.name}, cell {i}:\n' + re.sub(r'\x1b\[[0-9;]*m', '', err)
    finally:
        kc.stop_channels(); km.shutdown_kernel(now=True)
