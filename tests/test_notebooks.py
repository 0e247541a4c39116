"""Run every notebook in `nbs/` the way `nbdev_test` does, one pytest case per notebook.

Cells flagged with a `tst_flags` entry of settings.ini (`slow`, `cuda`) are skipped unless asked for:
`cuda` cells run automatically when a GPU is visible, and `FACEVAE_TEST_FLAGS="slow"` runs the slow ones too.
"""
import os
from pathlib import Path

import pytest
import torch
from nbdev.config import get_config
from nbdev.test import test_nb as _run_notebook  # renamed so pytest does not collect it as a test

CFG = get_config()
NBS = Path(CFG.config_path) / CFG.nbs_path
NOTEBOOKS = sorted(p for p in NBS.rglob('*.ipynb')
                   if not any(part.startswith(('_', '.')) for part in p.relative_to(NBS).parts))


def _flags():
    skip = set(CFG.tst_flags.split())
    force = set(os.environ.get('FACEVAE_TEST_FLAGS', '').split())
    if torch.cuda.is_available(): force.add('cuda')
    return sorted(skip - force), sorted(force)


@pytest.mark.parametrize('nb', NOTEBOOKS, ids=[str(p.relative_to(NBS)) for p in NOTEBOOKS])
def test_notebook(nb):
    skip, force = _flags()
    ok, secs = _run_notebook(nb, skip_flags=skip, force_flags=force, showerr=True)
    assert ok, f'{nb.name} failed (its traceback is printed above)'


def test_found_notebooks():
    names = [p.name for p in NOTEBOOKS]
    assert 'index.ipynb' in names and any(n.startswith('00_') for n in names), names
