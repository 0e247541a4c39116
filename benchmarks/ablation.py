"""Model ablation behind the `default` preset, trained and scored the way a real run is.

Every variant is trained by the library's own loop (`train.fit` with a `TrainConfig`: the shipped recipe, Adam 1e-3,
batch 128, linear warm-up then cosine decay, unless the variant's row says otherwise) for the same number of steps,
and scored once with `train.evaluate`, the numbers a training run writes to metrics.csv: PSNR of decode(mu), mean KL
and the calibrated negative ELBO in bits/dim (z sampled). No loop or metric of its own.

  OMP_NUM_THREADS=1 nice -n 5 python benchmarks/ablation.py --epochs 2 --variants seed   # one row of the table in
                                       # BENCHMARKS.md (108 steps); one process per variant, every name of VARIANTS
  OMP_NUM_THREADS=1 nice -n 5 python benchmarks/ablation.py --epochs 8 --variants default  # the schedule, longer
                                       # (432 steps; and the same with +silu-nonorm, the same model at a constant LR)
  nice -n 5 python benchmarks/ablation.py --variants seed,default --seed 1   # a second seed for the noise level
  OMP_NUM_THREADS=1 python benchmarks/ablation.py --speed --rounds 2 --steps 4   # images/s of a training step,
                                       # every variant side by side (run it on a quiet machine)
  python benchmarks/ablation.py --quick                           # a smoke run of both modes (seconds)

Data: ../shared/data/celeba-sample (8,000 real CelebA faces, 64 px, the project's face cache); the last 1,000 by
name are held out for validation (`--holdout 1000`, as the project's runs), the first 7,000 train. Variants train the
same number of steps (not the same time), so the quality columns do not depend on other load on a shared machine.
The speed mode times every variant's training step in alternating rounds in one process, so its numbers compare
with each other (not with other runs); every mode prints lscpu's model name, whether it has AVX2, AVX-512, bf16
and AMX, and the precision, layout and threads the loop chose.
"""
import argparse, platform, subprocess, time
from pathlib import Path

import torch

from facevae_nb.core import FaceVAEError, device_settings, seed_everything
from facevae_nb.data import FaceLoader
from facevae_nb.faces import open_faces
from facevae_nb.model import make_vae
from facevae_nb.train import evaluate, fit, train_config

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT.parent/'shared'/'data'/'celeba-sample'

CAL = dict(recon='gaussian', sigma='optimal')        # the calibrated Gaussian decoder
# name: (model preset, model overrides, recipe preset, recipe overrides). The recipe is `train_config(recipe, ...)`:
# 'default' is the shipped schedule (warm-up + cosine), 'seed' the classic constant learning rate.
VARIANTS = {
    # cumulative, from the classic recipe to `default`
    'seed': ('seed', {}, 'seed', {}),                      # the classic recipe: constant learning rate
    '+calibrated': ('seed', CAL, 'seed', {}),              # + the calibrated Gaussian decoder
    '+silu-nonorm': ('default', {}, 'seed', {}),           # + SiLU, no BatchNorm, PyTorch's default init: the model
    'default': ('default', {}, 'default', {}),             # + warm-up and cosine decay: the shipped recipe
    # side branches: one change each
    'seed+cosine': ('seed', {}, 'default', {}),            # the classic model with the shipped schedule
    'kl-warmup': ('default', {}, 'default', dict(kl_warmup_epochs=1)),
    'z256': ('default', dict(latent_dim=256), 'default', {}),
    'nearest': ('default', dict(up='nearest'), 'default', {}),
    'gn': ('default', dict(norm='group', decoder_norm=True), 'default', {}),
    'res': ('default', dict(blocks=(0, 1, 1, 1)), 'default', {}),
    'res-gn': ('default', dict(norm='group', decoder_norm=True, blocks=(0, 1, 1, 1)), 'default', {}),
}


def machine() -> str:
    "lscpu's model name, which of its flags bear on speed (AVX2, AVX-512, bf16, AMX), and the loop's settings."
    try: info = dict(l.split(':', 1) for l in subprocess.run(['lscpu'], capture_output=True, text=True)
                     .stdout.splitlines() if ':' in l)
    except OSError: info = {}
    name = info.get('Model name', platform.processor() or 'unknown CPU').strip()
    flags = set(info.get('Flags', '').split())
    has = ', '.join(f"{f} {'yes' if f in flags else 'no'}" for f in ('avx2', 'avx512f', 'avx512_bf16', 'amx_bf16',
                                                                     'amx_tile'))
    return (f"lscpu model name {name!r}; flags: {has}; the loop's settings: {device_settings('cpu')}; "
            f"torch {torch.__version__}")


def build(name, seed, **cfg_kw):
    "The variant's model (initialised with `seed`) and its `TrainConfig`."
    preset, ov, recipe, tov = VARIANTS[name]
    seed_everything(seed)
    return make_vae(preset, 64, **ov), train_config(recipe, **dict(tov, ckpt_every=0, seed=seed, **cfg_kw))


def train(name, faces, tr, va, epochs, seed=0):
    "Train `name` for `epochs` passes over `tr` with the library's loop; evaluate once on `va`."
    m, cfg = build(name, seed, epochs=epochs)
    dl = FaceLoader(faces, tr, batch_size=cfg.batch_size, shuffle=True, flip=True, device='cpu', seed=seed)
    vdl = FaceLoader(faces, va, batch_size=250, shuffle=False, flip=False, device='cpu', drop_last=False)
    t = time.perf_counter()
    try: r = fit(m, dl, None, cfg, device='cpu', quiet=True)
    except FaceVAEError as e:                          # the loop's non-finite guard gave up: the variant diverged
        print(f"| {name} | {seed} | diverged: {str(e)[:80]} |", flush=True); return None
    ev = evaluate(m, vdl, seed=0)
    print(f"| {name} | {seed} | {r['step']} | {cfg.schedule} | {ev['psnr']:.2f} | {ev['kl']:.0f} | "
          f"{ev['nelbo_bpd']:.3f} | {sum(p.numel() for p in m.parameters())/1e6:.2f} | "
          f"{time.perf_counter() - t:.0f} |", flush=True)
    return ev


def speed(names, faces, steps=8, rounds=2, batch=128):
    "Images/s of `fit` over `steps` batches per variant, variants alternating over `rounds`; the best round is kept."
    dl = FaceLoader(faces, torch.arange(batch*steps) % len(faces), batch_size=batch, device='cpu')
    best = {}
    for r in range(rounds):
        now = {}
        for n in names:
            m, cfg = build(n, 0, epochs=1, batch_size=batch)
            fit(m, FaceLoader(faces, dl.indices[:batch*2], batch_size=batch, device='cpu'), None, cfg, device='cpu',
                quiet=True)                              # warm-up: first steps allocate
            t = time.perf_counter(); fit(m, dl, None, cfg, device='cpu', quiet=True)
            now[n] = batch*steps/(time.perf_counter() - t); best[n] = max(best.get(n, 0), now[n])
        print(f'round {r + 1}: ' + ', '.join(f'{n} {v:,.0f}' for n, v in now.items()), flush=True)
    print(f'\nmachine: {machine()}\n\n| variant | images/s | relative to default |\n|---|---:|---:|')
    for n in names: print(f"| {n} | {best[n]:,.0f} | {best[n]/best.get('default', best[n]):.2f} |")
    return best


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--speed', action='store_true', help='only time a training step of each variant')
    ap.add_argument('--quick', action='store_true', help='a smoke run of both modes')
    ap.add_argument('--epochs', type=int, default=2, help='passes over the 7,000 training faces (54 steps each)')
    ap.add_argument('--variants', default='all', help="comma-separated names, or 'all'")
    ap.add_argument('--seed', type=int, default=0, help='seed for initialisation, batch order and flips')
    ap.add_argument('--rounds', type=int, default=2, help='--speed: rounds over all variants (the best is kept)')
    ap.add_argument('--steps', type=int, default=8, help='--speed: timed training steps per variant and round')
    a = ap.parse_args()
    names = list(VARIANTS) if a.variants == 'all' else a.variants.split(',')
    bad = [n for n in names if n not in VARIANTS]
    if bad: raise SystemExit(f'unknown variant(s) {bad}; choose from {list(VARIANTS)}')
    if (SAMPLE/'img_align_celeba').is_dir() and not a.quick:
        faces = open_faces(SAMPLE, image_size=64); holdout = 1000
    else:
        print(f'{SAMPLE} not used: generated faces (the numbers mean nothing)')
        faces = open_faces('generated', image_size=64, n=600); holdout = 100
    if a.speed or a.quick:
        speed(names, faces, steps=1 if a.quick else a.steps, rounds=1 if a.quick else a.rounds)
        if a.speed: return
    tr, va = faces.indices('train', holdout), faces.indices('valid', holdout)
    print(f'\nmachine: {machine()}; {len(tr)} training faces, {len(va)} validation faces\n')
    print('| variant | seed | steps | schedule | PSNR (dB) | KL (nats) | bits/dim | params (M) | seconds |')
    print('|---|---:|---:|---|---:|---:|---:|---:|---:|')
    for n in names: train(n, faces, tr, va, 1 if a.quick else a.epochs, seed=a.seed)


if __name__ == '__main__':
    main()
