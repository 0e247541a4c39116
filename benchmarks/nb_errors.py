"""Every failing cell of the given notebooks, running on past each error, as `nbdev_test` runs them (same flags).

  python benchmarks/nb_errors.py nbs/06_generate.ipynb nbs/08_arithmetic.ipynb

For a one-shot GPU check (benchmarks/bench_gpu.sh): pytest stops a notebook at its first error, this lists them all,
so one lease shows everything to fix. Later errors can be knock-on effects of earlier ones. Exit status 1 if any.
"""
import sys
from pathlib import Path

import torch
from nbdev import test as T
from nbdev.config import get_config


def cell_errors(fn:Path, skip:set, force:set) -> list:
    "(cell number, first source line, error line) for every cell of notebook `fn` that raised, running on past errors."
    flags = skip - force
    nb = T.NBProcessor(fn, procs=T.FrontmatterProc, process=True).nb
    def no_eval(cell):
        if cell.cell_type != 'code': return True
        direc = getattr(cell, 'directives_', {}) or {}
        if direc.get('eval:', [''])[0].lower() == 'false': return True
        return flags & direc.keys()
    k = T.CaptureShell(fn)
    with T.working_directory(fn.parent): k.run_all(nb, exc_stop=False, preproc=no_eval)
    return [(i, next((l for l in c.source.splitlines() if not l.startswith('#|')), ''), f"{o['ename']}: {o['evalue']}")
            for i, c in enumerate(nb.cells) if c.cell_type == 'code'
            for o in (c.get('outputs') or []) if o.get('output_type') == 'error']


if __name__ == '__main__':
    T.os.environ['IN_TEST'] = '1'
    cfg = get_config()
    skip, force = set(cfg.tst_flags.split()), {'cuda'} if torch.cuda.is_available() else set()
    bad = 0
    for fn in map(Path, sys.argv[1:]):
        errs = cell_errors(fn.resolve(), skip, force)
        print('\n'.join([f'{fn.name}: {len(errs)} failing cell(s)'] + [f'  cell {i}: {src[:90]}\n    {err[:400]}' for i, src, err in errs]))
        bad += bool(errs)
    sys.exit(1 if bad else 0)
