"""Training speed on a GPU: images/s and seconds per CelebA-sized epoch, both presets, with and without torch.compile.

  python benchmarks/bench_gpu.py                      # on a CUDA machine (benchmarks/bench_gpu.sh runs it)
  python benchmarks/bench_gpu.py --dry-run            # tiny sizes on the CPU: checks that everything runs (< 1 min)

The data is CelebA-sized: `--faces` (162,770, the official training split) generated faces at `--image-size`. Only
`--base` distinct faces are drawn (drawing is CPU work that would cost minutes) and tiled up to `--faces`, so the
cache, its device copy and every gather are exactly as large as for the real training split. Each configuration is
timed over `--steps` optimizer steps of this project's loop (`fit`: shuffled device-side batches with flips, bf16
autocast, AdamW, KL warm-up) after `--warm` untimed steps (which include torch.compile's compilation, reported
separately). Seconds per epoch = 162,770 / (images/s). Prints a markdown table (also written to `--md`).
"""
import argparse, sys, time
from pathlib import Path

import numpy as np
import torch

from facevae_nb.core import seed_everything
from facevae_nb.data import FaceCache, FaceLoader
from facevae_nb.faces import open_faces
from facevae_nb.model import make_vae
from facevae_nb.train import fit, train_config

CELEBA_TRAIN = 162_770
GOAL = 30_000   # images/s for `default` at 64 px on one H100: 50 epochs in under 5 minutes


def celeba_sized(n:int, base:int, image_size:int) -> FaceCache:
    "A FaceCache of `n` faces: `base` generated faces tiled (same bytes per face and total size as CelebA's)."
    src = open_faces('generated', image_size=image_size, n=base)
    reps = -(-n // len(src))
    imgs = np.ascontiguousarray(np.tile(np.asarray(src.images), (reps, 1, 1, 1))[:n])
    attrs = src.attrs.repeat(reps, 1)[:n]
    return FaceCache(imgs, attrs, torch.zeros(n, dtype=torch.int64), [f'{i:06d}.jpg' for i in range(1, n + 1)],
                     meta=dict(image_size=image_size), path=None)


def _sync(dev):
    if dev.type == 'cuda': torch.cuda.synchronize(dev)


def speed(cache:FaceCache, preset:str, batch:int, compile:bool, steps:int, warm:int, dev:torch.device) -> dict:
    "Images/s of this project's training loop over `steps` steps after `warm` warm-up steps (same model throughout)."
    seed_everything(0)
    model = make_vae(preset, cache.image_size)
    out = {}
    for k, n in (('warm', warm), ('timed', steps)):
        dl = FaceLoader(cache, torch.arange(n*batch) % len(cache), batch_size=batch, device=dev)
        cfg = train_config(preset, epochs=1, batch_size=batch, compile=compile, ckpt_every=0)
        _sync(dev); t = time.perf_counter()
        fit(model, dl, None, cfg, out=None, device=dev, quiet=True)
        _sync(dev); out[k] = time.perf_counter() - t
    ips = steps*batch/out['timed']
    return {'preset': preset, 'batch': batch, 'compile': 'yes' if compile else 'no', 'images/s': ips,
            's / CelebA epoch': CELEBA_TRAIN/ips, 'min / 50 epochs': 50*CELEBA_TRAIN/ips/60, 'warm-up s': out['warm']}


def table(rows:list, cols:list) -> str:
    "A markdown table of dicts (numbers with thousands separators)."
    fmt = lambda v: (f'{v:,.0f}' if v >= 100 else f'{v:,.2f}') if isinstance(v, float) else str(v)
    lines = ['| ' + ' | '.join(cols) + ' |', '|' + '|'.join('---' if c in ('preset', 'compile') else '---:' for c in cols) + '|']
    return '\n'.join(lines + ['| ' + ' | '.join(fmt(r[c]) for c in cols) + ' |' for r in rows])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--dry-run', action='store_true', help='tiny sizes on the CPU, to check that everything runs')
    p.add_argument('--faces', type=int, default=CELEBA_TRAIN, help='faces in the cache (CelebA training split: 162,770)')
    p.add_argument('--base', type=int, default=4096, help='distinct generated faces, tiled up to --faces')
    p.add_argument('--image-size', type=int, default=64)
    p.add_argument('--presets', default='default,seed')
    p.add_argument('--batch', default='128', help='comma-separated batch sizes (128 is both presets\' recipe)')
    p.add_argument('--compile', default='no,yes', help="'no', 'yes' or 'no,yes'")
    p.add_argument('--steps', type=int, default=400, help='timed steps per configuration')
    p.add_argument('--warm', type=int, default=30, help='untimed warm-up steps (compilation happens here)')
    p.add_argument('--also', default='', help="extra rows 'preset:batch:compile', comma-separated, e.g. default:512:no")
    p.add_argument('--device', default=None, help="default: 'cuda' (required unless --dry-run)")
    p.add_argument('--md', default=None, help='also write the table to this markdown file')
    a = p.parse_args(argv)
    if a.dry_run:
        a.faces, a.base, a.steps, a.warm, a.device, a.batch = min(a.faces, 600), min(a.base, 100), 2, 1, a.device or 'cpu', '16'
        # Inductor's C++ compilation takes minutes on a small CPU: trace with dynamo but run eagerly
        import functools; torch.compile = functools.partial(torch.compile, backend='eager')
    dev = torch.device(a.device or 'cuda')
    if dev.type == 'cuda' and not torch.cuda.is_available(): sys.exit('no CUDA GPU visible: run with --dry-run on a CPU')
    name = torch.cuda.get_device_name(dev) if dev.type == 'cuda' else f'CPU ({torch.get_num_threads()} threads)'
    t = time.perf_counter()
    cache = celeba_sized(a.faces, a.base, a.image_size)
    built = time.perf_counter() - t
    grid = [(p_, int(b), c.strip()) for p_ in a.presets.split(',') for b in a.batch.split(',') for c in a.compile.split(',')]
    grid += [(p_, int(b), c) for p_, b, c in (x.split(':') for x in a.also.split(',') if x)]
    rows = []
    for preset, bs, c in grid:
        if a.dry_run: bs = min(bs, 16)
        r = speed(cache, preset, bs, c == 'yes', a.steps, a.warm, dev)
        rows.append(r)
        print(f"{r['preset']:8s} batch {bs:4d} compile {r['compile']:3s}: {r['images/s']:9,.0f} images/s, "
              f"{r['s / CelebA epoch']:7.1f} s/epoch (warm-up {r['warm-up s']:.1f} s)", flush=True)
    head = (f"{name}, torch {torch.__version__}, {a.image_size} px, {len(cache):,} faces ({a.base:,} generated, tiled; "
            f"cache made in {built:.0f} s), {a.steps} timed steps after {a.warm} warm-up steps per row")
    goal = [r for r in rows if r['preset'] == 'default']
    best = max(goal, key=lambda r: r['images/s']) if goal else None
    md = '\n'.join([head, '', table(rows, ['preset', 'batch', 'compile', 'images/s', 's / CelebA epoch',
                                           'min / 50 epochs', 'warm-up s']), ''] +
                   ([f"goal: `default` >= {GOAL:,} images/s (50 epochs < 5 min): best {best['images/s']:,.0f} images/s "
                     f"(batch {best['batch']}, compile {best['compile']}) -> **{'met' if best['images/s'] >= GOAL else 'not met'}**"
                     + (' (dry run: tiny sizes, compile traced with the eager backend; the numbers mean nothing)' if a.dry_run else '')] if best else []))
    print('\n' + md)
    if a.md: Path(a.md).parent.mkdir(parents=True, exist_ok=True); Path(a.md).write_text(md + '\n')
    return rows


if __name__ == '__main__': main()
