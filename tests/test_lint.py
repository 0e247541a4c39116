"""The linter in the test command: ruff's pyflakes rules (F, configured in ruff.toml) over the package, benchmarks,
tools and tests, so no unused import or undefined name comes back. Here and not in a notebook: it runs a process
over the whole tree."""
import importlib.util, subprocess, sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PATHS = ['facevae_nb', 'benchmarks', 'tools', 'tests']


def test_ruff_pyflakes():
    if importlib.util.find_spec('ruff') is None:
        pytest.skip("ruff is not installed, so the code was not linted: pip install -e '.[dev]' (settings.ini pins it)")
    r = subprocess.run([sys.executable, '-m', 'ruff', 'check', '--no-cache', '--output-format', 'concise', *PATHS],
                       cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, f"ruff check {' '.join(PATHS)} found problems:\n{r.stdout}{r.stderr}"
