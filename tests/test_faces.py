"""facevae_nb.faces: generated faces are deterministic, in the official layout, and their attributes are visible."""
import numpy as np
import pytest
import torch

from facevae_nb.core import FaceVAEError
from facevae_nb.data import CELEBA_ATTRS, attr_index, find_celeba, read_celeba
from facevae_nb.faces import GENERATED_ATTRS, generated_celeba, open_faces, render_faces, sample_face_attrs


def test_generated_folder_is_deterministic_official_layout(tmp_path):
    a = generated_celeba(120, seed=1, root=tmp_path/'a')
    b = generated_celeba(120, seed=1, root=tmp_path/'b')
    c = generated_celeba(120, seed=2, root=tmp_path/'c')
    assert find_celeba(a).layout == 'official'
    fa, fb = sorted((a/'img_align_celeba').iterdir()), sorted((b/'img_align_celeba').iterdir())
    assert [p.name for p in fa] == [f'{i:06d}.jpg' for i in range(1, 121)]
    assert all(x.read_bytes() == y.read_bytes() for x, y in zip(fa, fb))
    assert (a/'list_attr_celeba.txt').read_bytes() == (b/'list_attr_celeba.txt').read_bytes()
    assert (a/'img_align_celeba'/'000001.jpg').read_bytes() != (c/'img_align_celeba'/'000001.jpg').read_bytes()
    ix = read_celeba(a)
    assert [len(ix.indices(s)) for s in ('train', 'valid', 'test')] == [96, 12, 12]
    assert not list(a.parent.glob('.faces*'))   # no temporary folder left behind
    assert generated_celeba(120, seed=1, root=tmp_path/'a') == a


def test_attribute_rates_and_independence():
    a = sample_face_attrs(20000, torch.Generator().manual_seed(0)).float()
    for n, p in GENERATED_ATTRS.items():
        if p is not None: assert abs(a[:, attr_index(n)].mean() - p) < .02, n
    hair = a[:, [attr_index(n) for n in ['Black_Hair', 'Blond_Hair', 'Brown_Hair', 'Gray_Hair']]]
    assert torch.equal(hair.sum(1), torch.ones(20000))
    indep = [n for n, p in GENERATED_ATTRS.items() if p is not None and not n.endswith('_Hair')] + ['Blond_Hair']
    c = torch.corrcoef(a[:, [attr_index(n) for n in indep]].T)
    assert (c - torch.eye(len(indep))).abs().max() < .04
    male = a[:, attr_index('Male')].bool()
    assert a[~male, attr_index('No_Beard')].min() == 1 and a[male, attr_index('Wearing_Lipstick')].max() == 0
    unused = [i for i, n in enumerate(CELEBA_ATTRS) if n not in GENERATED_ATTRS]
    assert a[:, unused].sum() == 0


VISIBLE = ['Smiling', 'Mouth_Slightly_Open', 'Eyeglasses', 'Wearing_Hat', 'Bangs', 'Male', 'Pale_Skin',
           'Blond_Hair', 'Black_Hair', 'Gray_Hair', 'Wearing_Lipstick', 'Narrow_Eyes', 'Rosy_Cheeks']


@pytest.mark.parametrize('seed', range(6))
def test_each_attribute_changes_the_face_and_nothing_else(seed):
    base = torch.zeros(1, 40, dtype=torch.bool)
    base[0, attr_index('Brown_Hair')] = base[0, attr_index('No_Beard')] = True
    rows = [base]
    for n in VISIBLE:
        r = base.clone(); r[0, attr_index(n)] = True
        if n.endswith('_Hair'): r[0, attr_index('Brown_Hair')] = False
        if n == 'Male': r[0, attr_index('No_Beard')] = False
        rows.append(r)
    x = torch.cat([render_faces(r, torch.Generator().manual_seed(seed)) for r in rows])[:, :, 22:86, 12:76].float()
    d = (x[1:] - x[:1]).abs().amax(1)
    changed = (d > 20).sum((1, 2))
    assert (changed >= 10).all(), dict(zip(VISIBLE, changed.tolist()))
    assert torch.equal(render_faces(rows[0], torch.Generator().manual_seed(seed))[:, :, 22:86, 12:76].float(), x[:1])


def test_open_faces(tmp_path):
    c = open_faces('generated', n=300, image_size=32)
    assert len(c) == 300 and c.images.shape == (300, 3, 32, 32) and c.meta['layout'] == 'official'
    assert c.attr('Eyeglasses').any() and not c.attr('Eyeglasses').all()
    again = open_faces('generated', n=300, image_size=32)
    assert again.path == c.path and again.meta == c.meta
    folder = generated_celeba(300)
    assert open_faces(folder, image_size=32).path == c.path     # a path to the same folder is the same cache
    with pytest.raises(FaceVAEError, match='image_size=50'): open_faces('generated', n=300, image_size=50)
    with pytest.raises(FaceVAEError, match='does not exist'): open_faces(tmp_path/'celeba')
    with pytest.raises(FaceVAEError, match='at least 10'): open_faces('generated', n=3)
    x = c.get(slice(0, 4))   # the 64 px crop centres the face: skin-coloured middle, not the background
    mid = x[:, :, 12:20, 12:20].mean((0, 2, 3))
    assert mid[0] > mid[2]
