"""Training benchmarks for issue 4 ("Numbers to reach"); prints markdown tables.

  1. speed:   this project's loop training the `seed` preset vs the classic pipeline (PIL Dataset + CenterCrop +
              ToTensor, DataLoader(batch_size=128, shuffle=True), fp32, Adam): images/s.
  2. quality: --minutes of training each: `default` in our loop vs the classic recipe vs `seed` in our loop;
              validation PSNR and calibrated -ELBO (bits/dim) on the last --holdout ids; prior samples side by side.
              The `default` run folder is kept (runs/bench-default) for figures.
  3. amp:     bf16 vs fp32 training of `default` for the same --amp-epochs: validation PSNR.
  4. gpu:     (CUDA only) generated faces at CelebA's size and count; images/s and seconds per 162,770-image
              epoch for both presets.

Every number here comes from the library's own loop (`fit`, `run_training`) and `train.evaluate`, except the classic
pipeline's: its loop (`classic_train`, below) is the point of comparisons 1 and 2 (a PIL Dataset + DataLoader feeding
plain Adam steps, as the classic recipe does), so it stays a loop of its own on purpose.

Full run (on a quiet machine, ~45 min on 2 CPU cores):  python benchmarks/bench_train.py --which 1,2,3
GPU:                                                    python benchmarks/bench_train.py --which 4
Check that it works (a minute or two):                  python benchmarks/bench_train.py --quick
"""
import argparse, json, sys, time
from pathlib import Path

import numpy as np
import torch

from facevae_nb.core import seed_everything, image_grid, device_settings
from facevae_nb.data import FaceLoader, build_cache, read_celeba
from facevae_nb.model import make_vae, load_run
from facevae_nb.loss import vae_loss
from facevae_nb.train import evaluate, fit, train_config
from facevae_nb.train_command import run_training

ROOT = Path(__file__).resolve().parents[1]
CELEBA_EPOCH = 162_770


def table(rows, cols):
    "A markdown table of dicts."
    fmt = lambda v: f'{v:,.2f}' if isinstance(v, float) else str(v)
    out = ['| ' + ' | '.join(cols) + ' |', '|' + '---|'*len(cols)]
    out += ['| ' + ' | '.join(fmt(r.get(c, '')) for c in cols) + ' |' for r in rows]
    return '\n'.join(out)


# --- the classic pipeline -----------------------------------------------------------------------------------------

class ClassicCelebA(torch.utils.data.Dataset):
    "torchvision-style: open each JPEG with PIL on every access, CenterCrop, (Resize), ToTensor."
    def __init__(self, paths, image_size=64, crop_frac=128/178):
        from torchvision import transforms as T
        from PIL import Image
        self.paths, self.Image = paths, Image
        w = Image.open(paths[0]).size[0]
        crop = round(crop_frac * w)
        tf = [T.CenterCrop(crop)] + ([T.Resize(image_size)] if crop != image_size else []) + [T.ToTensor()]
        self.tf = T.Compose(tf)
    def __len__(self): return len(self.paths)
    def __getitem__(self, i): return self.tf(self.Image.open(self.paths[i]).convert('RGB'))


def classic_loader(data, train_names, image_size):
    ix = read_celeba(data)
    byname = dict(zip(ix.names, ix.paths()))
    ds = ClassicCelebA([byname[n] for n in train_names], image_size)
    return torch.utils.data.DataLoader(ds, batch_size=128, shuffle=True)   # default workers (0), as in the recipe


def classic_train(dl, model, seconds=None, max_steps=None):
    "The classic loop, kept on purpose (it is what is compared): fp32, Adam(1e-3), SSE + KL; returns (images, steps, seconds)."
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train(); n = steps = 0; t0 = time.perf_counter()
    while True:
        for x in dl:
            loss = vae_loss(model, x)['loss']
            opt.zero_grad(); loss.backward(); opt.step()
            n += len(x); steps += 1
            el = time.perf_counter() - t0
            if (seconds and el >= seconds) or (max_steps and steps >= max_steps): return n, steps, el


# --- helpers ---------------------------------------------------------------------------------------------------------

def open_data(a):
    cache = build_cache(a.data, image_size=a.image_size)
    tr, va = cache.indices('train', a.holdout), cache.indices('valid', a.holdout)
    return cache, tr, va


def our_speed(cache, tr, preset, steps, device='cpu', batch_size=128, compile=False, warm=3):
    "Images/s of `fit` (this project's loop) over `steps` steps, after `warm` warm-up steps (not timed)."
    res = {}
    for k, n in (('warm', warm), ('timed', steps)):
        seed_everything(0)
        m = res.get('model') or make_vae(preset, cache.image_size)
        dl = FaceLoader(cache, tr[:n*batch_size], batch_size=batch_size, device=device)
        cfg = train_config(preset, epochs=1, batch_size=batch_size, compile=compile, ckpt_every=0)
        if device != 'cpu' and torch.cuda.is_available(): torch.cuda.synchronize()
        t = time.perf_counter(); fit(m, dl, None, cfg, out=None, device=device, quiet=True)
        if device != 'cpu' and torch.cuda.is_available(): torch.cuda.synchronize()
        res[k] = time.perf_counter() - t; res['model'] = m
    return steps*batch_size / res['timed']


def bench_speed(a):
    cache, tr, va = open_data(a)
    steps = 4 if a.quick else 40
    ours = our_speed(cache, tr, 'seed', steps)
    dl = classic_loader(a.data, [cache.names[i] for i in tr.tolist()], a.image_size)
    seed_everything(0); m = make_vae('seed', a.image_size)
    classic_train(dl, m, max_steps=2)                           # warm-up
    n, s, el = classic_train(dl, m, max_steps=steps)
    rows = [dict(pipeline='classic (PIL + DataLoader, fp32, Adam)', **{'images/s': n/el}),
            dict(pipeline=f'this loop, seed preset (cache, {device_settings("cpu")})', **{'images/s': ours})]
    if a.compile:
        ours_c = our_speed(cache, tr, 'seed', steps, compile=True)
        rows.append(dict(pipeline='this loop, seed preset, + torch.compile', **{'images/s': ours_c}))
    print(f'\n### 1. Training speed, seed network, {a.image_size} px, batch 128, {torch.get_num_threads()} threads ({steps} steps)\n')
    print(table(rows, ['pipeline', 'images/s']))
    print(f'\nspeed-up: **{ours/(n/el):.2f}x** (goal >= 2.5x)' + (f'; with torch.compile **{ours_c/(n/el):.2f}x**' if a.compile else ''))


def bench_quality(a):
    cache, tr, va = open_data(a)
    mins, runs = a.minutes, {}
    valid = FaceLoader(cache, va, batch_size=256, shuffle=False, flip=False, device='cpu', drop_last=False)
    rows = []
    for preset in a.presets.split(','):
        out = Path(a.out)/f'bench-{preset}'
        if out.exists() and not a.keep_going: import shutil; shutil.rmtree(out)
        t = time.perf_counter()
        run_training(a.data, out=str(out), preset=preset, image_size=a.image_size, epochs=100000, max_minutes=mins,
                     holdout=a.holdout, resume=a.keep_going, quiet=True)
        m = load_run(out, device='cpu'); r = evaluate(m, valid); runs[f'{preset} (this loop)'] = m
        last = [json.loads(l) for l in (out/'metrics.jsonl').read_text().splitlines()][-1]
        rows.append(dict(run=f'{preset} in this loop', minutes=(time.perf_counter() - t)/60, steps=last['step'],
                         epochs=last['epoch'], psnr=r['psnr'], bpd=r['nelbo_bpd'], kl=r['kl']))
    dl = classic_loader(a.data, [cache.names[i] for i in tr.tolist()], a.image_size)
    seed_everything(0); m = make_vae('seed', a.image_size)
    n, steps, el = classic_train(dl, m, seconds=mins*60)
    r = evaluate(m, valid); runs['classic recipe'] = m
    rows.append(dict(run='classic recipe (classic pipeline + seed + Adam)', minutes=el/60, steps=steps,
                     epochs=round(n/len(tr), 3), psnr=r['psnr'], bpd=r['nelbo_bpd'], kl=r['kl']))
    print(f'\n### 2. {mins} minutes of training, validation on the last {a.holdout} ids ({len(tr)} training faces)\n')
    print(table(rows, ['run', 'minutes', 'steps', 'epochs', 'psnr', 'bpd', 'kl']))
    d, c = rows[0], rows[-1]
    print(f"\ndefault vs classic: {d['psnr']-c['psnr']:+.2f} dB PSNR (goal >= +2), {d['bpd']-c['bpd']:+.3f} bits/dim (goal < 0)"
          + (f"; default vs seed (same loop): {d['psnr']-rows[1]['psnr']:+.2f} dB, {d['bpd']-rows[1]['bpd']:+.3f} bits/dim"
             if len(rows) == 3 else ''))
    samples_figure(runs, Path(a.out)/'bench-samples.png')


def samples_figure(models, path, n=32):
    "Prior samples of each model side by side (same latent draws where the latent sizes agree)."
    import matplotlib; matplotlib.use('Agg'); import matplotlib.pyplot as plt
    fig, axs = plt.subplots(1, len(models), figsize=(4*len(models), 2.4), dpi=80)
    for ax, (name, m) in zip(np.atleast_1d(axs), models.items()):
        g = image_grid(m.sample(n, generator=torch.Generator().manual_seed(0), device='cpu'), nrow=8)
        ax.imshow(g.permute(1, 2, 0).numpy()); ax.set_title(name, fontsize=9); ax.axis('off')
    fig.tight_layout(); path.parent.mkdir(parents=True, exist_ok=True); fig.savefig(path); plt.close(fig)
    print(f'\nprior samples side by side: {path}')


def bench_amp(a):
    cache, tr, va = open_data(a)
    valid = FaceLoader(cache, va, batch_size=256, shuffle=False, flip=False, device='cpu', drop_last=False)
    rows = []
    for amp in (True, False):
        out = Path(a.out)/f'bench-amp-{"bf16" if amp else "fp32"}'
        if out.exists(): import shutil; shutil.rmtree(out)
        t = time.perf_counter()
        run_training(a.data, out=str(out), preset='default', image_size=a.image_size, epochs=a.amp_epochs,
                     holdout=a.holdout, amp=amp, quiet=True, limit=1024 if a.quick else None)
        r = evaluate(load_run(out, device='cpu'), valid)
        rows.append(dict(precision='bf16 autocast' if amp else 'fp32', epochs=a.amp_epochs,
                         minutes=(time.perf_counter() - t)/60, psnr=r['psnr'], bpd=r['nelbo_bpd']))
    print(f'\n### 3. bf16 vs fp32, default preset, {a.amp_epochs} epochs\n')
    print(table(rows, ['precision', 'epochs', 'minutes', 'psnr', 'bpd']))
    print(f"\nPSNR difference: {rows[0]['psnr'] - rows[1]['psnr']:+.3f} dB (goal: within 0.2)")


def bench_gpu(a):
    if not torch.cuda.is_available(): print('\n### 4. GPU: skipped (no CUDA device)'); return
    from facevae_nb.faces import open_faces
    t = time.perf_counter()
    cache = open_faces('generated', image_size=a.image_size, n=a.gpu_faces)
    build = time.perf_counter() - t
    tr = cache.indices('all')
    rows = []
    for preset in ('default', 'seed'):
        for bs in a.gpu_batch:
            ips = our_speed(cache, tr, preset, a.gpu_steps, device='cuda', batch_size=bs, compile=a.compile, warm=20)
            rows.append(dict(preset=preset, batch=bs, compile=a.compile, **{'images/s': ips,
                             's / CelebA epoch': CELEBA_EPOCH/ips, 'min / 50 epochs': 50*CELEBA_EPOCH/ips/60}))
    print(f'\n### 4. GPU ({torch.cuda.get_device_name()}), {a.image_size} px, {a.gpu_steps} steps, '
          f'{len(cache):,} generated faces (cache built in {build:.0f} s)\n')
    print(table(rows, ['preset', 'batch', 'compile', 'images/s', 's / CelebA epoch', 'min / 50 epochs']))
    print('\ngoal: default >= 30,000 images/s on one H100 (50 epochs in < 5 min)')


if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--data', default=str(ROOT.parent/'shared'/'data'/'celeba-sample'), help='CelebA folder')
    p.add_argument('--which', default='1,2,3,4', help='comma-separated benchmarks to run (1 speed, 2 quality, 3 amp, 4 gpu)')
    p.add_argument('--minutes', type=float, default=10.0, help='training budget per run in benchmark 2')
    p.add_argument('--presets', default='default,seed', help="benchmark 2: this loop's runs, 'default' first (the classic recipe always runs)")
    p.add_argument('--amp-epochs', type=int, default=3, help='epochs for benchmark 3')
    p.add_argument('--holdout', type=int, default=1000, help='validate on the last N ids')
    p.add_argument('--image-size', type=int, default=64)
    p.add_argument('--out', default=str(ROOT/'runs'), help='where run folders go (bench-default is kept for figures)')
    p.add_argument('--gpu-faces', type=int, default=202_599, help='generated faces for benchmark 4 (CelebA count)')
    p.add_argument('--gpu-steps', type=int, default=300, help='timed steps per preset in benchmark 4')
    p.add_argument('--gpu-batch', default='128,512', help='batch sizes for benchmark 4')
    p.add_argument('--compile', action='store_true', help='torch.compile: an extra row in benchmark 1, and the setting of benchmark 4')
    p.add_argument('--keep-going', action='store_true', help='benchmark 2: resume existing runs instead of restarting')
    p.add_argument('--threads', type=int, default=None, help="torch threads for every pipeline (default: torch's choice)")
    p.add_argument('--quick', action='store_true', help='tiny budgets, to check that everything runs')
    a = p.parse_args()
    if a.threads: torch.set_num_threads(a.threads)
    a.gpu_batch = [int(b) for b in a.gpu_batch.split(',')]
    if a.quick:
        a.minutes, a.amp_epochs, a.gpu_faces, a.gpu_steps = min(a.minutes, 0.25), 1, min(a.gpu_faces, 20000), min(a.gpu_steps, 30)
        if a.out == str(ROOT/'runs'): a.out = str(ROOT/'runs'/'quick')
    if not Path(a.data).exists() and set(a.which.split(',')) & {'1', '2', '3'}:
        sys.exit(f'{a.data} does not exist: pass --data PATH to a CelebA folder (benchmarks 1-3 need one)')
    from facevae_nb.speed import machine_line
    print(f'{machine_line()}\nthe rule picks {device_settings()}; data {a.data}')
    for w in a.which.split(','):
        {'1': bench_speed, '2': bench_quality, '3': bench_amp, '4': bench_gpu}[w.strip()](a)
