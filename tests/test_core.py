"""facevae_nb.core: what only a fresh process can show (the atomic files, option checks, devices and image files
are checked in nbs/00_core.ipynb)."""
import os, subprocess, sys


# process: only a fresh interpreter shows what importing the package loads and writes
def test_importing_the_package_is_light(tmp_path):
    "Nothing heavy at import time: `import facevae_nb.core` loads neither torch nor numpy, and writes nothing."
    env = dict(os.environ, HOME=str(tmp_path), MPLCONFIGDIR=str(tmp_path/'mpl'))
    r = subprocess.run([sys.executable, '-c', "import sys, facevae_nb, facevae_nb.core, facevae_nb.cli; "
                        "print(sorted(m for m in ('torch', 'numpy', 'matplotlib') if m in sys.modules))"],
                       capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == '[]', r.stdout + r.stderr
    assert list(tmp_path.iterdir()) == []
