"""The `facevae` command as a user runs it (a real subprocess, the installed command), and what needs a read-only
folder, a monkeypatched full disk or real training runs. The parser, the one-line errors, the damaged run files and
the demo are checked in nbs/12_cli.ipynb."""
import errno, os, subprocess, sys, time
from pathlib import Path

import numpy as np
import pytest

import facevae_nb.cli as cli


def _facevae(*args, cwd):
    return subprocess.run([sys.executable, '-m', 'facevae_nb.cli', *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600)


# subprocess: the whole demo, then sample and latents, as a user runs them (about a minute)
def test_demo_then_sample_and_latents(tmp_path):
    r = _facevae('demo', '--out', 'runs/demo', '--minutes', '0.2', '--epochs', '2', '--n-faces', '400',
                 '--image-size', '32', '--quiet', cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    run = tmp_path/'runs'/'demo'
    for f in ['config.json', 'model.safetensors', 'prior.json', 'metrics.jsonl', 'figures/samples.png', 'figures/latents.png',
              'figures/edits.png']:
        assert (run/f).is_file(), f
    assert 'runs/demo/figures/edits.png' in r.stdout                     # the signature feature: printed for the user
    assert 'validation PSNR' in r.stdout and str(run/'model.safetensors').endswith('model.safetensors')
    # running the demo again continues the same run instead of failing on the existing folder, also one made
    # before the demo listed its figures in the run's manifest
    import json
    m = json.loads((run/'.facevae-manifest.json').read_text())
    demo_figs = {f'figures/{n}.png' for n in ('samples', 'latents', 'latents_mu_hist', 'latents_z_hist', 'edits')}
    assert demo_figs <= set(m['files']), m['files']
    m['files'] = [f for f in m['files'] if f not in demo_figs]
    (run/'.facevae-manifest.json').write_text(json.dumps(m))
    r2 = _facevae('demo', '--out', 'runs/demo', '--minutes', '0.2', '--epochs', '2', '--n-faces', '400',
                  '--image-size', '32', '--quiet', cwd=tmp_path)
    assert r2.returncode == 0, r2.stderr[-3000:]
    r3 = _facevae('sample', '--run', 'runs/demo', '--n', '16', '--out', 'samples.png', cwd=tmp_path)
    assert r3.returncode == 0 and (tmp_path/'samples.png').is_file(), r3.stderr[-3000:]
    r4 = _facevae('latents', '--run', 'runs/demo', '--out', 'lat.png', '--max-images', '200', cwd=tmp_path)
    assert r4.returncode == 0 and (tmp_path/'lat.png').is_file(), r4.stderr[-3000:]


# subprocess: no traceback reaches the user of `python -m facevae_nb.cli`
def test_user_errors_are_one_clear_line(tmp_path):
    r = _facevae('train', '--data', str(tmp_path/'nowhere'), '--out', str(tmp_path/'run'), cwd=tmp_path)
    assert r.returncode == 2 and 'Traceback' not in r.stderr, r.stderr
    assert str(tmp_path/'nowhere') in r.stderr and 'error' in r.stderr
    r = _facevae('sample', '--run', str(tmp_path/'norun'), cwd=tmp_path)
    assert r.returncode == 2 and 'Traceback' not in r.stderr and 'norun' in r.stderr, r.stderr


# --- in-process: one clear line for every error, checks before slow work -------------------------------------------

TINY = ['--data', 'generated', '--n-faces', '64', '--image-size', '32', '--epochs', '1', '--batch-size', '16',
        '--latent-dim', '4', '--widths', '8,8,8,8', '--device', 'cpu', '--no-amp', '--quiet']
READ_ONLY = Path('/sys')   # read-only even for root (permission bits do not stop root)


def _main(capsys, *argv):
    "Exit status and stderr lines of `facevae ARGV`, run in-process."
    code = cli.main(list(argv))
    return code, capsys.readouterr().err.strip().splitlines()


def _one_error(code, lines, cmd, *parts):
    assert code == 2 and len(lines) == 1 and lines[0].startswith(f'facevae {cmd}: error: '), lines
    for p in parts: assert p in lines[0], lines


@pytest.fixture(scope='module')
def tiny_run(tmp_path_factory):
    run = tmp_path_factory.mktemp('cli')/'run'
    assert cli.main(['train', *TINY, '--out', str(run)]) == 0
    return run


# a read-only /sys (skipped where absent) and a cache folder moved by environment variable
def test_unwritable_out_fails_first(tiny_run, tmp_path, capsys, monkeypatch):
    if not READ_ONLY.is_dir(): pytest.skip('no read-only /sys here')
    monkeypatch.setenv('FACEVAE_CACHE', str(tmp_path/'cache'))
    _one_error(*_main(capsys, 'train', *TINY, '--out', str(READ_ONLY/'facevae-run')), 'train', str(READ_ONLY/'facevae-run'))
    assert not (tmp_path/'cache').exists()                                   # refused before building any cache
    _one_error(*_main(capsys, 'sample', '--run', str(tiny_run), '--out', str(READ_ONLY/'s.png')), 'sample', '/sys: ')
    _one_error(*_main(capsys, 'latents', '--run', str(tiny_run), '--out', str(READ_ONLY/'l.png')), 'latents', '/sys: ')


# a read-only /sys (skipped where absent) as the cache folder, by environment variable
def test_unwritable_cache_is_one_line(tmp_path, capsys, monkeypatch):
    if not READ_ONLY.is_dir(): pytest.skip('no read-only /sys here')
    monkeypatch.setenv('FACEVAE_CACHE', str(READ_ONLY/'facevae-cache'))
    _one_error(*_main(capsys, 'train', *TINY, '--out', str(tmp_path/'run')), 'train', str(READ_ONLY/'facevae-cache'))


# monkeypatch: a full disk while writing an image and a checkpoint
def test_full_disk_is_one_line_naming_the_file(tiny_run, tmp_path, capsys, monkeypatch):
    import torchvision.utils, safetensors.torch
    from safetensors import SafetensorError
    def full(*a, **k): raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(torchvision.utils, 'save_image', full)
    _one_error(*_main(capsys, 'sample', '--run', str(tiny_run), '--out', str(tmp_path/'s.png')), 'sample',
               f"{tmp_path/'s.png'}: No space left on device")
    for msg in ['Error while serializing: IoError(Os { code: 28, kind: StorageFull, message: "No space left on device" })',
                f'Error while serializing: I/O error: No space left on device (os error 28) at path "{tmp_path}/.tmpAb12Cd"']:
        def full_st(*a, **k): raise SafetensorError(msg)                          # safetensors before 0.8, and 0.8
        monkeypatch.setattr(safetensors.torch, 'save_file', full_st)
        code, lines = _main(capsys, 'train', *TINY, '--out', str(tmp_path/'run'))
        _one_error(code, lines, 'train', 'No space left on device', str(tmp_path/'run'))
        assert not list((tmp_path/'run').rglob('.*.tmp'))                       # no temporaries left behind
    # the attribute-vector cache on a full disk: the edit is written, one warning line says the vectors were not kept
    import facevae_nb.vector_cache as vector_cache
    monkeypatch.undo(); monkeypatch.setattr(vector_cache, 'save_file', full_st)        # only the cache's disk is full
    code, lines = _main(capsys, 'edit', '--run', str(tiny_run), '--index', '0', '--attr', 'Smiling=1', '--out', str(tmp_path/'e.png'))
    assert code == 0 and (tmp_path/'e.png').is_file(), lines
    assert lines == [f"facevae edit: warning: could not keep the attribute vectors in {tiny_run/'attr_vectors.safetensors'} "
                     "(No space left on device); they were computed and are used, and will be computed again next time"], lines


# monkeypatch: a full disk under the cache folder while the CelebA cache is built (a memory-mapped file on a full
# disk is a bus error, exit 135, when a page is written: the space is reserved first)
def test_full_disk_building_the_cache_is_one_line(tmp_path, capsys, monkeypatch):
    from facevae_nb.data import write_celeba
    rng = np.random.default_rng(3)
    src = write_celeba(tmp_path/'celeba', rng.integers(0, 256, (20, 54, 44, 3), dtype=np.uint8), rng.random((20, 40)) < .5,
                       np.zeros(20, int))
    monkeypatch.setenv('FACEVAE_CACHE', str(tmp_path/'cache'))
    def full(fd, offset, size): raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(os, 'posix_fallocate', full, raising=False)
    code, lines = _main(capsys, 'train', '--data', str(src), '--out', str(tmp_path/'run'), '--image-size', '32',
                        '--epochs', '1', '--device', 'cpu', '--quiet')
    _one_error(code, lines, 'train', 'not enough disk space for the face cache', 'it needs 0.1 MiB and', 'FACEVAE_CACHE')
    assert not [p for p in (tmp_path/'cache').rglob('*') if p.is_file() and p.name != '.lock']   # nothing half-built left


# in-process CLI: an existing --out is refused by the library-level path too (the notebook checks the CLI's refusals);
# many bad values: every image command with an existing file and with its input as --out
def test_out_never_replaces_a_users_file(tiny_run, tmp_path, capsys):
    from PIL import Image
    photo = tmp_path/'me.png'; Image.new('RGB', (60, 70), (180, 120, 100)).save(photo); before = photo.read_bytes()
    mine = tmp_path/'mine.png'; mine.write_bytes(b'mine')
    for cmd, extra in [('sample', []), ('latents', ['--k', '2']), ('edit', ['--image', str(photo), '--attr', 'Smiling=1'])]:
        _one_error(*_main(capsys, cmd, '--run', str(tiny_run), *extra, '--out', str(mine)), cmd, f'{mine} exists already')
    for flags in ([], ['--overwrite']):
        _one_error(*_main(capsys, 'edit', '--run', str(tiny_run), '--image', str(photo), '--attr', 'Smiling=1',
                          '--out', str(photo), *flags), 'edit', 'never writes over its input')
    (tmp_path/'link.png').symlink_to(photo)                                       # the input under another name
    _one_error(*_main(capsys, 'edit', '--run', str(tiny_run), '--image', str(tmp_path/'link.png'), '--attr', 'Smiling=1',
                      '--out', str(photo), '--overwrite'), 'edit', 'never writes over its input')
    assert photo.read_bytes() == before and mine.read_bytes() == b'mine'
    assert _main(capsys, 'edit', '--run', str(tiny_run), '--image', str(photo), '--attr', 'Smiling=1', '--out', str(mine),
                 '--overwrite')[0] == 0
    assert Image.open(mine).format == 'PNG' and not list(tmp_path.glob('.*.tmp'))


# real training runs (two, on a CelebA folder with a broken image): too slow for the notebook
def test_warnings_are_one_line_and_name_cli_options(tmp_path, capsys):
    "A CelebA folder with a broken image: one warning line at the build, and again when the cache is reused."
    from facevae_nb.data import write_celeba
    rng = np.random.default_rng(0)
    src = write_celeba(tmp_path/'celeba', rng.integers(0, 256, (40, 54, 44, 3), dtype=np.uint8), rng.random((40, 40)) < .5,
                       np.zeros(40, int))
    (src/'img_align_celeba'/'000003.jpg').write_bytes(b'')
    args = ['train', '--data', str(src), '--image-size', '32', '--epochs', '1', '--batch-size', '10', '--latent-dim', '4',
            '--widths', '8,8,8,8', '--holdout', '10', '--device', 'cpu', '--no-amp', '--quiet']
    for i in range(2):
        code, lines = _main(capsys, *args, '--out', str(tmp_path/f'run{i}'))
        assert code == 0, lines
        skip = [l for l in lines if '000003.jpg' in l]
        assert len(skip) == 1 and skip[0].startswith('facevae train: warning: 1 of 40 images') and '--rebuild-cache' in skip[0]
        assert not [l for l in lines if 'warnings.warn' in l or 'strict=True' in l or 'drop_last' in l], lines


# real training runs (three, on a CelebA folder): too slow for the notebook
def test_rebuild_cache_option(tmp_path, capsys):
    import json
    from facevae_nb.data import write_celeba
    rng = np.random.default_rng(1)
    src = write_celeba(tmp_path/'celeba', rng.integers(0, 256, (30, 54, 44, 3), dtype=np.uint8), rng.random((30, 40)) < .5,
                       np.zeros(30, int))
    args = ['train', '--data', str(src), '--image-size', '32', '--epochs', '1', '--batch-size', '10', '--latent-dim', '4',
            '--widths', '8,8,8,8', '--holdout', '10', '--device', 'cpu', '--no-amp', '--quiet']
    assert _main(capsys, *args, '--out', str(tmp_path/'a'))[0] == 0
    meta = Path(json.loads((tmp_path/'a'/'config.json').read_text())['data']['cache'])/'meta.json'
    built = meta.stat().st_mtime_ns
    assert _main(capsys, *args, '--out', str(tmp_path/'b'))[0] == 0 and meta.stat().st_mtime_ns == built      # reused
    assert _main(capsys, *args, '--out', str(tmp_path/'c'), '--rebuild-cache')[0] == 0 and meta.stat().st_mtime_ns != built


# real training runs (one, on a CelebA folder without validation faces): too slow for the notebook
def test_latents_on_a_run_without_validation_faces(tmp_path, capsys):
    from facevae_nb.data import write_celeba
    rng = np.random.default_rng(2)
    src = write_celeba(tmp_path/'celeba', rng.integers(0, 256, (30, 54, 44, 3), dtype=np.uint8), rng.random((30, 40)) < .5,
                       np.zeros(30, int))
    assert _main(capsys, 'train', '--data', str(src), '--out', str(tmp_path/'run'), '--image-size', '32', '--epochs', '1',
                 '--batch-size', '10', '--latent-dim', '4', '--widths', '8,8,8,8', '--device', 'cpu', '--no-amp', '--quiet')[0] == 0
    code, lines = _main(capsys, 'latents', '--run', str(tmp_path/'run'), '--out', str(tmp_path/'l.png'), '--k', '2')
    assert code == 0 and (tmp_path/'l.png').is_file(), lines
    assert lines == [f"facevae latents: warning: {tmp_path/'run'} has no validation faces (it was trained without a validation "
                     "split); showing the training faces instead (--split chooses another split)"]
    # edit --index falls back the same way (it has no --split to advise), and balancing on so few faces still works:
    # the default method (per-face, balanced) and --method mean --balanced
    for i, extra in enumerate([(), ('--method', 'mean', '--balanced')]):
        code, lines = _main(capsys, 'edit', '--run', str(tmp_path/'run'), '--index', '2', '--attr', 'Smiling=1', *extra,
                            '--out', str(tmp_path/f'e{i}.png'))
        assert code == 0 and (tmp_path/f'e{i}.png').is_file(), lines
        assert lines == [f"facevae edit: warning: {tmp_path/'run'} has no validation faces (it was trained without a validation "
                         "split); --index counts its training faces instead"], lines


def _installed():
    exe = Path(sys.executable).parent/'facevae'
    if not exe.is_file(): pytest.skip('the facevae command is not installed in this environment')
    return str(exe)


# installed command: `facevae --help` in a fresh process with an empty home
def test_installed_help_is_fast_and_writes_nothing(tmp_path):
    env = dict(os.environ, HOME=str(tmp_path), MPLCONFIGDIR=str(tmp_path/'mpl'), XDG_CACHE_HOME=str(tmp_path/'xdg'))
    t = time.time()
    r = subprocess.run([_installed(), '--help'], capture_output=True, text=True, env=env, timeout=120)
    secs = time.time() - t
    assert r.returncode == 0 and 'edit' in r.stdout and secs < 5, (secs, r.stderr)   # ~0.15 s; generous for busy machines
    r = subprocess.run([sys.executable, '-X', 'importtime', '-c', 'import facevae_nb, facevae_nb.cli'], capture_output=True,
                       text=True, env=env, timeout=120)
    assert r.returncode == 0 and not any(m in r.stderr for m in ('| torch\n', '| matplotlib\n', '| numpy\n')), r.stderr[-2000:]
    assert list(tmp_path.iterdir()) == []                                         # no matplotlib config, no cache


# installed command: a bad value is one line
def test_installed_bad_value_is_one_line(tmp_path):
    r = subprocess.run([_installed(), 'sample', '--run', str(tmp_path), '--nrow', 'abc'], capture_output=True, text=True,
                       timeout=120, cwd=tmp_path)
    assert r.returncode == 2 and r.stderr.count('\n') == 1 and "argument --nrow: invalid int value: 'abc'" in r.stderr, r.stderr
    r = subprocess.run([_installed(), 'latents', '--run', str(tmp_path), '--k', '0'], capture_output=True, text=True,
                       timeout=120, cwd=tmp_path)
    assert r.returncode == 2 and r.stderr == 'facevae latents: error: k=0 is too small: it must be at least 1\n', r.stderr


# --- photo-preserving edits (issue 19): `facevae edit --image` gives back the photo, at its own size --------------------

def _pixels(p):
    "The file's pixels, upright, as uint8 (H,W,3) (what a viewer shows)."
    from PIL import Image, ImageOps
    with Image.open(p) as im: return np.asarray(ImageOps.exif_transpose(im).convert('RGB'))


def _outside(w, h, image_size):
    "Bool (h, w): the pixels outside every pixel the face frame of `load_face` touches."
    import math
    from facevae_nb.figures import photo_frame
    l, t, s = photo_frame(w, h, image_size); o = np.ones((h, w), bool)
    o[max(0, math.floor(t)):math.ceil(t + s), max(0, math.floor(l)):math.ceil(l + s)] = False
    return o


def _photo(path, w, h, seed=0, **save):
    "A noisy w x h photo (noise: so that any resampling outside the frame would show)."
    from PIL import Image
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path, **save)
    return path


# subprocess: the command as a user runs it; photos smaller and larger than the model, non-square, JPEG and PNG
def test_edit_photo_at_its_own_size(tiny_run, tmp_path):
    from facevae_nb.model import load_run
    from facevae_nb.vector_cache import run_vectors
    from facevae_nb.figures import read_photo, read_photo_pixels, edit_photo
    for w, h, ext in [(50, 70, '.jpg'), (400, 300, '.png'), (89, 109, '.png')]:
        photo = _photo(tmp_path/f'me{w}x{h}{ext}', w, h)
        r = _facevae('edit', '--run', str(tiny_run), '--image', str(photo), '--attr', 'Smiling=3', '--attr', 'Eyeglasses=2',
                     '--out', f'edited{w}x{h}.png', cwd=tmp_path)
        assert r.returncode == 0 and r.stderr == '', r.stderr[-2000:]
        got, want, o = _pixels(tmp_path/f'edited{w}x{h}.png'), _pixels(photo), _outside(w, h, 32)
        assert got.shape == (h, w, 3)                                           # the photo's own size
        assert (got[o] == want[o]).all()                                        # outside the face frame: bit for bit
        # inside it: the residual edit, exactly as the library makes it (the tiny run's vectors barely move a face,
        # so the notebook and tests/test_widgets.py check that the frame changes, with vectors that do)
        model = load_run(tiny_run, device='cpu')
        lib = edit_photo(model, read_photo_pixels(photo), {'Smiling': 3, 'Eyeglasses': 2}, run_vectors(tiny_run, model=model),
                         face=read_photo(photo, 32)[0])
        assert (got == lib.permute(1, 2, 0).numpy()).all()
        r = _facevae('edit', '--run', str(tiny_run), '--image', str(photo), '--attr', 'Smiling=0',
                     '--out', f'same{w}x{h}.png', cwd=tmp_path)
        assert r.returncode == 0 and (_pixels(tmp_path/f'same{w}x{h}.png') == want).all(), r.stderr   # weight 0: the photo


# in-process CLI: the 64-pixel view, a phone photo turned by EXIF, and the view's one-line errors (many values)
def test_edit_photo_views_and_errors(tiny_run, tmp_path, capsys):
    from PIL import Image
    photo = _photo(tmp_path/'me.png', 60, 80)
    assert _main(capsys, 'edit', '--run', str(tiny_run), '--image', str(photo), '--attr', 'Smiling=1', '--view',
                 'reconstruction', '--out', str(tmp_path/'three.png'))[0] == 0
    assert Image.open(tmp_path/'three.png').size == (3*32 + 4*2, 32 + 2*2)     # input, reconstruction, edit
    assert _main(capsys, 'edit', '--run', str(tiny_run), '--image', str(photo), '--strip', 'Smiling', '--weights=-1,0,1',
                 '--out', str(tmp_path/'strip.png'))[0] == 0
    assert Image.open(tmp_path/'strip.png').size == (3*32 + 4*2, 32 + 2*2)     # a strip: decoded faces
    # a photo stored sideways with an EXIF orientation tag comes back upright, at its upright size
    turned = Image.fromarray(np.asarray(Image.open(photo)).transpose(1, 0, 2)[::-1].copy())   # 80 x 60, turned
    exif = Image.Exif(); exif[0x0112] = 6
    turned.save(tmp_path/'phone.jpg', exif=exif.tobytes(), quality=95)
    assert _main(capsys, 'edit', '--run', str(tiny_run), '--image', str(tmp_path/'phone.jpg'), '--attr', 'Smiling=0',
                 '--out', str(tmp_path/'upright.png'))[0] == 0
    assert (_pixels(tmp_path/'upright.png') == _pixels(tmp_path/'phone.jpg')).all()
    assert _pixels(tmp_path/'upright.png').shape == (80, 60, 3)
    for extra, msg in [(['--image', str(photo), '--view', 'big'], "unknown view 'big'"),
                       (['--index', '0', '--view', 'photo'], '(--index) has no photo'),
                       (['--image', str(photo), '--strip', 'Smiling', '--view', 'photo'], 'a strip (--strip) is drawn'),
                       (['--image', str(tmp_path/'none.jpg')], "image '" + str(tmp_path/'none.jpg') + "' not found")]:
        _one_error(*_main(capsys, 'edit', '--run', str(tiny_run), '--attr', 'Smiling=1', *extra,
                          '--out', str(tmp_path/'bad.png')), 'edit', msg)
    assert not (tmp_path/'bad.png').exists()


# --- the demo's judge: a real (tiny) demo run in-process, its printed lines read back -------------------------------

DEMO_TINY = ['--minutes', '0.5', '--epochs', '1', '--n-faces', '200', '--image-size', '32', '--device', 'cpu', '--quiet']
SUCCESS_LINE = r'  (\w+): success ([01]\.\d\d) \(([01]\.\d\d)\) of (\d+) faces'


def _demo_success(stdout):
    "{attribute: (success, success at weight 0, faces)} from the demo's printed lines."
    import re
    return {m[1]: (float(m[2]), float(m[3]), int(m[4])) for line in stdout.splitlines()
            if (m := re.fullmatch(SUCCESS_LINE, line))}


# a whole (tiny) demo: too slow for the notebook's second demo run; no timing is asserted, only what is printed
def test_demo_prints_the_judges_success_for_each_edit(tmp_path, capsys):
    assert cli.main(['demo', '--out', str(tmp_path/'demo'), *DEMO_TINY]) == 0
    out = capsys.readouterr().out
    found = _demo_success(out)
    assert list(found) == list(cli.DEMO_ATTRS), out                       # one line each, in the strip's order
    for name, (s, s0, n) in found.items(): assert 0 <= s <= 1 and 0 <= s0 <= 1 and n > 0, (name, out)
    assert 'judged by a classifier trained on the generated faces' in out
    judge = tmp_path/'demo'/'judge'/'classifier.safetensors'
    made = judge.stat().st_mtime_ns
    assert cli.main(['demo', '--out', str(tmp_path/'demo'), *DEMO_TINY]) == 0       # continued: the same judge, reused
    assert _demo_success(capsys.readouterr().out).keys() == found.keys() and judge.stat().st_mtime_ns == made


# a user's file where the judge would go (a folder given with --force) is refused, not replaced
def test_demo_never_replaces_a_users_file_in_judge(tmp_path, capsys):
    mine = tmp_path/'demo'/'judge'/'classifier.safetensors'; mine.parent.mkdir(parents=True); mine.write_bytes(b'mine')
    _one_error(*_main(capsys, 'demo', '--out', str(tmp_path/'demo'), '--force', *DEMO_TINY), 'demo',
               f'{mine} was not written by facevae')
    assert mine.read_bytes() == b'mine'
