"facevae_nb.core: devices, atomic files (permissions, errors that name the file), option checks and image files."
import errno, os, subprocess, sys

import pytest
import torch
from PIL import Image

from facevae_nb.core import (FaceVAEError, atomic_path, atomic_write_text, check_options, check_writable, get_device,
                             read_json, save_grid)


@pytest.mark.parametrize('umask', [0o022, 0o002, 0o077])
def test_new_files_follow_the_umask(tmp_path, umask):
    old = os.umask(umask)
    try: p = atomic_write_text(tmp_path/'a.txt', 'x')
    finally: os.umask(old)
    assert p.stat().st_mode & 0o777 == 0o666 & ~umask


def test_replaced_file_keeps_its_permissions(tmp_path):
    p = atomic_write_text(tmp_path/'a.txt', 'x'); os.chmod(p, 0o604)
    atomic_write_text(p, 'y')
    assert p.stat().st_mode & 0o777 == 0o604 and p.read_text() == 'y'


def test_write_errors_name_the_final_file(tmp_path):
    from safetensors import SafetensorError
    for exc in [OSError(errno.ENOSPC, 'No space left on device'),
                SafetensorError('Error while serializing: IoError(Os { code: 28, kind: StorageFull, message: "x" })')]:
        with pytest.raises(OSError) as e:
            with atomic_path(tmp_path/'m.safetensors') as t: t.write_bytes(b'1'); raise exc
        assert (e.value.errno, e.value.filename) == (errno.ENOSPC, str(tmp_path/'m.safetensors'))
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(FaceVAEError, match='is a folder'): atomic_write_text(tmp_path, 'x')


def test_check_writable(tmp_path):
    assert check_writable(tmp_path/'a'/'b.png') == tmp_path/'a'/'b.png' and not (tmp_path/'a').exists()
    with pytest.raises(FaceVAEError, match='is a folder'): check_writable(tmp_path)
    (tmp_path/'f').write_text('x')
    with pytest.raises(FaceVAEError, match='is a file'): check_writable(tmp_path/'f', folder=True)
    with pytest.raises(FaceVAEError, match='is a file'): check_writable(tmp_path/'f'/'x.png')
    if os.path.isdir('/sys'):
        with pytest.raises(OSError) as e: check_writable('/sys/facevae/x.png')
        assert e.value.filename == '/sys/facevae'


@pytest.mark.parametrize('dev', ['gpu', '0', '-1', 'nan', 'abc', 'meta'])
def test_bad_device_is_one_clear_error(dev):
    with pytest.raises(FaceVAEError, match=f"device={dev!r} is not a device"): get_device(dev)


def test_check_options():
    assert check_options(n=1, seed=0, temperature=-2.0, run='x', lr=None) == dict(n=1, seed=0, temperature=-2.0, run='x', lr=None)
    for kw in [dict(n=0), dict(nrow=-1), dict(k=0), dict(batch_size=0), dict(seed=-1), dict(minutes=0.0), dict(epochs=0),
               dict(temperature=float('nan')), dict(anything=float('inf')), dict(k=1.5)]:
        with pytest.raises(FaceVAEError, match=list(kw)[0]): check_options(**kw)


def test_read_json_names_a_damaged_file(tmp_path):
    (tmp_path/'c.json').write_text('{"a": [1, 2')
    with pytest.raises(FaceVAEError, match=r'c.json is damaged: it is not valid JSON'): read_json(tmp_path/'c.json')


def test_save_grid_writes_the_format_its_name_asks_for(tmp_path):
    x = torch.rand(4, 3, 8, 8)
    for ext, fmt in [('.png', 'PNG'), ('.jpg', 'JPEG'), ('.JPEG', 'JPEG'), ('.tif', 'TIFF')]:
        assert Image.open(save_grid(x, tmp_path/f'g{ext}')).format == fmt
    for bad in ['g.gif', 'g', 'g.pdf']:
        with pytest.raises(FaceVAEError, match='not an image type'): save_grid(x, tmp_path/bad)
    with pytest.raises(FaceVAEError, match='NaN'): save_grid(x*float('nan'), tmp_path/'n.png')
    with pytest.raises(FaceVAEError, match='nrow=0'): save_grid(x, tmp_path/'z.png', nrow=0)
    assert not (tmp_path/'n.png').exists() and not (tmp_path/'z.png').exists()


def test_importing_the_package_is_light(tmp_path):
    "Nothing heavy at import time: `import facevae_nb.core` loads neither torch nor numpy, and writes nothing."
    env = dict(os.environ, HOME=str(tmp_path), MPLCONFIGDIR=str(tmp_path/'mpl'))
    r = subprocess.run([sys.executable, '-c', "import sys, facevae_nb, facevae_nb.core, facevae_nb.cli; "
                        "print(sorted(m for m in ('torch', 'numpy', 'matplotlib') if m in sys.modules))"],
                       capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == '[]', r.stdout + r.stderr
    assert list(tmp_path.iterdir()) == []
