"""Milliseconds per training step of `default` (64 px, batch 128, this project's loop with its defaults) on the CPU.

To compare two versions of the code side by side on the same machine, alternate them (a worktree of the older one):

    git worktree add /tmp/old REV
    for i in 1 2; do PYTHONPATH=/tmp/old python benchmarks/step_time.py 60; python benchmarks/step_time.py 60; done
"""
import sys, time
import torch
import facevae_nb
from facevae_nb.core import seed_everything
from facevae_nb.faces import open_faces
from facevae_nb.data import FaceLoader
from facevae_nb.model import make_vae
from facevae_nb.train import fit, train_config

steps = int(sys.argv[1]) if len(sys.argv) > 1 else 60
faces = open_faces('generated', image_size=64, n=4000)
seed_everything(0); m = make_vae('default', 64)
dl = FaceLoader(faces, torch.arange(128*steps) % len(faces), batch_size=128, device='cpu')
t = time.perf_counter()
fit(m, dl, None, train_config('default', epochs=1, ckpt_every=0), device='cpu', quiet=True)
print(f'{facevae_nb.__file__}: {(time.perf_counter() - t)/steps*1000:.1f} ms/step over {steps} steps')
