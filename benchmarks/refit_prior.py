#!/usr/bin/env python3
"""Refit the prior of existing run folders (e.g. trained before prior refitting existed) and compare samples.

  python benchmarks/refit_prior.py runs/bench-default runs/bench-seed --out runs/bench-prior-samples.png

For each run: validation -ELBO (bits/dim, calibrated) under N(0, I) and under the fitted Gaussian prior, and a
figure with, per run, 16 samples from N(0, I) codes next to 16 from the fitted prior (same noise, temperature 1).
"""
import argparse
from pathlib import Path

import matplotlib; matplotlib.use('agg')
import matplotlib.pyplot as plt

from facevae_nb.core import image_grid
from facevae_nb.data import FaceLoader
from facevae_nb.generate import decode_codes, prior_noise
from facevae_nb.runs import run_faces, run_split
from facevae_nb.model import load_run
from facevae_nb.train import fit_run_prior

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument('runs', nargs='+')
ap.add_argument('--out', default='runs/bench-prior-samples.png')
ap.add_argument('--temperature', type=float, default=1.0)
a = ap.parse_args()
print('| run | val bits/dim, N(0,I) prior | val bits/dim, fitted prior | val PSNR |\n|---|---|---|---|')
panels = []
for run in map(Path, a.runs):
    faces = run_faces(run)
    dl = lambda split: FaceLoader(faces, run_split(run, faces, split), batch_size=256, shuffle=False, flip=False,
                                  device='cpu', drop_last=False)
    r = fit_run_prior(run, dl('train'), dl('valid'))
    print(f"| {run.name} | {r['standard']['nelbo_bpd']:.3f} | {r['fitted']['nelbo_bpd']:.3f} | {r['fitted']['psnr']:.2f} |")
    m = load_run(run, device='cpu')
    eps = prior_noise(16, m.latent_dim, a.temperature, seed=0)
    panels += [(f'{run.name}: N(0, I)', decode_codes(m, eps)), (f'{run.name}: fitted prior', decode_codes(m, m.prior_codes(eps)))]
fig, axs = plt.subplots(1, len(panels), figsize=(3*len(panels), 3.3))
for ax, (t, x) in zip(axs, panels):
    ax.imshow(image_grid(x, nrow=4).permute(1, 2, 0).numpy()); ax.set_title(t, fontsize=9); ax.axis('off')
fig.tight_layout(); fig.savefig(a.out, dpi=80)
print(f'\nsamples (temperature {a.temperature}, same noise in every panel): {a.out}')
