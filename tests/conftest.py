import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / 'shared' / 'data'


@pytest.fixture(autouse=True, scope='session')
def _isolated_cache(tmp_path_factory):
    "Keep every test's caches out of the user's ~/.cache."
    old = os.environ.get('FACEVAE_CACHE')
    os.environ['FACEVAE_CACHE'] = str(tmp_path_factory.mktemp('facevae_cache'))
    yield
    if old is None: os.environ.pop('FACEVAE_CACHE', None)
    else: os.environ['FACEVAE_CACHE'] = old


@pytest.fixture(scope='module')
def one_thread():
    "Tiny tensors: one torch thread is much faster than two threads fighting over shared cores."
    import torch
    n = torch.get_num_threads(); torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def shared_data(name):
    "Path to a real-CelebA folder beside the checkout, or skip the test when it is absent."
    p = SHARED / name
    if not (p / 'img_align_celeba').is_dir(): pytest.skip(f'{p} is not present (real CelebA data is optional)')
    return p
