"""Model: every bad architecture value, and that a few dozen training steps lower the loss of both presets.
Shapes, presets, saving and loading, the fitted prior and the loss terms are checked in nbs/03_model.ipynb and
nbs/04_loss.ipynb."""
import pytest
import torch

from facevae_nb.core import FaceVAEError
from facevae_nb.faces import render_faces, sample_face_attrs
from facevae_nb.model import VAEConfig, make_vae
from facevae_nb.loss import vae_loss

pytestmark = pytest.mark.usefixtures('one_thread')   # small batches: see conftest.one_thread


# many bad values, one per rule: the notebook shows the common ones (widths of 0, image_size=60, latent_dim=0, ...)
@pytest.mark.parametrize('kw,msg', [(dict(widths='abc'), 'give the channels of each stage'),
                                    (dict(widths=(32.5, 64)), 'every entry must be a whole number'),
                                    (dict(latent_dim=-3), 'latent_dim=-3'), (dict(image_size=float('nan')), 'image_size=nan'),
                                    (dict(blocks=-1), 'blocks=-1'), (dict(sigma=-1.0), 'sigma=-1.0'),
                                    (dict(sigma_min=0.0), 'sigma_min=0.0')])
def test_bad_model_values_are_one_clear_error(kw, msg):
    "Every bad architecture value is a FaceVAEError naming it (before: ValueError/ZeroDivisionError tracebacks)."
    with pytest.raises(FaceVAEError, match=msg): VAEConfig(**kw)


def _faces(n, seed=0):
    "The project's generated faces (facevae_nb.faces), 64 px centre crops."
    g = torch.Generator().manual_seed(seed)
    x = render_faces(sample_face_attrs(n, generator=g), generator=g)      # uint8 (n,3,109,89)
    t, l = (x.shape[2] - 64) // 2, (x.shape[3] - 64) // 2
    return x[:, :, t:t + 64, l:l + 64].float() / 255


# too slow for the notebook: 40 steps of each full-size preset at 64 px (the notebook trains a 32 px PlainVAE)
@pytest.mark.parametrize('preset', ['seed', 'default'])
def test_a_few_dozen_steps_lower_the_loss(preset):
    torch.manual_seed(0)
    data = _faces(256)
    xv = _faces(32, seed=1)
    assert data.shape == (256, 3, 64, 64) and xv.std() > 0.05
    m = make_vae(preset)
    opt = torch.optim.Adam(m.parameters(), 1e-3)
    g = torch.Generator().manual_seed(0)

    def val():
        m.eval()
        with torch.no_grad():
            mu, lv = m.encode(xv); mse = (m.decode(mu) - xv).pow(2).mean().item()
        m.train(); return mse
    mse0 = val()
    losses = []
    for step in range(40):
        x = data[torch.randint(0, len(data), (32,), generator=g)]
        with torch.autocast('cpu', torch.bfloat16): out = m(x)
        r = vae_loss(m, x, out)
        opt.zero_grad(); r['loss'].backward(); opt.step()
        losses.append(r['loss'].item())
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5 - 0.1 * abs(sum(losses[:5]) / 5)
    # reconstructions of unseen faces got better (seed's sigma^2 = 1/2 asks for less: 0.80x here, default 0.63x)
    assert val() < (0.9 if preset == 'seed' else 0.75) * mse0
