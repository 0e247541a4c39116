"""The widgets over the real Jupyter protocol: a kernel process, driven the way a browser drives it.

The notebook `09_widgets` tests the explorers in-process (setting slider values in Python). Here a real IPython kernel
(the one Jupyter, VS Code and Colab all start) builds an explorer, and the test plays the browser: it reads the
widget models the kernel opens, sends a slider change as a `comm_msg` and checks that the kernel answers with a new
PNG for the edited image, and uploads a photo the way the browser's FileUpload does. No browser and no files are
needed (a tiny untrained model and random faces).

The kernel is this venv's (ipywidgets 8) and, when `FACEVAE_COLAB_VENV` names a venv built from Colab's versions
(see tests/test_colab.py), also that venv's: ipywidgets 7.7.1 on ipykernel 6.17, whose messages differ (no
`echo_update`; an upload arrives as `metadata` and `data` traits and a counter, not as a `value` tuple).
"""
import hashlib, io, json, os, queue, sys, time
from pathlib import Path

import pytest

jupyter_client = pytest.importorskip('jupyter_client')
pytest.importorskip('ipykernel')

SETUP = r'''
import numpy as np, torch
from IPython.display import display
from facevae_nb.model import make_vae
from facevae_nb.data import FaceCache, CELEBA_ATTRS
from facevae_nb.widgets import edit_explorer, morph_explorer
torch.manual_seed(0)
model = make_vae('default', image_size=32, latent_dim=8, widths=(8, 16, 32)).eval()
rng = np.random.default_rng(0)
faces = FaceCache(rng.integers(0, 256, (6, 3, 32, 32), dtype=np.uint8), rng.random((6, 40)) < 0.5, [1]*6,
                  [f'{i:06d}.jpg' for i in range(6)])
vectors = {a: torch.randn(8) for a in CELEBA_ATTRS}
ex = edit_explorer(model=model, faces=faces, vectors=vectors, attrs=['Smiling'])
display(ex)
print('IDS', ex.widget.model_id, ex.weights['Smiling'].model_id, ex.edited.model_id, ex.recon.value == ex.edited.value)
'''


PYTHONS = {'this venv': sys.executable}
if os.environ.get('FACEVAE_COLAB_VENV'): PYTHONS['colab venv'] = str(Path(os.environ['FACEVAE_COLAB_VENV'])/'bin'/'python')


@pytest.fixture(scope='module', params=list(PYTHONS))
def kernel(request, tmp_path_factory):
    "A kernel of this venv's Python, or of the Colab venv's."
    from jupyter_client.kernelspec import KernelSpecManager
    d = tmp_path_factory.mktemp('kernels')
    (d/'k').mkdir()
    (d/'k'/'kernel.json').write_text(json.dumps(dict(argv=[PYTHONS[request.param], '-m', 'ipykernel_launcher', '-f',
                                                           '{connection_file}'], display_name='k', language='python')))
    km = jupyter_client.KernelManager(kernel_name='k', kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(d)]))
    km.start_kernel(cwd=str(tmp_path_factory.mktemp('cwd')))
    kc = km.client(); kc.start_channels(); kc.wait_for_ready(timeout=120)
    try: yield kc
    finally:
        kc.stop_channels(); km.shutdown_kernel(now=True)


def _iopub(kc, until, timeout=60):
    "Collect iopub messages until `until(msg)` is true; returns them all."
    out, end = [], time.time() + timeout
    while time.time() < end:
        try: m = kc.get_iopub_msg(timeout=1)
        except queue.Empty: continue
        out.append(m)
        if until(m): return out
    raise AssertionError(f'timed out; got {[m["msg_type"] for m in out]}')


def _send(kc, comm_id, data, buffers=()):
    "What the browser sends when a control changes: a comm message (binary parts in `buffers`) to the widget's model."
    kc.session.send(kc.shell_channel.socket, 'comm_msg', {'comm_id': comm_id, 'data': data}, buffers=list(buffers))


def _run(kc, code):
    msg_id = kc.execute(code)
    msgs = _iopub(kc, lambda m: m['parent_header'].get('msg_id') == msg_id and m['msg_type'] == 'status'
                  and m['content']['execution_state'] == 'idle', timeout=120)
    errs = [m['content'] for m in msgs if m['msg_type'] == 'error']
    assert not errs, '\n'.join(errs[0]['traceback'])
    return msgs


def test_explorer_over_the_kernel_protocol(kernel):
    kc = kernel
    msgs = _run(kc, SETUP)
    text = ''.join(m['content']['text'] for m in msgs if m['msg_type'] == 'stream')
    box, slider, edited, same = text.split('IDS ')[1].split()
    assert same == 'True'                                                    # weight 0: edit == reconstruction
    opened = {m['content']['comm_id']: m['content'] for m in msgs if m['msg_type'] == 'comm_open'}
    assert {box, slider, edited} <= set(opened)                              # the browser learns about every widget
    assert opened[slider]['data']['state']['_model_name'] == 'FloatSliderModel'
    assert opened[edited]['data']['state']['_model_name'] == 'ImageModel'
    shown = [m['content']['data'] for m in msgs if m['msg_type'] == 'display_data']
    assert any(d.get('application/vnd.jupyter.widget-view+json', {}).get('model_id') == box for d in shown)

    # the browser moves the Smiling slider to 2.0: the kernel must send a new PNG for the edited image
    _send(kc, slider, {'method': 'update', 'state': {'value': 2.0}, 'buffer_paths': []})
    upd = _iopub(kc, lambda m: m['msg_type'] == 'comm_msg' and m['content']['comm_id'] == edited
                 and m['content']['data'].get('method') in ('update', 'echo_update'))[-1]
    assert ['value'] in upd['content']['data']['buffer_paths']
    png = bytes(upd['buffers'][upd['content']['data']['buffer_paths'].index(['value'])])
    assert png[:4] == b'\x89PNG'
    msgs = _run(kc, "import hashlib; print('STATE', ex.weights['Smiling'].value, ex.edited.value == ex.recon.value, "
                    "hashlib.sha1(ex.edited.value).hexdigest())")
    text = ''.join(m['content']['text'] for m in msgs if m['msg_type'] == 'stream')
    assert f'STATE 2.0 False {hashlib.sha1(png).hexdigest()}' in text, text    # what the browser got is the new edit

    # and a click on "reset weights" brings back the reconstruction
    msgs = _run(kc, "print('RESET', ex.reset.model_id)")
    reset = ''.join(m['content']['text'] for m in msgs if m['msg_type'] == 'stream').split('RESET ')[1].split()[0]
    _send(kc, reset, {'method': 'custom', 'content': {'event': 'click'}})
    _iopub(kc, lambda m: m['msg_type'] == 'comm_msg' and m['content']['comm_id'] == edited)
    msgs = _run(kc, "print('AFTER', ex.weights['Smiling'].value, ex.edited.value == ex.recon.value)")
    assert 'AFTER 0.0 True' in ''.join(m['content']['text'] for m in msgs if m['msg_type'] == 'stream')


def _printed(kc, code):
    return ''.join(m['content']['text'] for m in _run(kc, code) if m['msg_type'] == 'stream')


def test_upload_over_the_kernel_protocol(kernel):
    "A photo chosen in the browser's FileUpload becomes the face: ipywidgets 7's and 8's messages."
    from PIL import Image
    kc = kernel
    if 'True' not in _printed(kc, "print('ex' in globals())"): _run(kc, SETUP)         # when run on its own
    major, upload = _printed(kc, "import ipywidgets; print(ipywidgets.__version__.split('.')[0], ex.upload.model_id)").split()
    buf = io.BytesIO(); Image.new('RGB', (178, 218), (200, 120, 90)).save(buf, format='jpeg'); photo = buf.getvalue()
    meta = {'name': 'me.jpg', 'type': 'image/jpeg', 'size': len(photo)}
    if major == '7':   # widgets 7's FileUploadView: metadata, data (binary) and a bumped counter, in one update
        state, paths = {'metadata': [dict(meta, lastModified=0)], 'data': [None], '_counter': 1}, [['data', 0]]
    else:              # widgets 8: the value, a list of file dicts whose content is binary
        state, paths = {'value': [dict(meta, last_modified=0, content=None)]}, [['value', 0, 'content']]
    _send(kc, upload, {'method': 'update', 'state': state, 'buffer_paths': paths}, [photo])
    # the kernel handles shell messages in order: the next execute request sees the upload done
    got = _printed(kc, "import numpy as np; print('GOT', ex.label, len(ex.upload.value), "
                       "np.asarray(ex.x).mean(axis=(1, 2)).round(2).tolist())")
    assert got.startswith('GOT me.jpg 0 '), got                # the photo is the face, and the upload is cleared
    r, g, b = json.loads(got.split(' ', 3)[3])
    assert abs(r - 200/255) < 0.03 and abs(g - 120/255) < 0.03 and abs(b - 90/255) < 0.03, got


# --- in-process: an uploaded photo is shown edited at its own proportions (issue 19); photos of many sizes -----------

def _explorer():
    "An edit explorer on a tiny untrained 32 px model, random faces and random vectors (as SETUP, in this process)."
    import numpy as np, torch
    from facevae_nb.model import make_vae
    from facevae_nb.data import FaceCache, CELEBA_ATTRS
    from facevae_nb.widgets import edit_explorer
    torch.manual_seed(0)
    model = make_vae('default', image_size=32, latent_dim=8, widths=(8, 16, 32)).eval()
    rng = np.random.default_rng(0)
    faces = FaceCache(rng.integers(0, 256, (6, 3, 32, 32), dtype=np.uint8), rng.random((6, 40)) < 0.5, [1]*6,
                      [f'{i:06d}.jpg' for i in range(6)])
    return edit_explorer(model=model, faces=faces, vectors={a: torch.randn(8) for a in CELEBA_ATTRS}, attrs=['Smiling'],
                         photo_size=320)


@pytest.mark.parametrize('w,h,shown', [(50, 70, (50, 70)), (400, 300, (320, 240)), (89, 109, (89, 109)),
                                       (1200, 500, (320, 133))])
def test_upload_shows_the_photo_edited(w, h, shown):
    "Smaller and larger than the model, non-square: the photo as shown, untouched at weight 0 and outside its frame."
    import io, math, numpy as np, torch
    from PIL import Image
    from facevae_nb.widgets import simulate_upload, from_png
    from facevae_nb.figures import photo_frame
    ex = _explorer()
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (h, w, 3), dtype=np.uint8)).save(buf, format='png')
    simulate_upload(ex.upload, 'me.png', buf.getvalue(), 'image/png')
    assert ex.status.value.startswith('me.png') and ex.view.value == 'photo' and not ex.view.disabled, ex.status.value
    W_, H_ = shown
    assert tuple(ex.photo.shape) == (3, H_, W_)                                   # shrunk to 320 px at most, never enlarged
    k = 320/max(W_, H_)
    assert (ex.edited.width, ex.edited.height) == (str(round(W_*k)), str(round(H_*k)))   # shown at its proportions
    if (W_, H_) == (w, h):                                                      # not shrunk: the file's pixels exactly
        assert (ex.photo.permute(1, 2, 0).numpy() == np.asarray(Image.open(io.BytesIO(buf.getvalue())))).all()
    assert ex.edited.value == ex.original.value                                  # weight 0: the photo, pixel for pixel
    ex.weights['Smiling'].value = 3.0
    got = (from_png(ex.edited.value)*255).round().byte()
    l, t, s = photo_frame(W_, H_, 32); inside = torch.zeros(H_, W_, dtype=torch.bool)
    inside[max(0, math.floor(t)):math.ceil(t + s), max(0, math.floor(l)):math.ceil(l + s)] = True
    assert (got[:, ~inside] == ex.photo[:, ~inside]).all() and (got[:, inside] != ex.photo[:, inside]).any()
    ex.view.value = 'reconstruction'                                             # the 64-pixel view is still there
    assert tuple(from_png(ex.edited.value).shape) == (3, 32, 32) and ex.edited.width == '160'
    ex.reset_weights(); ex.view.value = 'photo'
    assert ex.edited.value == ex.original.value
