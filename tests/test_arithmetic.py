"`facevae edit` as the installed command: a photo of any size and a validation face by index write images; bad input gives one line and exit 2."
import json, os, shutil, subprocess, sys

import numpy as np
import pytest
from PIL import Image


@pytest.fixture(scope='module')
def run(tmp_path_factory):
    "A run folder as `facevae train` writes it (config.json naming 200 generated faces, model.safetensors), with an untrained tiny model: the plumbing is under test here, the edits' quality in nbs/08_arithmetic.ipynb."
    import torch
    from facevae_nb.model import make_vae, save_vae
    out = tmp_path_factory.mktemp('arith')/'run'
    torch.manual_seed(0)
    save_vae(make_vae('default', image_size=32, latent_dim=8, widths=(8, 16)), out/'model.safetensors')
    (out/'config.json').write_text(json.dumps(dict(data=dict(data='generated', image_size=32, n_faces=200, holdout=None))))
    return out


def facevae(*args, cwd=None):
    "Run the installed `facevae` command (the console script beside this Python)."
    exe = shutil.which('facevae', path=os.path.dirname(sys.executable)) or shutil.which('facevae')
    if exe is None: pytest.skip('the facevae command is not installed (pip install -e .)')
    return subprocess.run([exe, *map(str, args)], capture_output=True, text=True, cwd=cwd, env=dict(os.environ), timeout=300)


def needs_edit():
    from facevae_nb.cli import COMMANDS
    if 'edit' not in COMMANDS: pytest.skip("the CLI has no 'edit' command yet (wired in nbs/12_cli.ipynb)")


def photo(path, size):
    "A random JPEG of `size` (w, h)."
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path, quality=90)
    return path


def test_installed_edit_on_a_jpeg(run, tmp_path):
    "Through the installed command: a JPEG of an odd size is edited and written; a typo gives one line and exit 2."
    needs_edit()
    r = facevae('edit', '--run', run, '--image', photo(tmp_path/'face.jpg', (200, 260)), '--attr', 'Smiling=1.5',
                '--attr', 'Male=-1', '--out', tmp_path/'edited.png', '--device', 'cpu')
    assert r.returncode == 0, r.stderr
    assert Image.open(tmp_path/'edited.png').size == (200, 260)                   # the photo at its own size, edited
    r = facevae('edit', '--run', run, '--index', '0', '--attr', 'Smilling=1', '--out', tmp_path/'x.png')
    assert r.returncode == 2 and "did you mean 'Smiling'" in r.stderr, r.stderr
    assert 'Traceback' not in r.stderr and len(r.stderr.strip().splitlines()) == 1


def cli(*args):
    "The command's entry point in this process (what the installed script calls): exit code."
    from facevae_nb.cli import main
    return main(['edit', *map(str, args)])


@pytest.mark.parametrize('size', [(640, 480), (50, 50), (89, 109)])
def test_edit_photo_of_any_size(run, tmp_path, size):
    needs_edit()
    assert cli('--run', run, '--image', photo(tmp_path/'face.jpg', size), '--attr', 'Eyeglasses=1', '--out', tmp_path/'e.png', '--device', 'cpu') == 0
    assert Image.open(tmp_path/'e.png').size == size                              # the photo at its own size, edited
    assert cli('--run', run, '--image', tmp_path/'face.jpg', '--attr', 'Eyeglasses=1', '--view', 'reconstruction',
               '--out', tmp_path/'r.png', '--device', 'cpu') == 0
    assert Image.open(tmp_path/'r.png').size == (3*32 + 4*2, 32 + 2*2)           # input, reconstruction, edit


def test_edit_index_strip(run, tmp_path):
    needs_edit()
    assert cli('--run', run, '--index', 3, '--strip', 'smiling', '--out', tmp_path/'strip.png', '--device', 'cpu') == 0
    assert Image.open(tmp_path/'strip.png').size == (8*32 + 9*2, 32 + 2*2)


@pytest.mark.parametrize('args,msg', [
    (['--index', '0', '--attr', 'Smiling=lots'], 'is not a number'),
    (['--index', '100000', '--attr', 'Smiling=1'], 'out of range'),
    (['--image', 'missing.jpg', '--attr', 'Smiling=1'], 'not found'),
    (['--attr', 'Smiling=1'], 'give either --image'),
    (['--index', '0'], 'nothing to do'),
])
def test_edit_errors_one_line_exit_2(run, tmp_path, capsys, args, msg):
    needs_edit()
    assert cli('--run', run, *args, '--out', tmp_path/'x.png', '--device', 'cpu') == 2
    err = capsys.readouterr().err
    assert msg in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path/'x.png').exists()


def test_edit_missing_run(tmp_path, capsys):
    needs_edit()
    assert cli('--run', tmp_path/'nothing', '--index', '0', '--attr', 'Smiling=1', '--out', tmp_path/'x.png') == 2
    assert 'no model' in capsys.readouterr().err


@pytest.mark.parametrize('method', ['per-face', 'mean', 'regression'])
def test_edit_each_method(run, tmp_path, method):
    "Every method `facevae edit --method` names edits (the default per-face amounts, and the fixed weights the tables compare)."
    needs_edit()
    assert cli('--run', run, '--index', 1, '--attr', 'Smiling=1.5', '--attr', 'Eyeglasses=-1', '--method', method,
               '--out', tmp_path/f'{method}.png', '--device', 'cpu') == 0
    assert Image.open(tmp_path/f'{method}.png').size == (3*32 + 4*2, 32 + 2*2)


@pytest.mark.parametrize('args,msg', [(['--method', 'median'], "unknown method 'median'"),
                                      (['--method', 'per-face', '--balanced'], '--balanced works only with --method mean')])
def test_edit_bad_method_one_line(run, tmp_path, capsys, args, msg):
    needs_edit()
    assert cli('--run', run, '--index', 0, '--attr', 'Smiling=1', *args, '--out', tmp_path/'x.png', '--device', 'cpu') == 2
    err = capsys.readouterr().err
    assert msg in err and len(err.strip().splitlines()) == 1, err


def test_old_vector_cache_is_not_used(run, tmp_path):
    """A cache file of the format before the one weight scale (attr_vectors/2: balanced vectors of another length, no
    latent scores) for this very model is rebuilt, not read: its numbers mean other weights. Here, not in 08: it needs
    a file as the previous release wrote it."""
    import torch
    from safetensors.torch import save_file, load_file
    from safetensors import safe_open
    from facevae_nb.vector_cache import run_vectors, weights_sha256, VECTORS_FILE
    from facevae_nb.model import load_run
    r = tmp_path/'run'; shutil.copytree(run, r)
    model = load_run(r, device='cpu')
    names = ['Smiling', 'Male']
    save_file({'train:mean:balanced': torch.full((2, model.latent_dim), 7.)}, str(r/VECTORS_FILE), metadata=dict(
        format='facevae_nb.attr_vectors/2', model_sha256=weights_sha256(model),
        entries=json.dumps({'train:mean:balanced': dict(names=names, labels=None)})))
    V = run_vectors(r, 'mean', balanced=True, model=model)
    assert not torch.equal(V['Smiling'], torch.full((model.latent_dim,), 7.))
    meta = safe_open(str(r/VECTORS_FILE), 'pt').metadata()
    assert meta['format'] == 'facevae_nb.attr_vectors/3'
    assert set(json.loads(meta['entries'])) == {'train:mean:balanced', 'train:scores'}    # scaled with the latent scores
    assert load_file(str(r/VECTORS_FILE))['train:scores'].shape[1] == model.latent_dim + 3


def test_sample_attr_per_face(run, tmp_path):
    "`facevae sample --attr` moves prior samples by per-face amounts (the default) and by fixed weights (--method mean)."
    from facevae_nb.cli import main
    for m in ('per-face', 'mean'):
        assert main(['sample', '--run', str(run), '--n', '4', '--attr', 'Smiling=1.5', '--attr', 'Male=-1', '--method', m,
                     '--out', str(tmp_path/f'{m}.png'), '--device', 'cpu']) == 0
    assert (tmp_path/'per-face.png').read_bytes() != (tmp_path/'mean.png').read_bytes()
