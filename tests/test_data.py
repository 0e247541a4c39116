"""facevae_nb.data and data_files: what the notebooks cannot show on their pages. The layouts, the lists and their errors, the cache,
its key and the loader are checked in nbs/00b_data_files.ipynb and nbs/01_data.ipynb; here are many bad values in every layout, monkeypatched
internals (nothing decoded, an interrupted build, an unwritable folder), the worker pool and the real CelebA data
beside the repo (skipped when absent)."""
import json, os
from pathlib import Path

import numpy as np
import pytest
import torch

import facevae_nb.data as D
import facevae_nb.data_files as F
from facevae_nb.core import FaceVAEError
from facevae_nb.data import FaceCache, attr_index, build_cache, find_celeba, load_face, read_celeba, write_celeba
from conftest import shared_data

N = 12


def _images(n, w=44, h=54):
    "n distinct pictures (a disc whose colour encodes the index, off-centre so flips show)."
    yy, xx = np.mgrid[:h, :w]
    ims = np.full((n, h, w, 3), 30, np.uint8)
    for i in range(n):
        ims[i][(xx - w/2 - 6)**2 + (yy - h/2)**2 < (w/4)**2] = (17*i % 256, 255 - 17*i % 256, 90 + 5*i % 160)
    return ims


def _attrs(n, seed=0):
    return np.random.default_rng(seed).random((n, 40)) < .4


def make(root, layout='official', n=N):
    "A small CelebA folder in `layout`; returns (folder, attrs, partition)."
    a, p = _attrs(n), np.array([0]*(n - 4) + [1, 1, 2, 2])
    write_celeba(root, _images(n), a, partition=p, layout=layout)
    return Path(root), a, p


def files(root):
    return find_celeba(root)


def rewrite(p, fn):
    "Apply fn to the list of lines of text file p (keeping its line ending)."
    raw = p.read_bytes().decode()
    eol = '\r\n' if '\r\n' in raw else '\n'
    p.write_text(eol.join(fn(raw.splitlines())) + eol)


# Kaggle's CSV lists: a row with 39 values (the official layout's is checked in nbs/00b_data_files.ipynb)
def test_attribute_row_with_wrong_number_of_values_csv(tmp_path):
    root = make(tmp_path/'c', 'kaggle')[0]
    rewrite(files(root).attr_file, lambda L: L[:5] + [L[5].rsplit(',', 1)[0]] + L[6:])
    with pytest.raises(FaceVAEError, match=r'line 6: 000005.jpg has 39 values, expected 40'):
        read_celeba(root)


# many bad values: three non-±1 values in each of the three layouts
@pytest.mark.parametrize('layout', ['official', 'kaggle', 'torchvision'])
@pytest.mark.parametrize('bad', ['0', 'yes', '2'])
def test_attribute_value_not_plus_minus_one(tmp_path, layout, bad):
    root, a, _ = make(tmp_path/'c', layout)
    sep = ',' if layout == 'kaggle' else ' '
    first = 2 if layout == 'kaggle' else 3
    col = attr_index('Smiling')
    def edit(L):
        parts = L[first + 1].split(sep)
        parts = [x for x in parts if x] if sep == ' ' else parts
        parts[1 + col] = bad
        L[first + 1] = sep.join(parts)
        return L
    rewrite(files(root).attr_file, edit)
    with pytest.raises(FaceVAEError, match=rf"line {first + 2}: 000003.jpg has value '{bad}' for Smiling; every attribute value must be 1 or -1"):
        read_celeba(root)


# Kaggle's CSV lists: a bad partition row, a repeated row, byte-order marks (the official layout's: nbs/00b_data_files.ipynb)
def test_bad_partition_row_csv(tmp_path):
    root = make(tmp_path/'c', 'kaggle')[0]
    rewrite(files(root).partition_file, lambda L: L[:4] + ['000004.jpg,5'] + L[5:])
    with pytest.raises(FaceVAEError, match=r"line 5: expected 'NAME PARTITION'.*found '000004.jpg,5'"):
        read_celeba(root)


def test_duplicate_attribute_row_is_used_once_csv(tmp_path):
    root, a, p = make(tmp_path/'c', 'kaggle')
    f = files(root).attr_file
    rewrite(f, lambda L: L + [L[3].replace('-1', '1')])   # 000003.jpg again, other values
    with pytest.warns(D.FaceVAEWarning) as rec: ix = read_celeba(root)
    msg = [str(r.message) for r in rec if 'listed again' in str(r.message)]
    assert msg == [f'{f} line 14: 000003.jpg is listed again (first on line 4); using its first row.']
    assert len(ix) == N and torch.equal(ix.attrs, torch.from_numpy(a))


def test_utf8_bom_is_accepted_csv(tmp_path):
    root, a, p = make(tmp_path/'c', 'kaggle')
    for f in [files(root).attr_file, files(root).partition_file]: f.write_bytes(b'\xef\xbb\xbf' + f.read_bytes())
    ix = read_celeba(root)
    assert torch.equal(ix.attrs, torch.from_numpy(a)) and ix.partition.tolist() == p.tolist()


def _break_images(root):
    d = files(root).image_dir
    (d/'000002.jpg').write_bytes((d/'000002.jpg').read_bytes()[:200])   # truncated JPEG
    (d/'000005.jpg').write_bytes(b'')                                   # zero bytes
    (d/'000009.jpg').write_text('<html>404 not found</html>')           # not an image
    return ['000002.jpg', '000005.jpg', '000009.jpg']


# many layouts: the same three broken images in the Kaggle and torchvision layouts (the official one: nbs/01_data.ipynb)
@pytest.mark.parametrize('layout', ['kaggle', 'torchvision'])
def test_bad_images_are_skipped_counted_and_named(tmp_path, layout):
    root, a, p = make(tmp_path/'c', layout)
    bad = _break_images(root)
    with pytest.warns(D.FaceVAEWarning) as rec:
        c = build_cache(root, image_size=32)
    msg = ' '.join(str(r.message) for r in rec)
    assert '3 of 12 images' in msg and all(b in msg for b in bad) and '--rebuild-cache' in msg and 're-download' not in msg
    assert len(c) == 9 and not set(bad) & set(c.names) and c.meta['n_skipped'] == 3
    assert [s[0] for s in c.meta['skipped']] == bad
    keep = [i for i in range(N) if f'{i+1:06d}.jpg' not in bad]
    assert torch.equal(c.attrs, torch.from_numpy(a[keep])) and c.partition.tolist() == p[keep].tolist()
    good = read_celeba(root).paths()
    assert np.array_equal(c.images[0], load_face(good[0], 32)) and np.array_equal(c.images[1], load_face(good[2], 32))
    again = FaceCache.load(c.path)   # what is on disk agrees
    assert len(again) == 9 and again.names == c.names


# many bad values: an empty file and a text file, each the only bad image (a truncated JPEG: nbs/01_data.ipynb)
@pytest.mark.filterwarnings('ignore:.*says 12 images')
@pytest.mark.parametrize('which', [1, 2])
def test_strict_stops_at_a_bad_image(tmp_path, which):
    root = make(tmp_path/'c')[0]
    bad = _break_images(root)[which]
    for b in {'000002.jpg', '000005.jpg', '000009.jpg'} - {bad}:   # leave only one bad image
        (files(root).image_dir/b).unlink()
    rewrite(files(root).attr_file, lambda L: [L[0], L[1]] + [l for l in L[2:] if l.split()[0] in (bad,) or
                                                          (files(root).image_dir/l.split()[0]).exists()])
    with pytest.raises(FaceVAEError, match=rf'{bad}: cannot decode this image .*strict=False'):
        build_cache(root, image_size=32, strict=True)
    assert not list(Path(os.environ['FACEVAE_CACHE']).rglob('meta.json')) or \
        all(json.loads(m.read_text())['source'] != str(root.resolve()) for m in Path(os.environ['FACEVAE_CACHE']).rglob('meta.json'))


# monkeypatch: proves a reused cache neither decodes nor even reads the lists
def test_cache_reused_without_decoding(tmp_path, monkeypatch):
    root = make(tmp_path/'c')[0]
    c = build_cache(root, image_size=32)
    stamp = {p.name: p.stat().st_mtime_ns for p in c.path.iterdir()}
    monkeypatch.setattr(D, 'decode_all', lambda *a, **k: pytest.fail('decoded again'))
    monkeypatch.setattr(D, 'read_celeba', lambda *a, **k: pytest.fail('read the lists again'))
    c2 = build_cache(root, image_size=32)
    assert c2.path == c.path and np.array_equal(c2.images, c.images)
    assert {p.name: p.stat().st_mtime_ns for p in c.path.iterdir()} == stamp


# monkeypatch and a read-only /sys (skipped where absent): refused before any decoding
def test_unwritable_cache_fails_before_decoding(tmp_path, monkeypatch):
    root = make(tmp_path/'c')[0]
    monkeypatch.setattr(D, 'decode_all', lambda *a, **k: pytest.fail('decoded into a folder it cannot write'))
    ro = Path('/sys/facevae-cache')    # read-only even for root
    if not Path('/sys').is_dir(): pytest.skip('no read-only /sys here')
    with pytest.raises(OSError) as e: build_cache(root, image_size=32, cache=ro)
    assert e.value.filename == str(ro)


# monkeypatch: a build interrupted half way through the decoding
def test_interrupted_build_leaves_no_valid_cache(tmp_path, monkeypatch):
    root = make(tmp_path/'c')[0]
    build_cache(root, image_size=32, cache=tmp_path/'k')
    calls = {'n': 0}
    real = F.load_face                                                        # what the decoding calls
    def dying(*a, **k):
        calls['n'] += 1
        if calls['n'] > 5: raise KeyboardInterrupt
        return real(*a, **k)
    monkeypatch.setattr(F, 'load_face', dying)
    with pytest.raises(KeyboardInterrupt):
        build_cache(root, image_size=16, cache=tmp_path/'k')                 # a rebuild that dies halfway
    assert FaceCache.load(tmp_path/'k') is None                               # nothing there looks valid
    assert sorted(p.name for p in (tmp_path/'k').iterdir()) == ['.lock', 'images.npy', 'labels.npz']  # no temporary files left
    monkeypatch.setattr(F, 'load_face', real)
    c = build_cache(root, image_size=16, cache=tmp_path/'k')
    assert c.images.shape == (N, 3, 16, 16)


# process: the worker pool (never used under tests), on 2,100 images
def test_parallel_build_equals_serial(tmp_path, monkeypatch):
    "The pool (used outside tests for big folders) gives the same bytes as the plain loop."
    monkeypatch.delenv('IN_TEST', raising=False)
    root, n = tmp_path/'c', 2100
    imgs = np.repeat(_images(N), n//N + 1, axis=0)[:n]
    write_celeba(root, imgs, _attrs(n), partition=np.zeros(n, int))
    assert F.n_workers(2, n) == 2 and F.n_workers(None, 100) == 0
    a = build_cache(root, image_size=32, cache=tmp_path/'a', workers=2)
    b = build_cache(root, image_size=32, cache=tmp_path/'b', workers=0)
    assert np.array_equal(a.images, b.images) and a.names == b.names
    monkeypatch.setenv('IN_TEST', '1')
    assert F.n_workers(2, n) == 0


# process: another process holds the cache folder's lock (nbs/00b_data_files.ipynb checks the lock with a thread)
def test_build_waits_for_another_process(tmp_path):
    import subprocess, sys
    root = make(tmp_path/'c')[0]
    c = build_cache(root, image_size=32, cache=tmp_path/'k')
    holder = subprocess.Popen([sys.executable, '-c', f"import fcntl,sys; f=open({str(c.path/'.lock')!r},'a+'); "
                               "fcntl.flock(f, fcntl.LOCK_EX); print('locked', flush=True); sys.stdin.readline()"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == 'locked'
        import threading
        done = threading.Event()
        def build():
            build_cache(root, image_size=32, cache=tmp_path/'k', rebuild=True); done.set()
        with pytest.warns(D.FaceVAEWarning, match='waiting for another process'):
            th = threading.Thread(target=build); th.start()
            assert not done.wait(1.0), 'the build should wait while another process holds the lock'
            holder.stdin.write('\n'); holder.stdin.flush(); th.join(30)
        assert done.is_set()
    finally:
        holder.kill(); holder.wait()


# --- real CelebA beside the repo (skipped when absent) -------------------------------------------------------------

def _row(folder, name):
    for line in (folder/'list_attr_celeba.txt').read_text().splitlines()[2:]:
        if line.split()[0] == name: return [v == '1' for v in line.split()[1:]]


# real data: the 8,000-image CelebA sample beside the repo
def test_real_sample(tmp_path, monkeypatch):
    folder = shared_data('celeba-sample')
    c = build_cache(folder, cache=tmp_path/'s')
    assert len(c) == 8000 and c.images.shape == (8000, 3, 64, 64) and c.meta['n_skipped'] == 0
    assert c.names[0] == '000001.jpg' and c.names[-1] == '008000.jpg'
    assert c.attrs[0].tolist() == _row(folder, '000001.jpg') and c.attrs[7999].tolist() == _row(folder, '008000.jpg')
    assert np.array_equal(c.images[0], load_face(folder/'img_align_celeba'/'000001.jpg'))
    out = write_celeba(tmp_path/'w', c.images[:1].transpose(0, 2, 3, 1), c.attrs[:1], names=['000001.jpg'], eol='\r\n')
    orig = (folder/'list_attr_celeba.txt').read_bytes().split(b'\r\n')
    assert (out/'list_attr_celeba.txt').read_bytes().split(b'\r\n')[1:3] == orig[1:3]   # header and row, byte for byte
    rate = c.attr('Male').float().mean().item()
    assert .35 < rate < .5
    monkeypatch.setattr(D, 'decode_all', lambda *a, **k: pytest.fail('decoded again'))
    again = build_cache(folder, cache=tmp_path/'s')
    assert again.meta == c.meta and np.array_equal(again.images[-1], c.images[-1])


# real data: the full-size CelebA images beside the repo
def test_real_fullsize_matches_downscaled():
    full, half = shared_data('celeba-fullsize'), shared_data('celeba-sample')
    ix = read_celeba(full)
    assert len(ix) == 32 and ix.attrs[0].tolist() == _row(half, '000001.jpg')
    a = np.stack([load_face(full/'img_align_celeba'/n) for n in ix.names]).astype(float)
    b = np.stack([load_face(half/'img_align_celeba'/n) for n in ix.names]).astype(float)
    mae = np.abs(a - b).mean((1, 2, 3))/255
    assert (mae < 8/255).all(), mae.max()*255
    other = np.abs(a - np.roll(b, 1, axis=0)).mean((1, 2, 3))/255   # and different faces do not agree
    assert (other > 20/255).all()
    c = build_cache(full)
    assert len(c) == 32 and np.array_equal(c.images, a.astype(np.uint8))
