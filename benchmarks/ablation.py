"""Model ablation for facevae_nb: speed of each variant and quality after the same number of training steps.

  python benchmarks/ablation.py --speed                    # images/s of forward+backward, batch 128, bf16 + channels_last
  python benchmarks/ablation.py --steps 400 --batch-size 64 # train each variant the same number of steps, print PSNR/bpd
  python benchmarks/ablation.py --quick                    # a tiny smoke run of both modes

Data: ../shared/data/celeba-sample (real CelebA, 89x109 images; the 64 px centre crop of 128/178 of the width),
decoded with PIL once into an uint8 tensor cached under /tmp. Training images come from the first ids, validation
from the last 1,000 ids (as in the project's benchmarks). Without the data it falls back to random blobs.
Variants train the same number of steps (not the same time), so results do not depend on other load on the machine;
the speed table says what each costs per step.
"""
import argparse, math, time, os, sys
from pathlib import Path

import numpy as np
import torch

from facevae_nb.model import make_vae
from facevae_nb.loss import vae_loss, kl_divergence, calibrated_nelbo_bpd, psnr_from_mse

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT.parent / 'shared' / 'data' / 'celeba-sample'

SEED_T = dict(opt='adam', lr=1e-3, onecycle=False, kl_warmup=0.0, clip=None)       # the classic recipe
DEF_T = dict(opt='adamw', lr=2e-3, onecycle=True, kl_warmup=0.1, clip=None)        # one-cycle LR + KL warm-up
CAL = dict(recon='gaussian', sigma='optimal')
VARIANTS = {  # name: (preset, model overrides, train settings); the first block is cumulative, from seed to default
    'seed': ('seed', {}, SEED_T),
    'seed+calibrated': ('seed', CAL, SEED_T),
    '+silu-nonorm': ('seed', dict(CAL, norm='none', act='silu', init='default'), SEED_T),
    '+onecycle-klwarmup': ('seed', dict(CAL, norm='none', act='silu', init='default'), DEF_T),
    '+z128': ('seed', dict(CAL, norm='none', act='silu', init='default', latent_dim=128), DEF_T),
    # side branches, each one change from '+silu-nonorm'
    '+cosine-lr1e-3': ('seed', dict(CAL, norm='none', act='silu', init='default'), dict(SEED_T, onecycle=True)),
    '+z256': ('seed', dict(CAL, norm='none', act='silu', init='default', latent_dim=256), SEED_T),
    '+nearest': ('seed', dict(CAL, norm='none', act='silu', init='default', up='nearest'), SEED_T),
    '+res-nonorm': ('seed', dict(CAL, norm='none', act='silu', init='default', blocks=(0, 1, 1, 1)), SEED_T),
    '+gn': ('seed', dict(CAL, norm='group', decoder_norm=True, act='silu', init='default'), SEED_T),
    '+res-gn': ('seed', dict(CAL, norm='group', decoder_norm=True, act='silu', init='default', blocks=(0, 1, 1, 1)), SEED_T),
    'seed+calibrated+gn': ('seed', dict(CAL, norm='group', decoder_norm=True, act='silu', init='default'), SEED_T),
    '+clip1': ('seed', dict(CAL, norm='none', act='silu', init='default'), dict(DEF_T, clip=1.0)),
    '+res': ('seed', dict(CAL, norm='none', act='silu', init='default', blocks=(0, 1, 1, 1)), DEF_T),
    '+res-gn': ('seed', dict(CAL, norm='group', decoder_norm=True, act='silu', init='default', blocks=(0, 1, 1, 1)), DEF_T),
    # the shipped default preset (= '+silu-nonorm') and its optimizer settings
    'default': ('default', {}, SEED_T),
    # first tries (z=128, AdamW 2e-3 one-cycle, KL warm-up, gradient clipping at 1.0)
    'plain-gn': ('default', dict(latent_dim=128, norm='group'), dict(DEF_T, clip=1.0)),
    'plain-nonorm': ('default', dict(latent_dim=128), dict(DEF_T, clip=1.0)),
    'res-gn': ('default', dict(latent_dim=128, norm='group', decoder_norm=True, blocks=(0, 1, 1, 1)), dict(DEF_T, clip=1.0)),
}


def load_faces(n_train, n_valid, size=64):
    "uint8 (N,3,size,size) train and valid tensors from celeba-sample (centre crop, like build_cache)."
    cache = Path('/tmp') / f'facevae_ablation_{n_train}_{n_valid}_{size}.pt'
    if cache.exists(): return torch.load(cache, weights_only=True)
    from PIL import Image
    files = sorted((SAMPLE / 'img_align_celeba').glob('*.jpg'))
    if len(files) < n_train + n_valid: raise SystemExit(f'need {n_train + n_valid} images in {SAMPLE}')
    def dec(fs):
        out = np.empty((len(fs), 3, size, size), np.uint8)
        for i, f in enumerate(fs):
            im = Image.open(f).convert('RGB')
            w, h = im.size
            c = round(w * 128 / 178)
            l, t = (w - c) // 2, (h - c) // 2
            im = im.crop((l, t, l + c, t + c))
            if c != size: im = im.resize((size, size), Image.BILINEAR)
            out[i] = np.asarray(im).transpose(2, 0, 1)
        return torch.from_numpy(out)
    d = dict(train=dec(files[:n_train]), valid=dec(files[-n_valid:]))
    torch.save(d, cache)
    return d


def speed(names, batch=128, size=64, iters=6):
    x = torch.rand(batch, 3, size, size).contiguous(memory_format=torch.channels_last)
    rows = []
    for name in names:
        preset, ov, _ = VARIANTS[name]
        m = make_vae(preset, size, **ov).to(memory_format=torch.channels_last)
        opt = torch.optim.Adam(m.parameters(), 1e-4)
        ts = []
        for i in range(iters + 2):
            t = time.perf_counter()
            with torch.autocast('cpu', torch.bfloat16):
                out = m(x)
            r = vae_loss(m, x, out)
            opt.zero_grad(); r['loss'].backward(); opt.step()
            ts.append(time.perf_counter() - t)
        best = min(ts[2:])
        med = sorted(ts[2:])[len(ts[2:]) // 2]
        np_ = sum(p.numel() for p in m.parameters()) / 1e6
        rows.append((name, np_, batch / med, batch / best))
        print(f'{name:18s} {np_:6.2f}M params  {batch/med:7.0f} img/s (median)  {batch/best:7.0f} img/s (best)', flush=True)
    return rows


@torch.no_grad()
def evaluate(m, xv, bs=250):
    m.eval()
    sse, kl, n = 0., 0., 0
    for i in range(0, len(xv), bs):
        x = xv[i:i + bs].float().div(255).contiguous(memory_format=torch.channels_last)
        with torch.autocast('cpu', torch.bfloat16):
            mu, lv = m.encode(x)
            xh = m.decode(mu)
        sse += (xh.float() - x).pow(2).sum().item(); kl += kl_divergence(mu, lv).sum().item(); n += len(x)
    m.train()
    D = xv[0].numel()
    mse = sse / (n * D)
    return dict(psnr=float(psnr_from_mse(mse)), kl=kl / n, bpd=calibrated_nelbo_bpd(mse * 255**2, kl / n, D))


def train(name, data, steps, bs, seed=0):
    preset, ov, ts = VARIANTS[name]
    torch.manual_seed(seed)
    m = make_vae(preset, 64, **ov).to(memory_format=torch.channels_last)
    Opt = torch.optim.AdamW if ts['opt'] == 'adamw' else torch.optim.Adam
    opt = Opt(m.parameters(), ts['lr'], **({'weight_decay': 1e-4} if ts['opt'] == 'adamw' else {}))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, ts['lr'], total_steps=steps, pct_start=0.1) if ts['onecycle'] else None
    xt = data['train']
    g = torch.Generator().manual_seed(seed)
    t0 = time.perf_counter()
    for step in range(steps):
        idx = torch.randint(0, len(xt), (bs,), generator=g)
        x = xt[idx].float().div(255)
        flip = torch.rand(bs, generator=g) < 0.5
        x[flip] = x[flip].flip(-1)
        x = x.contiguous(memory_format=torch.channels_last)
        klw = min(1., (step + 1) / (ts['kl_warmup'] * steps)) if ts['kl_warmup'] else 1.0
        with torch.autocast('cpu', torch.bfloat16):
            out = m(x)
        r = vae_loss(m, x, out, kl_weight=klw)
        opt.zero_grad(set_to_none=True); r['loss'].backward()
        if ts['clip']: torch.nn.utils.clip_grad_norm_(m.parameters(), ts['clip'])
        opt.step()
        if sched: sched.step()
    secs = time.perf_counter() - t0
    ev = evaluate(m, data['valid'])
    print(f"{name:18s} seed={seed} steps={steps} bs={bs} {secs:6.1f}s  valid PSNR {ev['psnr']:.2f} dB  KL {ev['kl']:.1f} nats  "
          f"calibrated {ev['bpd']:.3f} bits/dim", flush=True)
    return m, ev


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--speed', action='store_true', help='only measure images/s')
    ap.add_argument('--quick', action='store_true', help='tiny smoke run')
    ap.add_argument('--steps', type=int, default=300)
    ap.add_argument('--size', type=int, default=64, help='image size for --speed')
    ap.add_argument('--batch-size', type=int, default=64)
    ap.add_argument('--n-train', type=int, default=7000)
    ap.add_argument('--variants', default='seed,seed+calibrated,default', help="comma-separated names, or 'all'")
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--seed', type=int, default=0, help='seed for init, batches and flips')
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    names = list(VARIANTS) if a.variants == 'all' else a.variants.split(',')
    if a.speed or a.quick:
        speed(names, batch=16 if a.quick else 128, size=a.size, iters=1 if a.quick else 6)
        if a.speed: return
    if a.quick: a.steps, a.batch_size, a.n_train = 3, 8, 64
    n_valid = 64 if a.quick else 1000
    if (SAMPLE / 'img_align_celeba').is_dir(): data = load_faces(a.n_train, n_valid)
    else:
        print(f'{SAMPLE} not found: using random data (numbers are meaningless)')
        data = dict(train=torch.randint(0, 256, (a.n_train, 3, 64, 64), dtype=torch.uint8),
                    valid=torch.randint(0, 256, (n_valid, 3, 64, 64), dtype=torch.uint8))
    for n in names: train(n, data, a.steps, a.batch_size, seed=a.seed)


if __name__ == '__main__':
    main()
