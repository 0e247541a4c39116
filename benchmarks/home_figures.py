"""The home page's two pictures (nbs/images/home_samples.jpg, nbs/images/home_smile.jpg) from a trained run.

  python benchmarks/home_figures.py RUN [--attr Smiling] [--weights 0,1,2] [--seed 0]

Both show only what the model makes, never dataset images: 16 faces decoded from codes of the run's prior (enlarged
2x, bicubic), and three of those faces treated as photos and edited as `facevae edit --image` edits a photo: each is
enlarged 3x (bicubic) into the face frame of a photo (`figures.photo_frame`, edges repeated around it), and
`figures.edit_photo` adds the attribute with the library's default method and the run's cached vectors
(`run_vectors`) as a residual at the photo's size. The picture shows each photo's face frame.
"""
import argparse
from pathlib import Path

import torch
import torch.nn.functional as F

from facevae_nb.core import save_grid
from facevae_nb.model import load_run
from facevae_nb.generate import sample_faces
from facevae_nb.vector_cache import run_vectors
from facevae_nb.figures import photo_frame, edit_photo

ROOT = Path(__file__).resolve().parents[1]


def big(x, k=2): return F.interpolate(x, scale_factor=k, mode='bicubic', align_corners=False).clamp(0, 1)


if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('run')
    ap.add_argument('--attr', default='Smiling')
    ap.add_argument('--weights', default='0,1,2')
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
    pick = [int(i) for i in a.faces.split(',')]
    ws = [float(w) for w in a.weights.split(',')]
    vecs = run_vectors(a.run)
    S, k = model.image_size, 3
    W = round(k*S*178/128); H = round(W*218/178)                  # a photo whose face frame is the face enlarged k times
    l, t, s = (round(v) for v in photo_frame(W, H, S))
    cells = []
    for i in pick:
        face = F.interpolate(x[i:i + 1], size=(s, s), mode='bicubic', align_corners=False).clamp(0, 1)
        photo = (F.pad(face, (l, W - l - s, t, H - t - s), mode='replicate')[0]*255).round().to(torch.uint8)
        for w in ws:
            e = edit_photo(model, photo, {a.attr: w}, vecs)
            cells.append(e[:, t:t + s, l:l + s].float()/255)          # the face frame of the edited photo
    save_grid(torch.stack(cells), out/'home_smile.jpg', nrow=len(ws))
    print('wrote', out/'home_samples.jpg', out/'home_smile.jpg')
