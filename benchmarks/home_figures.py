"""The home page's two pictures (nbs/images/home_samples.jpg, nbs/images/home_smile.jpg) from a trained run.

  python benchmarks/home_figures.py RUN [--attr Smiling] [--weights 0,0.5,1,1.5,2] [--seed 0]

Both show only what the model makes: faces decoded from codes of the run's prior (never dataset images), and three
of those faces with an attribute added by the library's default edit (`facevae_nb.arithmetic.edit_faces` with the
run's cached vectors, `run_vectors`). Images are enlarged 2x (bicubic) so that 64 px faces read on the page.
"""
import argparse
from pathlib import Path

import torch
import torch.nn.functional as F

from facevae_nb.core import save_grid
from facevae_nb.model import load_run
from facevae_nb.generate import prior_noise, sample_faces
from facevae_nb.arithmetic import run_vectors, edit_faces

ROOT = Path(__file__).resolve().parents[1]


def big(x, k=2): return F.interpolate(x, scale_factor=k, mode='bicubic', align_corners=False).clamp(0, 1)


if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('run')
    ap.add_argument('--attr', default='Smiling')
    ap.add_argument('--weights', default='0,0.5,1,1.5,2')
    ap.add_argument('--faces', default='0,1,2', help='which of the sampled faces (positions in the samples grid) to edit')
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--temperature', type=float, default=0.8)
    ap.add_argument('--out', default=str(ROOT/'nbs'/'images'))
    a = ap.parse_args()
    model = load_run(a.run, device='cpu')
    torch.set_grad_enabled(False)
    out = Path(a.out)
    x = sample_faces(model, n=16, temperature=a.temperature, seed=a.seed)
    save_grid(big(x), out/'home_samples.jpg', nrow=8)
    z = model.prior_codes(prior_noise(16, model.latent_dim, a.temperature, a.seed))
    pick = [int(i) for i in a.faces.split(',')]
    ws = [float(w) for w in a.weights.split(',')]
    vecs = run_vectors(a.run)
    rows = [edit_faces(model, z[pick], {a.attr: w}, vecs) for w in ws]      # one column per weight
    strip = torch.stack(rows, 1).reshape(-1, *rows[0].shape[1:])
    save_grid(big(strip), out/'home_smile.jpg', nrow=len(ws))
    print('wrote', out/'home_samples.jpg', out/'home_smile.jpg')
