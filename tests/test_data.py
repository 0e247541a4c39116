"""facevae_nb.data: the CelebA reader in all three layouts, every bad input, the cache and the loader.

Small CelebA folders are written by the tests themselves; the real data beside the repo is used when present."""
import json, os, warnings
from pathlib import Path

import numpy as np
from PIL import Image
import pytest
import torch

import facevae_nb.data as D
from facevae_nb.core import FaceVAEError
from facevae_nb.data import (CELEBA_ATTRS, LAYOUTS, FaceCache, FaceLoader, attr_index, build_cache, find_celeba,
                             load_face, read_celeba, write_celeba)
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


def make(root, layout='official', n=N, eol='\n', partition=True, names=None):
    "A small CelebA folder in `layout`; returns (folder, attrs, partition)."
    a, p = _attrs(n), np.array([0]*(n - 4) + [1, 1, 2, 2])
    write_celeba(root, _images(n), a, partition=p if partition else None, layout=layout, eol=eol, names=names)
    return Path(root), a, p


def files(root):
    return find_celeba(root)


def rewrite(p, fn):
    "Apply fn to the list of lines of text file p (keeping its line ending)."
    raw = p.read_bytes().decode()
    eol = '\r\n' if '\r\n' in raw else '\n'
    p.write_text(eol.join(fn(raw.splitlines())) + eol)


# --- layouts and line endings -------------------------------------------------------------------------------------

@pytest.mark.parametrize('eol', ['\n', '\r\n'])
@pytest.mark.parametrize('layout', list(LAYOUTS))
def test_layouts_read_back(tmp_path, layout, eol):
    root, a, p = make(tmp_path/'c', layout, eol=eol)
    ix = read_celeba(root)
    assert ix.files.layout == layout
    assert ix.names == [f'{i+1:06d}.jpg' for i in range(N)]
    assert torch.equal(ix.attrs, torch.from_numpy(a)) and ix.attrs.dtype == torch.bool
    assert ix.partition.tolist() == p.tolist()
    assert ix.indices('valid').tolist() == [N - 4, N - 3] and len(ix.indices('all')) == N
    assert (b'\r\n' in ix.files.attr_file.read_bytes()) == (eol == '\r\n')


def test_all_layouts_give_the_same_cache(tmp_path):
    caches = [build_cache(make(tmp_path/l, l)[0], image_size=32) for l in LAYOUTS]
    for c in caches[1:]:
        assert np.array_equal(c.images, caches[0].images) and torch.equal(c.attrs, caches[0].attrs)
    assert len({c.meta['layout'] for c in caches}) == 3


def test_google_drive_folders(tmp_path):
    "The official download from Google Drive: Img/img_align_celeba, Anno/list_attr_celeba.txt, Eval/list_eval_partition.txt."
    root, a, p = make(tmp_path/'c')
    for sub, name in [('Img', 'img_align_celeba'), ('Anno', 'list_attr_celeba.txt'), ('Eval', 'list_eval_partition.txt')]:
        (root/sub).mkdir(); (root/name).rename(root/sub/name)
    ix = read_celeba(root)
    assert ix.files.layout == 'official' and ix.files.partition_file.parent.name == 'Eval'
    assert torch.equal(ix.attrs, torch.from_numpy(a)) and ix.partition.tolist() == p.tolist()
    assert len(build_cache(root, image_size=16)) == N


def test_unknown_split(tmp_path):
    with pytest.raises(FaceVAEError, match="use 'train', 'valid', 'test' or 'all'"):
        read_celeba(make(tmp_path/'c')[0]).indices('training')


# --- bad input: folders and lists ---------------------------------------------------------------------------------

def test_missing_folder(tmp_path):
    with pytest.raises(FaceVAEError, match=r'nope does not exist.*generated'):
        read_celeba(tmp_path/'nope')


@pytest.mark.parametrize('layout', list(LAYOUTS))
def test_images_but_no_attribute_file(tmp_path, layout):
    root = make(tmp_path/'c', layout)[0]
    files(root).attr_file.unlink()
    with pytest.raises(FaceVAEError) as e: read_celeba(root)
    msg = str(e.value)
    assert 'Found images in' in msg and 'no attribute list' in msg
    assert 'list_attr_celeba.txt' in msg and 'list_attr_celeba.csv' in msg   # says what it looked for


def test_empty_folder_lists_what_was_looked_for(tmp_path):
    (tmp_path/'empty').mkdir()
    with pytest.raises(FaceVAEError, match=r'not a CelebA folder.*Found no img_align_celeba.*kaggle'):
        find_celeba(tmp_path/'empty')


@pytest.mark.parametrize('layout', ['official', 'kaggle'])
def test_attribute_row_with_wrong_number_of_values(tmp_path, layout):
    root = make(tmp_path/'c', layout)[0]
    sep = ',' if layout == 'kaggle' else ' '
    first = 3 if layout == 'official' else 2   # line number of the first image row
    rewrite(files(root).attr_file, lambda L: L[:first + 3] + [L[first + 3].rsplit(sep, 1)[0]] + L[first + 4:])
    with pytest.raises(FaceVAEError, match=rf'line {first + 4}: 000005.jpg has 39 values, expected 40'):
        read_celeba(root)


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


def test_attribute_header_wrong(tmp_path):
    root = make(tmp_path/'c')[0]
    rewrite(files(root).attr_file, lambda L: L[:1] + [L[1].replace('Smiling', 'Smiles')] + L[2:])
    with pytest.raises(FaceVAEError, match=r"line 2: .*\['Smiles'\] are not CelebA attributes.*\['Smiling'\] are missing"):
        read_celeba(root)


def test_attribute_count_line_wrong(tmp_path):
    root = make(tmp_path/'c')[0]
    rewrite(files(root).attr_file, lambda L: ['twelve'] + L[1:])
    with pytest.raises(FaceVAEError, match=r"line 1: expected the number of images, found 'twelve'"):
        read_celeba(root)
    rewrite(files(root).attr_file, lambda L: ['13'] + L[1:])
    with pytest.warns(D.FaceVAEWarning, match='says 13 images but the file lists 12'):
        assert len(read_celeba(root)) == 12


def test_rows_naming_absent_images(tmp_path):
    root = make(tmp_path/'c')[0]
    for n in ['000003.jpg', '000007.jpg']: (root/'img_align_celeba'/n).unlink()
    with pytest.warns(D.FaceVAEWarning, match=r'lists 2 of 12 images that are not in .*img_align_celeba \(000003.jpg, 000007.jpg\)'):
        ix = read_celeba(root)
    assert len(ix) == 10 and '000003.jpg' not in ix.names
    with pytest.raises(FaceVAEError, match=r'000003.jpg, 000007.jpg.*re-download or unzip'):
        read_celeba(root, strict=True)
    with pytest.raises(FaceVAEError, match='000003.jpg'):
        build_cache(root, image_size=32, strict=True)
    for p in (root/'img_align_celeba').iterdir(): p.unlink()   # none of them: always an error
    with pytest.raises(FaceVAEError, match='lists 12 of 12 images that are not in'):
        read_celeba(root)


def test_missing_partition_falls_back_to_official_rule(tmp_path):
    names = ['000001.jpg', '162770.jpg', '162771.jpg', '182637.jpg', '182638.jpg', '202599.jpg']
    a = _attrs(6)
    write_celeba(tmp_path/'c', _images(6), a, partition=None, names=names)
    with pytest.warns(D.FaceVAEWarning, match="official split by image id"):
        ix = read_celeba(tmp_path/'c')
    assert ix.partition.tolist() == [0, 0, 1, 1, 2, 2]


@pytest.mark.parametrize('layout', ['official', 'kaggle'])
def test_bad_partition_row(tmp_path, layout):
    root = make(tmp_path/'c', layout)[0]
    p = files(root).partition_file
    sep = ',' if layout == 'kaggle' else ' '
    rewrite(p, lambda L: L[:4] + [f'000004.jpg{sep}5'] + L[5:])
    with pytest.raises(FaceVAEError, match=r"line 5: expected 'NAME PARTITION'.*found '000004.jpg.5'"):
        read_celeba(root)


def test_unknown_attribute_name():
    with pytest.raises(FaceVAEError, match=r"unknown CelebA attribute 'Smilling'; did you mean 'Smiling'"):
        attr_index('Smilling')
    with pytest.raises(FaceVAEError, match=r"'Eyeglasses'"):
        attr_index('eye_glasses')
    with pytest.raises(FaceVAEError, match='CELEBA_ATTRS'):
        attr_index('zzzzzz')
    assert attr_index('BLOND_HAIR') == CELEBA_ATTRS.index('Blond_Hair') and attr_index('wearing hat') == 35


@pytest.mark.parametrize('size', [50, 100, 0, -16, 8, 1024, 64.0, '64', True])
def test_image_size_the_model_cannot_take(tmp_path, size):
    root = make(tmp_path/'c')[0]
    with pytest.raises(FaceVAEError, match=r'image_size=.* is not a size the model can take: use a multiple of 16'):
        build_cache(root, image_size=size)


def test_image_size_any_multiple_of_16(tmp_path):
    "The rule the message states is the rule applied: 48 is a multiple of 16, and the model takes it."
    from facevae_nb.model import make_vae
    c = build_cache(make(tmp_path/'c')[0], image_size=48)
    assert c.images.shape[-1] == 48
    assert make_vae('default', 48, widths=(8, 8, 8, 8), latent_dim=4)(c.get([0, 1]))[0].shape == (2, 3, 48, 48)


@pytest.mark.parametrize('frac', [0, -.5, 1.5])
def test_bad_crop_frac(tmp_path, frac):
    with pytest.raises(FaceVAEError, match='crop_frac'):
        build_cache(make(tmp_path/'c')[0], crop_frac=frac)


# --- bad images during a build ------------------------------------------------------------------------------------

def _break_images(root):
    d = files(root).image_dir
    (d/'000002.jpg').write_bytes((d/'000002.jpg').read_bytes()[:200])   # truncated JPEG
    (d/'000005.jpg').write_bytes(b'')                                   # zero bytes
    (d/'000009.jpg').write_text('<html>404 not found</html>')           # not an image
    return ['000002.jpg', '000005.jpg', '000009.jpg']


@pytest.mark.parametrize('layout', list(LAYOUTS))
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


@pytest.mark.filterwarnings('ignore:.*says 12 images')
@pytest.mark.parametrize('which', [0, 1, 2])
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


def test_nothing_decodes(tmp_path):
    root = make(tmp_path/'c', n=3)[0]
    for p in files(root).image_dir.iterdir(): p.write_bytes(b'')
    with pytest.raises(FaceVAEError, match='none of the 3 images'):
        with warnings.catch_warnings(): warnings.simplefilter('ignore'); build_cache(root, image_size=32)


# --- the cache ----------------------------------------------------------------------------------------------------

def test_cache_contents_and_format(tmp_path):
    root, a, p = make(tmp_path/'c')
    c = build_cache(root, image_size=32, cache=tmp_path/'cache')
    assert c.path == tmp_path/'cache' and sorted(x.name for x in c.path.iterdir()) == ['.lock', 'images.npy', 'labels.npz', 'meta.json']
    arr = np.load(c.path/'images.npy', mmap_mode='r')
    assert isinstance(arr, np.memmap) and arr.dtype == np.uint8 and arr.shape == (N, 3, 32, 32)
    m = json.loads((c.path/'meta.json').read_text())
    for k in ['version', 'source', 'layout', 'image_size', 'crop_frac', 'n', 'skipped', 'attr_file', 'partition_file', 'images']: assert k in m
    assert m['source'] == str(root.resolve()) and m['n'] == N and m['image_size'] == 32
    assert torch.equal(c.attrs, torch.from_numpy(a)) and c.partition.tolist() == p.tolist() and len(c) == N
    x = c.get([0, 3])
    assert x.shape == (2, 3, 32, 32) and x.dtype == torch.float32 and torch.equal(x[1], torch.from_numpy(arr[3].copy()).float()/255)
    assert torch.equal(c.attr('smiling'), torch.from_numpy(a[:, 31]))


def test_cache_reused_without_decoding(tmp_path, monkeypatch):
    root = make(tmp_path/'c')[0]
    c = build_cache(root, image_size=32)
    stamp = {p.name: p.stat().st_mtime_ns for p in c.path.iterdir()}
    monkeypatch.setattr(D, '_decode_all', lambda *a, **k: pytest.fail('decoded again'))
    monkeypatch.setattr(D, 'read_celeba', lambda *a, **k: pytest.fail('read the lists again'))
    c2 = build_cache(root, image_size=32)
    assert c2.path == c.path and np.array_equal(c2.images, c.images)
    assert {p.name: p.stat().st_mtime_ns for p in c.path.iterdir()} == stamp


def test_cache_rebuilt_when_meta_differs(tmp_path):
    root = make(tmp_path/'c')[0]
    c = build_cache(root, image_size=32, cache=tmp_path/'k')
    assert build_cache(root, image_size=16, cache=tmp_path/'k').images.shape[-1] == 16          # size changed
    assert build_cache(root, image_size=16, crop_frac=.5, cache=tmp_path/'k').meta['crop_frac'] == .5  # framing
    f = files(root).attr_file                                                                 # labels edited
    rewrite(f, lambda L: L[:2] + [L[2].replace('-1', ' 1', 1) if ' -1' in L[2] else L[2].replace(' 1', '-1', 1)] + L[3:])
    os.utime(f, ns=(f.stat().st_atime_ns, f.stat().st_mtime_ns + 10**9))
    c3 = build_cache(root, image_size=32, cache=tmp_path/'k')
    assert not torch.equal(c3.attrs[0], c.attrs[0])
    meta = json.loads((tmp_path/'k'/'meta.json').read_text()); meta['version'] = -1       # an older format
    (tmp_path/'k'/'meta.json').write_text(json.dumps(meta))
    assert build_cache(root, image_size=32, cache=tmp_path/'k').meta['version'] == D.CACHE_VERSION


def test_cache_rebuilt_when_images_change(tmp_path):
    "Fixed or replaced images are decoded again: the key covers every image file's name, size and date."
    root = make(tmp_path/'c')[0]
    d = files(root).image_dir
    c = build_cache(root, image_size=32, cache=tmp_path/'k')
    first = np.array(c.images[3])
    Image.fromarray(np.zeros((54, 44, 3), np.uint8)).save(d/'000004.jpg')        # a replaced picture
    c2 = build_cache(root, image_size=32, cache=tmp_path/'k')
    assert c2.meta['images'] != c.meta['images'] and np.array(c2.images[3]).max() < 10 and first.max() > 100
    (d/'notes.txt').write_text('x')                                               # any new file changes the key too
    assert build_cache(root, image_size=32, cache=tmp_path/'k').meta['built'] and \
        json.loads((tmp_path/'k'/'meta.json').read_text())['images'] != c2.meta['images']


def test_reused_cache_with_skipped_images_says_so_each_time(tmp_path):
    root = make(tmp_path/'c')[0]
    bad = _break_images(root)
    with pytest.warns(D.FaceVAEWarning): build_cache(root, image_size=32, cache=tmp_path/'k')
    for _ in range(2):
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter('always'); c = build_cache(root, image_size=32, cache=tmp_path/'k')
        msgs = [str(x.message) for x in w]
        assert len(msgs) == 1 and '\n' not in msgs[0] and all(b in msgs[0] for b in bad) and len(c) == 9
    for b in bad: (files(root).image_dir/b).write_bytes((files(root).image_dir/'000001.jpg').read_bytes())  # fixed
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always'); c = build_cache(root, image_size=32, cache=tmp_path/'k')
    assert len(c) == N and not w


def test_rebuild_decodes_again(tmp_path, monkeypatch):
    root = make(tmp_path/'c')[0]
    build_cache(root, image_size=32, cache=tmp_path/'k')
    calls = []
    real = D._decode_all
    monkeypatch.setattr(D, '_decode_all', lambda *a, **k: calls.append(1) or real(*a, **k))
    build_cache(root, image_size=32, cache=tmp_path/'k'); assert calls == []
    build_cache(root, image_size=32, cache=tmp_path/'k', rebuild=True); assert calls == [1]


def test_stale_temporaries_of_a_killed_build_are_removed(tmp_path):
    root = make(tmp_path/'c')[0]
    c = build_cache(root, image_size=32, cache=tmp_path/'k')
    junk = ['.images.npy.x1y2.tmp', '.images.npy.x1y2.tmp.good', '.labels.npz.zz.tmp', '.meta.json.q.tmp']
    for j in junk: (tmp_path/'k'/j).write_bytes(b'0'*100)
    (tmp_path/'k'/'mine.tmp').write_text('not ours')
    build_cache(root, image_size=16, cache=tmp_path/'k')                    # the next build cleans up
    assert sorted(p.name for p in (tmp_path/'k').iterdir()) == ['.lock', 'images.npy', 'labels.npz', 'meta.json', 'mine.tmp']


def test_unwritable_cache_fails_before_decoding(tmp_path, monkeypatch):
    root = make(tmp_path/'c')[0]
    monkeypatch.setattr(D, '_decode_all', lambda *a, **k: pytest.fail('decoded into a folder it cannot write'))
    ro = Path('/sys/facevae-cache')    # read-only even for root
    if not Path('/sys').is_dir(): pytest.skip('no read-only /sys here')
    with pytest.raises(OSError) as e: build_cache(root, image_size=32, cache=ro)
    assert e.value.filename == str(ro)


def test_tiny_and_16_bit_images_are_skipped(tmp_path):
    root = make(tmp_path/'c', names=[f'{i+1:06d}.png' for i in range(N)])[0]
    d = files(root).image_dir
    Image.new('RGB', (1, 1), (255, 0, 0)).save(d/'000002.png')
    Image.fromarray(np.full((54, 44), 50000, np.uint16)).save(d/'000003.png')
    with pytest.warns(D.FaceVAEWarning, match='000002.png.*too small.*000003.png.*16-bit'):
        c = build_cache(root, image_size=32)
    assert len(c) == N - 2 and '000002.png' not in c.names


@pytest.mark.parametrize('layout', ['official', 'kaggle'])
def test_duplicate_attribute_row_is_used_once(tmp_path, layout):
    root, a, p = make(tmp_path/'c', layout)
    f = files(root).attr_file
    rewrite(f, lambda L: L + [L[4 if layout == 'official' else 3].replace('-1', '1')])   # 000003.jpg again, other values
    with pytest.warns(D.FaceVAEWarning) as rec: ix = read_celeba(root)
    msg = [str(r.message) for r in rec if 'listed again' in str(r.message)]
    line = 15 if layout == 'official' else 14
    assert msg == [f'{f} line {line}: 000003.jpg is listed again (first on line {line - 10}); using its first row.']
    assert len(ix) == N and torch.equal(ix.attrs, torch.from_numpy(a))


@pytest.mark.parametrize('layout', ['official', 'kaggle'])
def test_utf8_bom_is_accepted(tmp_path, layout):
    root, a, p = make(tmp_path/'c', layout)
    for f in [files(root).attr_file, files(root).partition_file]: f.write_bytes(b'\xef\xbb\xbf' + f.read_bytes())
    ix = read_celeba(root)
    assert torch.equal(ix.attrs, torch.from_numpy(a)) and ix.partition.tolist() == p.tolist()


def test_interrupted_build_leaves_no_valid_cache(tmp_path, monkeypatch):
    root = make(tmp_path/'c')[0]
    build_cache(root, image_size=32, cache=tmp_path/'k')
    calls = {'n': 0}
    real = D.load_face
    def dying(*a, **k):
        calls['n'] += 1
        if calls['n'] > 5: raise KeyboardInterrupt
        return real(*a, **k)
    monkeypatch.setattr(D, 'load_face', dying)
    with pytest.raises(KeyboardInterrupt):
        build_cache(root, image_size=16, cache=tmp_path/'k')                 # a rebuild that dies halfway
    assert FaceCache.load(tmp_path/'k') is None                               # nothing there looks valid
    assert sorted(p.name for p in (tmp_path/'k').iterdir()) == ['.lock', 'images.npy', 'labels.npz']  # no temporary files left
    monkeypatch.setattr(D, 'load_face', real)
    c = build_cache(root, image_size=16, cache=tmp_path/'k')
    assert c.images.shape == (N, 3, 16, 16)


def test_parallel_build_equals_serial(tmp_path, monkeypatch):
    "The pool (used outside tests for big folders) gives the same bytes as the plain loop."
    monkeypatch.delenv('IN_TEST', raising=False)
    root, n = tmp_path/'c', 2100
    imgs = np.repeat(_images(N), n//N + 1, axis=0)[:n]
    write_celeba(root, imgs, _attrs(n), partition=np.zeros(n, int))
    assert D._n_workers(2, n) == 2 and D._n_workers(None, 100) == 0
    a = build_cache(root, image_size=32, cache=tmp_path/'a', workers=2)
    b = build_cache(root, image_size=32, cache=tmp_path/'b', workers=0)
    assert np.array_equal(a.images, b.images) and a.names == b.names
    monkeypatch.setenv('IN_TEST', '1')
    assert D._n_workers(2, n) == 0


# --- framing ------------------------------------------------------------------------------------------------------

def test_framing_is_relative_to_width(tmp_path):
    "A 2x-downscaled copy gives (nearly) the same crop as the original."
    from PIL import Image
    rng = np.random.default_rng(0)
    big = Image.fromarray(rng.integers(0, 255, (11, 9, 3), dtype=np.uint8)).resize((178, 218), Image.BICUBIC)
    big.save(tmp_path/'big.jpg', quality=95); big.resize((89, 109), Image.LANCZOS).save(tmp_path/'half.jpg', quality=95)
    a, b = load_face(tmp_path/'big.jpg').astype(float), load_face(tmp_path/'half.jpg').astype(float)
    assert np.abs(a - b).mean() < 4
    big.save(tmp_path/'big.png')   # not a JPEG: decoded at full size and resized
    assert np.abs(load_face(tmp_path/'big.png').astype(float) - a).mean() < 4
    assert load_face(tmp_path/'big.jpg', 128).shape == (3, 128, 128)


# --- the loader ---------------------------------------------------------------------------------------------------

@pytest.fixture
def cache(tmp_path):
    n = 40
    write_celeba(tmp_path/'c', np.repeat(_images(N), 4, axis=0)[:n], _attrs(n), partition=[0]*30 + [1]*5 + [2]*5)
    return build_cache(tmp_path/'c', image_size=16)


def _cat(batches): return torch.cat(list(batches))


def test_loader_batches(cache):
    dl = FaceLoader(cache, 'train', batch_size=8, device='cpu')
    assert len(dl) == 3 and dl.n == 30
    xs = list(dl)
    assert all(x.shape == (8, 3, 16, 16) and x.dtype == torch.float32 and x.device.type == 'cpu' for x in xs)
    assert 0 <= min(x.min() for x in xs) and max(x.max() for x in xs) <= 1
    assert len(FaceLoader(cache, 'train', batch_size=8, drop_last=False)) == 4
    assert [len(x) for x in FaceLoader(cache, 'train', batch_size=8, drop_last=False, device='cpu')] == [8, 8, 8, 6]
    with pytest.raises(FaceVAEError, match='5 faces .valid. make no batch of 8'):
        FaceLoader(cache, 'valid', batch_size=8)
    with pytest.raises(FaceVAEError, match='rank=2'):
        FaceLoader(cache, rank=2, world_size=2)


def test_loader_order_flip_and_attrs(cache):
    "Each batch is exactly the cache images at `order`, flipped where `order` says, with their attributes."
    dl = FaceLoader(cache, 'all', batch_size=10, device='cpu', seed=3, with_attrs=True)
    idx, flips = dl.order(0)
    assert sorted(idx.tolist()) == list(range(40)) and 5 < flips.sum() < 35
    x, y = _cat(b[0] for b in dl), _cat(b[1] for b in dl.iter_from(0))
    ref = cache.get(idx)
    ref[flips] = ref[flips].flip(-1)
    assert torch.equal(x, ref) and torch.equal(y, cache.attrs[idx])
    plain = FaceLoader(cache, 'all', batch_size=10, device='cpu', shuffle=False, flip=False)
    assert torch.equal(_cat(plain), cache.get(slice(0, 40)))


def test_loader_resume_is_exact(cache):
    dl = FaceLoader(cache, 'train', batch_size=4, device='cpu', seed=11)
    epochs = [_cat(dl) for _ in range(3)]   # a plain for-loop advances the epoch
    assert dl.epoch == 3 and not torch.equal(epochs[0], epochs[1])
    for e in range(3):
        for b in range(len(dl)):
            fresh = FaceLoader(cache, 'train', batch_size=4, device='cpu', seed=11)   # e.g. after a restart
            assert torch.equal(_cat(fresh.iter_from(e, b)), epochs[e][b*4:]), (e, b)
            assert fresh.epoch == e + 1
    dl.set_epoch(1); assert torch.equal(_cat(dl), epochs[1])
    other = FaceLoader(cache, 'train', batch_size=4, device='cpu', seed=12)
    assert not torch.equal(_cat(other.iter_from(0)), epochs[0])


def test_loader_interrupted_epoch_then_resume(cache):
    "Breaking out of an epoch does not advance it; resuming gives the rest."
    dl = FaceLoader(cache, 'train', batch_size=4, device='cpu', seed=5)
    dl.set_epoch(2)
    it, seen = iter(dl), []
    for _ in range(3): seen.append(next(it))
    del it
    assert dl.epoch == 2
    rest = list(FaceLoader(cache, 'train', batch_size=4, device='cpu', seed=5).iter_from(2, 3))
    assert torch.equal(torch.cat(seen + rest), _cat(FaceLoader(cache, 'train', batch_size=4, device='cpu', seed=5).iter_from(2)))


@pytest.mark.parametrize('world', [2, 3])
def test_loader_shards(cache, world):
    loaders = [FaceLoader(cache, 'all', batch_size=4, device='cpu', seed=2, rank=r, world_size=world) for r in range(world)]
    for e in range(2):
        parts = [dl.order(e)[0].tolist() for dl in loaders]
        assert len({len(p) for p in parts}) == 1 and len(parts[0]) == 40//world      # equal
        flat = sum(parts, [])
        assert len(set(flat)) == len(flat)                                           # disjoint
    assert len({len(dl) for dl in loaders}) == 1
    single = FaceLoader(cache, 'all', batch_size=4, device='cpu', seed=2).order(0)[0]
    assert loaders[0].order(0)[0].tolist() == single[0:(40//world)*world:world].tolist()


# --- real CelebA beside the repo (skipped when absent) -------------------------------------------------------------

def _row(folder, name):
    for line in (folder/'list_attr_celeba.txt').read_text().splitlines()[2:]:
        if line.split()[0] == name: return [v == '1' for v in line.split()[1:]]


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
    monkeypatch.setattr(D, '_decode_all', lambda *a, **k: pytest.fail('decoded again'))
    again = build_cache(folder, cache=tmp_path/'s')
    assert again.meta == c.meta and np.array_equal(again.images[-1], c.images[-1])


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


def test_holdout_indices_are_the_last_names(tmp_path):
    "indices(split, holdout=N): 'valid' is the last N faces by file name, 'train' all the others, whatever the order."
    import torch
    from facevae_nb.data import FaceCache
    names = ['000005.jpg', '000001.jpg', '000004.jpg', '000002.jpg', '000003.jpg']
    fc = FaceCache(images=np.zeros((5, 3, 16, 16), np.uint8), attrs=torch.zeros(5, 40, dtype=torch.bool),
                   partition=torch.zeros(5, dtype=torch.long), names=names)
    assert sorted(names[i] for i in fc.indices('valid', holdout=2)) == ['000004.jpg', '000005.jpg']
    assert sorted(names[i] for i in fc.indices('train', holdout=2)) == ['000001.jpg', '000002.jpg', '000003.jpg']
    assert len(fc.indices('valid')) == 0   # without a holdout: the official partition (all train here)


def test_holdout_has_no_test_split_and_aliases_work():
    import torch
    from facevae_nb.data import FaceCache
    fc = FaceCache(images=np.zeros((6, 3, 16, 16), np.uint8), attrs=torch.zeros(6, 40, dtype=torch.bool),
                   partition=torch.zeros(6, dtype=torch.long), names=[f'{i:06d}.jpg' for i in range(1, 7)])
    with pytest.raises(FaceVAEError, match="no separate test split"): fc.indices('test', holdout=2)
    assert torch.equal(fc.indices('val', holdout=2), fc.indices('valid', holdout=2))
