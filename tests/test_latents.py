"The latent space: active units, per-dimension statistics, PCA, encoding a split, the figures and their files."
import math

import numpy as np
import pytest
import torch
from PIL import Image

from facevae_nb.core import FaceVAEError
from facevae_nb.data import FaceCache, CELEBA_ATTRS, write_celeba
from facevae_nb.latents import (Encodings, active_units, latent_stats, pca, pick_dims, plot_latent_hists,
                                plot_kl_per_dim, plot_aggregate, plot_pca, latent_summary, encode_split,
                                latent_figures)
from facevae_nb.generate import encode_images
from facevae_nb.model import make_vae, save_vae, load_run


pytestmark = pytest.mark.usefixtures('one_thread')   # tiny tensors: see conftest.one_thread


def planted(n=3000, d=12, active=(1, 4, 5, 9), seed=0):
    "Encodings whose active dimensions are known: `active` vary with x, the rest collapse to the prior."
    g = torch.Generator().manual_seed(seed)
    mu = 0.03*torch.randn(n, d, generator=g)                      # Var = 0.0009 < 0.01: inactive
    logvar = torch.zeros(n, d)
    for j, i in enumerate(active):
        s2 = 0.05 + 0.2*j                                          # different strengths, all > 0.01
        mu[:, i] = math.sqrt(s2)*torch.randn(n, generator=g)
        logvar[:, i] = math.log(1 - s2)                            # aggregate variance stays 1
    attrs = torch.zeros(n, 40, dtype=torch.bool)
    attrs[:, CELEBA_ATTRS.index('Smiling')] = mu[:, active[-1]] > 0
    return Encodings(mu, logvar, attrs, torch.arange(n), 'valid')


def test_active_units_known_dims():
    enc = planted()
    mask = active_units(enc.mu)
    assert mask.dtype == torch.bool and mask.shape == (12,)
    assert mask.nonzero().flatten().tolist() == [1, 4, 5, 9]
    # threshold between the weakest (0.05) and the next (0.25) active unit
    assert active_units(enc.mu, threshold=0.15).nonzero().flatten().tolist() == [4, 5, 9]
    # a unit with large *posterior* variance but a constant mean is inactive (what matters is Var_x of E[z|x])
    mu = torch.zeros(100, 3); mu[:, 0] = torch.linspace(-1, 1, 100)
    assert active_units(mu).tolist() == [True, False, False]
    with pytest.raises(FaceVAEError, match='at least 2'): active_units(mu[:1])


def test_latent_stats_match_direct_computation():
    enc = planted()
    st = latent_stats(enc)
    torch.testing.assert_close(st['mean'], enc.mu.mean(0))
    torch.testing.assert_close(st['var_mu'], enc.mu.var(0, unbiased=False))
    torch.testing.assert_close(st['mean_var'], enc.logvar.exp().mean(0))
    torch.testing.assert_close(st['agg_var'], torch.ones(12), atol=0.1, rtol=0)
    kl = (0.5*(enc.mu**2 + enc.logvar.exp() - 1 - enc.logvar)).mean(0)
    torch.testing.assert_close(st['kl'], kl)
    assert set(st['kl'].argsort(descending=True)[:4].tolist()) == {1, 4, 5, 9}
    assert pick_dims(enc, 4, 'kl') == st['kl'].argsort(descending=True)[:4].tolist()
    assert pick_dims(enc, 100, 'first') == list(range(12))       # k is capped at the latent size


def test_pca_recovers_planted_direction():
    g = torch.Generator().manual_seed(0)
    u = torch.nn.functional.normalize(torch.randn(20, generator=g), dim=0)
    x = 0.1*torch.randn(1000, 20, generator=g) + 5*torch.randn(1000, 1, generator=g)*u + 3.0
    proj, comps, ratio = pca(x, k=3)
    assert abs(float(comps[0] @ u)) > 0.999
    torch.testing.assert_close(comps @ comps.T, torch.eye(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(proj.mean(0), torch.zeros(3), atol=1e-4, rtol=0)
    assert ratio[0] > 0.9 and ratio.sum() <= 1 + 1e-6
    assert (ratio[:-1] >= ratio[1:]).all()


def test_figures_have_expected_axes_and_titles():
    enc = planted()
    fig = plot_latent_hists(enc, k=50, order='first', ncols=10)
    assert len(fig.axes) == 20                                   # 12 dims -> 2 rows of 10, 8 panels switched off
    assert [a.get_title().split()[0] for a in fig.axes[:12]] == [f'z{i}' for i in range(12)]
    assert not fig.axes[15].axison
    assert all(len(a.lines) == 1 for a in fig.axes[:12])         # the N(0,1) curve in each
    assert fig._suptitle.get_text().startswith('posterior means E[z|x] of 3000 images (valid)')
    fz = plot_latent_hists(enc, k=4, which='z')
    assert {a.get_title().split()[0] for a in fz.axes[:4]} == {'z1', 'z4', 'z5', 'z9'}
    assert 'sampled z' in fz._suptitle.get_text()
    with pytest.raises(FaceVAEError, match="'mu' or 'z'"): plot_latent_hists(enc, which='sigma')

    ax = plot_kl_per_dim(enc).axes[0]
    assert ax.get_title() == 'KL per dimension: 4 of 12 units active'
    assert ax.get_xlabel() == 'latent dimension (sorted by KL)' and ax.get_ylabel() == 'KL (nats)'
    assert [t.get_text() for t in ax.get_xticklabels()][:4] == [str(i) for i in (9, 5, 4, 1)]

    a0, a1 = plot_aggregate(enc).axes
    assert 'prior: 0' in a0.get_title() and 'prior: 1' in a1.get_title()
    assert len(a0.patches) == 12 and len(a1.patches) == 24
    assert a1.lines[0].get_ydata()[0] == 1 and a0.lines[0].get_ydata()[0] == 0

    ax = plot_pca(enc, 'smiling').axes[0]                         # attribute names in any case
    assert ax.get_title() == 'PCA of the posterior means, by smiling'
    assert sorted(t.get_text().split(' (')[0] for t in ax.get_legend().get_texts()) == ['not smiling', 'smiling']
    with pytest.raises(FaceVAEError): plot_pca(enc, 'Smilling')

    wide = Encodings(10*enc.mu, enc.logvar, enc.attrs)             # codes far outside ±4 are not cut off
    ax = plot_latent_hists(wide, k=1).axes[0]
    d = int(ax.get_title().split()[0][1:])                          # title 'z<d> KL ...'
    assert ax.get_xlim()[0] <= wide.mu[:, d].min() and ax.get_xlim()[1] >= wide.mu[:, d].max() > 4

    s = latent_summary(enc, 'Male')
    assert len(s.axes) == 4 and s._suptitle.get_text() == 'Latent space of 3000 images (valid)'
    import matplotlib.pyplot as plt; plt.close('all')


@pytest.fixture(scope='module')
def small():
    "A small untrained model and a 60-face dataset at its image size."
    torch.manual_seed(0)
    model = make_vae('default', image_size=16, widths=(8, 16), latent_dim=6)
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, (60, 3, 16, 16), dtype=np.uint8)
    cache = FaceCache(imgs, rng.random((60, 40)) < 0.5, np.arange(60) % 3, [f'{i+1:06d}.jpg' for i in range(60)])
    return model, cache


def test_encode_split_matches_model_and_batching(small):
    model, cache = small
    enc = encode_split(model, cache, 'train', batch_size=7)
    idx = cache.indices('train')
    assert len(enc) == len(idx) == 20 and enc.latent_dim == 6 and enc.split == 'train'
    assert torch.equal(enc.index, idx) and torch.equal(enc.attrs, cache.attrs[idx])
    with torch.no_grad():
        mu, lv = model.eval().encode(torch.from_numpy(cache.images[idx.numpy()]).float()/255)
    torch.testing.assert_close(enc.mu, mu, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(enc.logvar, lv, atol=1e-5, rtol=1e-5)
    mu2, _ = encode_images(model, torch.from_numpy(cache.images).float()/255, idx, batch_size=64)
    torch.testing.assert_close(mu2, enc.mu, atol=1e-5, rtol=1e-5)
    assert len(encode_split(model, cache, 'all', max_images=9)) == 9
    with pytest.raises(FaceVAEError, match='split'): encode_split(model, cache, 'training')
    with pytest.raises(FaceVAEError, match='image_size=32'):
        encode_split(make_vae('default', image_size=32, widths=(8, 16), latent_dim=6), cache)


def test_latent_figures_writes_pngs(small, tmp_path):
    model, _ = small
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
    with pytest.raises(FaceVAEError, match='no model'):
        latent_figures(tmp_path/'missing', str(src), out=tmp_path/'x.png')


def test_latent_figures_on_a_holdout_run(tmp_path):
    "A real (tiny) training run with a holdout: the figures encode exactly the held-out faces, found from config.json."
    from facevae_nb.train import run_training
    from facevae_nb.generate import run_faces, run_split
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


def test_latent_figures_on_a_run_without_validation_faces(tmp_path):
    "A run trained on a subset that lies inside the official training split: the figures show its training faces."
    import warnings
    from facevae_nb.train import run_training
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


@pytest.mark.parametrize('kw, msg', [(dict(k=0), 'k=0'), (dict(ncols=0), 'ncols=0'), (dict(batch_size=0), 'batch_size=0'),
                                     (dict(max_images=-1), 'max_images=-1'), (dict(threshold=math.nan), 'threshold=nan'),
                                     (dict(out='lat.gif'), 'not an image type'), (dict(split='val'), 'split must be'),
                                     (dict(order='abc'), 'order'), (dict(attr='abc'), 'unknown CelebA attribute')])
def test_latent_figures_options_are_checked_first(tmp_path, monkeypatch, kw, msg):
    "Every bad value is one clear error before the model is even loaded."
    import facevae_nb.latents as L
    monkeypatch.setattr(L, 'load_run', lambda *a, **k: pytest.fail('loaded the model before checking the options'))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FaceVAEError, match=msg): latent_figures(tmp_path/'run', **kw)


def test_latent_figures_damaged_config_is_named(small, tmp_path):
    model, _ = small
    run = tmp_path/'run'; save_vae(model, run/'model.safetensors')
    (run/'config.json').write_text('{"data": {"data": "gener')
    with pytest.raises(FaceVAEError, match=r'config.json is damaged'): latent_figures(run, out=tmp_path/'l.png')


def test_latent_figures_other_formats(small, tmp_path):
    model, cache = small
    run = tmp_path/'run'; save_vae(model, run/'model.safetensors')
    paths = latent_figures(run, cache, out=tmp_path/'lat.jpg', split='all', k=2, device='cpu')
    assert [p.name for p in paths] == ['lat.jpg', 'lat_mu_hist.jpg', 'lat_z_hist.jpg']
    assert all(Image.open(p).format == 'JPEG' for p in paths)
