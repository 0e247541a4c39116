"Generating faces: interpolation geometry, reproducible sampling, reconstructions, interpolation endpoints, files."
import math

import pytest
import torch
from PIL import Image

from facevae_nb.core import FaceVAEError
from facevae_nb.generate import (lerp, slerp, prior_noise, latent_walk, sample_faces, reconstruct_faces, recon_grid,
                                 interpolate_faces, walk_faces, encode_faces, decode_codes, sample_to_file)
from facevae_nb.model import make_vae, save_vae


pytestmark = pytest.mark.usefixtures('one_thread')   # tiny tensors: see conftest.one_thread


@pytest.fixture(scope='module')
def model():
    torch.manual_seed(0)
    m = make_vae('default', image_size=16, widths=(8, 16), latent_dim=8)
    # perturb the weights so the model is not at its (partly symmetric) initialisation
    with torch.no_grad():
        for p in m.parameters(): p.add_(0.05*torch.randn_like(p))
    return m


@pytest.fixture(scope='module')
def faces():
    g = torch.Generator().manual_seed(1)
    return torch.rand(6, 3, 16, 16, generator=g)


@pytest.mark.parametrize('d', [2, 16, 512])
def test_slerp_endpoints_and_norms(d):
    g = torch.Generator().manual_seed(d)
    a, b = torch.randn(d, generator=g), 3*torch.randn(d, generator=g)
    ts = torch.linspace(0, 1, 11)
    p = slerp(a, b, ts)
    torch.testing.assert_close(p[0], a, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(p[-1], b, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(p.norm(dim=-1), (1-ts)*a.norm() + ts*b.norm(), atol=1e-4, rtol=1e-4)
    # the direction moves at constant angular speed along the great circle: equal angles between steps,
    # and every point lies in the plane of a and b
    cos = torch.nn.functional.cosine_similarity(p[:-1], p[1:], dim=-1)
    torch.testing.assert_close(cos, cos[0].expand_as(cos), atol=1e-5, rtol=0)
    basis, _ = torch.linalg.qr(torch.stack([a, b]).T)
    torch.testing.assert_close(p @ basis @ basis.T, p, atol=1e-4, rtol=1e-4)
    # equal norms: White's slerp, norm stays constant; the lerp midpoint is shorter
    b2 = b / b.norm() * a.norm()
    torch.testing.assert_close(slerp(a, b2, ts).norm(dim=-1), a.norm().expand(11), atol=1e-4, rtol=1e-4)
    if d > 2: assert lerp(a, b2, 0.5).norm() < slerp(a, b2, 0.5).norm()


def test_slerp_degenerate_and_batched():
    a = torch.tensor([1., 2., 3.])
    torch.testing.assert_close(slerp(a, 2*a, 0.25), 1.25*a)                       # parallel: no NaN, lerp
    assert torch.isfinite(slerp(a, -a, torch.linspace(0, 1, 5))).all()            # antipodal: finite
    g = torch.Generator().manual_seed(0)
    A, B = torch.randn(4, 7, generator=g), torch.randn(4, 7, generator=g)
    ts = torch.linspace(0, 1, 6)
    out = slerp(A, B, ts)
    assert out.shape == (6, 4, 7)
    for i in range(4): torch.testing.assert_close(out[:, i], slerp(A[i], B[i], ts))
    torch.testing.assert_close(lerp(A, B, ts)[3], A + 0.6*(B - A))


def test_same_seed_same_samples(model):
    s1, s2 = sample_faces(model, 5, 0.8, seed=7), sample_faces(model, 5, 0.8, seed=7)
    assert s1.shape == (5, 3, 16, 16) and s1.device.type == 'cpu'
    assert torch.equal(s1, s2)
    assert not torch.allclose(s1, sample_faces(model, 5, 0.8, seed=8))
    assert not torch.allclose(s1, sample_faces(model, 5, 0.3, seed=7))       # temperature matters
    torch.testing.assert_close(sample_faces(model, 5, 0.0, seed=1), decode_codes(model, torch.zeros(5, 8)))
    assert 0 <= s1.min() and s1.max() <= 1
    assert torch.equal(walk_faces(model, 4, seed=3), walk_faces(model, 4, seed=3))


def test_model_mode_restored(model):
    model.train()
    sample_faces(model, 2); reconstruct_faces(model, torch.rand(2, 3, 16, 16))
    assert model.training
    model.eval()
    sample_faces(model, 2)
    assert not model.training


def test_interpolation_endpoints_are_reconstructions(model, faces):
    rec = model.reconstruct(faces).cpu()
    torch.testing.assert_close(reconstruct_faces(model, faces), rec, atol=1e-5, rtol=1e-5)
    for method in ('lerp', 'slerp'):
        path = interpolate_faces(model, faces[0], faces[1], steps=5, method=method)
        assert path.shape == (5, 3, 16, 16)
        torch.testing.assert_close(path[0], rec[0], atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(path[-1], rec[1], atol=1e-4, rtol=1e-4)
        assert not torch.allclose(path[2], rec[0], atol=1e-3)
        rows = interpolate_faces(model, faces[:3], faces[3:], steps=4, method=method)   # 3 pairs -> 3 rows of 4
        assert rows.shape == (12, 3, 16, 16)
        for i in range(3):
            torch.testing.assert_close(rows[4*i], rec[i], atol=1e-4, rtol=1e-4)
            torch.testing.assert_close(rows[4*i+3], rec[3+i], atol=1e-4, rtol=1e-4)
    lin, sph = (interpolate_faces(model, faces[0], faces[1], 5, m) for m in ('lerp', 'slerp'))
    assert not torch.allclose(lin[2], sph[2])
    with pytest.raises(FaceVAEError, match='method'): interpolate_faces(model, faces[0], faces[1], method='cubic')
    with pytest.raises(FaceVAEError, match='at least 2'): interpolate_faces(model, faces[0], faces[1], steps=1)


def test_recon_grid_layout(model, faces):
    g = recon_grid(model, faces, nrow=4)    # rows: 4 originals, their recons, 2 originals + 2 blanks, their recons + 2 blanks
    rec = reconstruct_faces(model, faces)
    assert g.shape == (16, 3, 16, 16)
    torch.testing.assert_close(g[:4], faces[:4]); torch.testing.assert_close(g[4:8], rec[:4])
    torch.testing.assert_close(g[8:10], faces[4:]); torch.testing.assert_close(g[12:14], rec[4:])
    assert (g[10:12] == 1).all() and (g[14:] == 1).all()
    torch.testing.assert_close(recon_grid(model, faces, originals=False), rec)


def test_random_walk_stays_in_prior():
    w = latent_walk(1000, steps=200, step_size=0.5, temperature=0.7, seed=0)
    assert w.shape == (200, 1000)
    torch.testing.assert_close(w.std(dim=1), torch.full((200,), 0.7), atol=0.06, rtol=0)
    naive = torch.cumsum(torch.randn(200, 1000) * 0.5, 0)      # what a plain random walk would do
    assert naive[-1].std() > 3 * w[-1].std()
    start = torch.ones(1000)
    torch.testing.assert_close(latent_walk(1000, 3, start=start)[0], start)
    with pytest.raises(FaceVAEError, match='step_size'): latent_walk(4, step_size=1.5)


def test_sample_to_file(model, tmp_path):
    save_vae(model, tmp_path/'run'/'model.safetensors')
    out = sample_to_file(tmp_path/'run', n=6, temperature=0.8, seed=3, out=tmp_path/'s.png', nrow=3, device='cpu')
    assert out == tmp_path/'s.png'
    im = Image.open(out)
    assert im.size == (3*16 + 4*2, 2*16 + 3*2)                  # 3 x 2 grid with 2px padding
    out2 = sample_to_file(tmp_path/'run'/'model.safetensors', n=6, seed=3, out=tmp_path/'t.png', nrow=3, device='cpu')
    assert out.read_bytes() == out2.read_bytes()                # same seed, same file; a model file works too
    assert not list(tmp_path.glob('.*.tmp'))
    with pytest.raises(FaceVAEError, match='no model'):
        sample_to_file(tmp_path/'nothing', out=tmp_path/'x.png')


def test_run_faces_reopens_the_runs_generated_faces(model, tmp_path):
    import json
    from facevae_nb.generate import run_faces, run_split
    run = tmp_path/'run'; save_vae(model, run/'model.safetensors')
    (run/'config.json').write_text(json.dumps({'data': {'data': 'generated', 'image_size': 16, 'n_faces': 20,
                                                        'seed': 0, 'holdout': None}}))
    faces = run_faces(run)
    assert len(faces) == 20 and faces.image_size == 16
    assert torch.equal(run_split(run, faces, 'valid'), faces.indices('valid'))
    assert run_faces(run, faces) is faces                                   # an opened cache passes through
    (run/'config.json').write_text(json.dumps({'data': {'data': str(tmp_path/'gone'), 'image_size': 16}}))
    with pytest.raises(FaceVAEError, match='not there any more'): run_faces(run)
