"""The latent-space figures of real (tiny) training runs and of a CelebA folder passed by name. Active units, the
statistics, PCA, encoding a split, the figures and their options are checked in nbs/07_latents.ipynb."""
import numpy as np
import pytest
import torch
from PIL import Image

from facevae_nb.core import FaceVAEError
from facevae_nb.data import write_celeba
from facevae_nb.latents import encode_split, latent_figures
from facevae_nb.model import make_vae, save_vae, load_run


pytestmark = pytest.mark.usefixtures('one_thread')   # tiny tensors: see conftest.one_thread


# plumbing: a hand-written CelebA folder passed as `data` by name, too much set-up for the page
def test_latent_figures_writes_pngs(tmp_path):
    torch.manual_seed(0)
    model = make_vae('default', image_size=16, widths=(8, 16), latent_dim=6)
    run = tmp_path/'run'; save_vae(model, run/'model.safetensors')
    rng = np.random.default_rng(1)
    src = write_celeba(tmp_path/'celeba', rng.integers(0, 256, (30, 22, 18, 3), dtype=np.uint8),
                       rng.random((30, 40)) < 0.5, np.arange(30) % 3)
    paths = latent_figures(run, str(src), out=tmp_path/'figs'/'lat.png', split='all', k=4, ncols=2,
                           attr='Eyeglasses', device='cpu')
    assert [p.name for p in paths] == ['lat.png', 'lat_mu_hist.png', 'lat_z_hist.png']
    for p in paths:
        im = Image.open(p); assert im.format == 'PNG' and im.size[0] > 100
    assert not list((tmp_path/'figs').glob('.*'))               # no temporary files left


# plumbing: a real training run (run_training) with a holdout, in a folder of its own; too much set-up for the page
def test_latent_figures_on_a_holdout_run(tmp_path):
    "A real (tiny) training run with a holdout: the figures encode exactly the held-out faces, found from config.json."
    from facevae_nb.train_command import run_training
    from facevae_nb.runs import run_faces, run_split
    rng = np.random.default_rng(2)
    src = write_celeba(tmp_path/'celeba', rng.integers(0, 256, (40, 22, 18, 3), dtype=np.uint8),
                       rng.random((40, 40)) < 0.5, np.zeros(40, int))            # all 'train', like celeba-sample
    run = run_training(str(src), out=str(tmp_path/'run'), image_size=16, epochs=1, batch_size=10, latent_dim=4,
                       widths='8,16', holdout=10, amp=False, device='cpu', quiet=True)
    faces = run_faces(run)
    assert faces.image_size == 16 and len(faces) == 40
    valid = run_split(run, faces, 'valid')
    assert sorted(faces.names[i] for i in valid) == [f'{i:06d}.jpg' for i in range(31, 41)]
    with pytest.raises(FaceVAEError, match='no separate test split'): run_split(run, faces, 'test')
    enc = encode_split(load_run(run, device='cpu'), faces, 'valid', index=valid)
    assert len(enc) == 10 and torch.equal(enc.index, valid)
    paths = latent_figures(run, out=tmp_path/'l.png', k=4, attr='Male', device='cpu')   # data and split from the run
    assert [p.name for p in paths] == ['l.png', 'l_mu_hist.png', 'l_z_hist.png'] and all(p.is_file() for p in paths)


# plumbing: a real training run on a hand-written CelebA folder without validation faces; too much set-up for the page
def test_latent_figures_on_a_run_without_validation_faces(tmp_path):
    "A run trained on a subset that lies inside the official training split: the figures show its training faces."
    import warnings
    from facevae_nb.train_command import run_training
    rng = np.random.default_rng(3)
    src = write_celeba(tmp_path/'celeba', rng.integers(0, 256, (30, 22, 18, 3), dtype=np.uint8),
                       rng.random((30, 40)) < 0.5, np.zeros(30, int))            # no 'valid' faces, no holdout
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        run = run_training(str(src), out=str(tmp_path/'run'), image_size=16, epochs=1, batch_size=10, latent_dim=4,
                           widths='8,16', amp=False, device='cpu', quiet=True)
    with pytest.warns(UserWarning, match='no validation faces.*training faces instead') as rec:
        paths = latent_figures(run, out=tmp_path/'l.png', k=2, device='cpu')
    assert all(p.is_file() for p in paths) and all('\n' not in str(r.message) for r in rec)
    with pytest.raises(FaceVAEError, match="'test' split .* is empty"):                     # only 'valid' falls back
        latent_figures(run, out=tmp_path/'l.png', split='test', k=2, device='cpu')
