#!/usr/bin/env python3
"""Execute notebooks top to bottom and save their outputs (small PNG figures), for the docs site.

  python tools/run_nbs.py [nbs/06_generate.ipynb ...] [--test] [--flags slow]

Each notebook runs in its own process, skipping what `nbdev_test` skips (`#| eval: false`, cells flagged with a
`tst_flags` entry unless named in --flags, the export cell). With --test, `IN_TEST` is set, so budgets are small.
Figures are saved as plain 1x PNG (not retina), large ones (grids of faces) as JPEG, so saved outputs stay small.

Licensing: CelebA images may not be redistributed, so the outputs of cells that read the real data folders
(`../shared/data`, named `SHARED` in the notebooks) are dropped before saving, and so are those of `if REAL:` cells when
the notebook's run was trained on real CelebA (`REAL` true); model outputs are kept.
Run `nbdev_clean` afterwards.
"""
import argparse, os, re, subprocess, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REAL_DATA = re.compile(r"\bSHARED\b|shared/data|'shared'\s*/\s*'data'")   # a cell that reads the real data folders
IF_REAL = re.compile(r"(?m:^if REAL\b)")   # a block run only when the notebook's run was trained on real CelebA (`REAL`)
PROGRESS = re.compile(r"\r|\d+it/s|\d+/\d+ \[\d")


def _jpeg_if_large(data: dict, limit: int = 150_000):
    "Store a large PNG figure (a grid of faces: photographic content) as JPEG, which is ~6x smaller on such images."
    import base64, io
    from PIL import Image
    png = data.get('image/png')
    if png is None: return
    raw = ''.join(png) if isinstance(png, list) else png
    if len(raw) < limit: return
    buf = io.BytesIO()
    Image.open(io.BytesIO(base64.b64decode(raw))).convert('RGB').save(buf, 'JPEG', quality=88)
    del data['image/png']; data['image/jpeg'] = base64.b64encode(buf.getvalue()).decode()


def run_one(nb: Path, flags: set):
    from execnb.nbio import read_nb, write_nb
    from execnb.shell import CaptureShell
    from nbdev.config import get_config
    from nbdev.process import NBProcessor
    skip = set(get_config().tst_flags.split()) - flags
    nb_obj = read_nb(nb)
    NBProcessor(nb, procs=[], nb=nb_obj, rm_directives=False)   # parses each cell's directives_, keeping the source

    def pre(cell):
        if cell.cell_type != 'code': return True
        if 'nbdev_export' + '(' in cell.source: return True
        d = getattr(cell, 'directives_', {}) or {}
        if d.get('eval:', [''])[0].lower() == 'false': return True
        if skip & d.keys(): return True
        cell.outputs = []              # execnb keeps a cell's old outputs when the new run prints nothing
        return False

    def post(cell):
        if cell.cell_type != 'code': return
        real = bool(sh.user_ns.get('REAL'))         # the course run is on generated faces: then `if REAL:` cells keep theirs
        if REAL_DATA.search(cell.source) or (real and IF_REAL.search(cell.source)): cell.outputs = []
        # progress bars (tqdm writes frames with carriage returns to stderr) render as pages of text on the site
        cell.outputs = [o for o in cell.outputs if not (o.get('output_type') == 'stream' and o.get('name') == 'stderr'
                                                        and PROGRESS.search(''.join(o.get('text', ''))))]
        for o in cell.outputs: _jpeg_if_large(o.get('data', {}))

    sh = CaptureShell(nb, mpl_format='png')
    sh.set_path(nb.parent.resolve())
    os.chdir(nb.parent)
    sh.run_all(nb_obj, exc_stop=True, preproc=pre, postproc=post)
    write_nb(nb_obj, nb)


if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('notebooks', nargs='*')
    ap.add_argument('--test', action='store_true', help='set IN_TEST: small budgets')
    ap.add_argument('--flags', default='', help='space-separated test flags to run (e.g. slow)')
    ap.add_argument('--one', help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.one:
        run_one(Path(a.one).resolve(), set(a.flags.split())); sys.exit(0)
    nbs = [Path(p) for p in a.notebooks] or sorted(p for p in (ROOT/'nbs').glob('*.ipynb') if not p.name.startswith('_'))
    env = dict(os.environ, MPLBACKEND='agg')
    if a.test: env['IN_TEST'] = '1'
    else: env.pop('IN_TEST', None)
    failed = []
    for nb in nbs:
        t = time.time()
        r = subprocess.run([sys.executable, __file__, '--one', str(nb), '--flags', a.flags], env=env)
        print(f'{nb.name}: {"ok" if r.returncode == 0 else "FAILED"} in {time.time()-t:.0f}s', flush=True)
        if r.returncode: failed.append(nb.name)
    sys.exit(1 if failed else 0)
