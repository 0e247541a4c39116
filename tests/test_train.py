"""Process-level tests of the training loop: exact resume after a real SIGKILL, 2-process DDP on CPU,
non-finite losses, the time budget, and refusing pickled code in checkpoints."""
import json, math, os, random, signal, subprocess, sys, textwrap, time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from facevae_nb.core import FaceVAEError, seed_everything
from facevae_nb.data import FaceCache, FaceLoader
from facevae_nb.model import make_vae
from facevae_nb.train import fit, load_checkpoint, run_training, train_config

ROOT = Path(__file__).resolve().parents[1]
TINY = ['--image-size', '32', '--latent-dim', '16', '--widths', '16,32,64', '--n-faces', '400', '--device', 'cpu', '--quiet']


pytestmark = pytest.mark.usefixtures('one_thread')   # tiny models run fastest on one thread (conftest)


def _blobs(n=320, s=32, seed=0):
    "A FaceCache of simple coloured discs (no face generator needed): 10% valid."
    rng = np.random.default_rng(seed); yy, xx = np.mgrid[:s, :s]
    imgs = np.zeros((n, 3, s, s), np.uint8)
    for i in range(n):
        cx, cy, r = *rng.uniform(s*.3, s*.7, 2), rng.uniform(s*.15, s*.35)
        col, m = rng.uniform(0, 255, 3), ((xx - cx)**2 + (yy - cy)**2) < r*r
        for c in range(3): imgs[i, c] = np.where(m, col[c], 255 - col[c])
    part = np.zeros(n, np.int64); part[-n//10:] = 1
    return FaceCache(imgs, np.zeros((n, 40), bool), part, [f'{i+1:06d}.jpg' for i in range(n)])


def _tiny_model():
    seed_everything(0)
    return make_vae('default', image_size=32, latent_dim=16, widths=(16, 32, 64))


class _Inject:
    "Wrap a FaceLoader: put a NaN into the batches whose global step is in `bad`, and snapshot the model around them."
    def __init__(self, dl, bad, model=None):
        self.dl, self.bad, self.model, self.snaps = dl, set(bad), model, {}
    def __len__(self): return len(self.dl)
    def iter_from(self, epoch, batch):
        for i, x in enumerate(self.dl.iter_from(epoch, batch), start=batch):
            step = epoch*len(self.dl) + i
            if self.model is not None and step - 1 in self.bad:     # the step before was the bad one: it is done now
                self.snaps[step - 1] = (self.snaps[step - 1], {k: v.clone() for k, v in self.model.state_dict().items()})
            if step in self.bad:
                if self.model is not None: self.snaps[step] = {k: v.clone() for k, v in self.model.state_dict().items()}
                x = x.clone(); x[0, 0, 0, 0] = float('nan')
            yield x


def test_nan_batch_is_skipped_without_touching_weights(tmp_path, capsys):
    cache, m = _blobs(), _tiny_model()
    dl = _Inject(FaceLoader(cache, 'train', batch_size=32, device='cpu'), bad={3}, model=m)
    cfg = train_config('default', epochs=1, ckpt_every=0)
    r = fit(m, dl, FaceLoader(cache, 'valid', batch_size=64, shuffle=False, flip=False, device='cpu', drop_last=False),
            cfg, out=tmp_path/'run', device='cpu', quiet=True)
    assert r['metrics'][-1]['skipped'] == 1 and r['stopped'] == 'done'
    before, after = dl.snaps[3]
    for k in before: assert torch.equal(before[k], after[k]), k            # the NaN step changed nothing
    assert all(torch.isfinite(v).all() for v in m.state_dict().values())
    assert math.isfinite(r['metrics'][-1]['loss']) and math.isfinite(r['metrics'][-1]['val_psnr'])
    assert 'non-finite' in capsys.readouterr().err                            # it was logged
    assert r['metrics'][-1]['lr'] < cfg.lr                                     # and the LR backed off


def test_nan_streak_stops_with_clear_error_and_good_checkpoint(tmp_path):
    cache, m = _blobs(), _tiny_model()
    dl = _Inject(FaceLoader(cache, 'train', batch_size=32, device='cpu'), bad=range(4, 100))
    cfg = train_config('default', epochs=2, ckpt_every=2, nan_patience=3)
    with pytest.raises(FaceVAEError, match='non-finite for 3 steps in a row') as e:
        fit(m, dl, None, cfg, out=tmp_path/'run', device='cpu', quiet=True)
    assert 'last good checkpoint' in str(e.value)
    ck = load_checkpoint(tmp_path/'run'/'checkpoints')
    assert ck['step'] == 4                                                    # written before the streak, not during it
    assert all(torch.isfinite(v).all() for v in ck['weights'].values())
    sd = m.state_dict()
    for k, v in ck['weights'].items(): assert torch.equal(v, sd[k].contiguous()), k   # skipped steps left weights alone


def test_time_budget_stops_annealed_with_checkpoint(tmp_path):
    cache, m = _blobs(), _tiny_model()
    # 6 s: long enough that a one-off pause (e.g. a garbage collection of the whole test process's heap, ~1 s)
    # near the end cannot cut the schedule short; the annealing check below is what this test is for
    cfg = train_config('default', epochs=1000, max_minutes=0.1, ckpt_every=0)
    r = fit(m, FaceLoader(cache, 'train', batch_size=32, device='cpu'),
            FaceLoader(cache, 'valid', batch_size=64, shuffle=False, flip=False, device='cpu', drop_last=False),
            cfg, out=tmp_path/'run', device='cpu', quiet=True)
    assert r['stopped'] == 'time' and 0 < r['step'] < 1000*9
    assert r['metrics'][-1]['lr'] < 0.1*cfg.lr                                # the schedule was laid out over the budget
    ck = load_checkpoint(tmp_path/'run'/'checkpoints')
    assert ck['step'] == r['step'] and (tmp_path/'run'/'model.safetensors').exists()
    r2 = fit(_tiny_model(), FaceLoader(cache, 'train', batch_size=32, device='cpu'), None, cfg, out=tmp_path/'run',
             resume=True, device='cpu', quiet=True)                  # the budget counts across resumes: nothing left
    assert r2['stopped'] == 'time' and r2['step'] == r['step'] and r2['metrics'] == r['metrics']


def test_malicious_checkpoint_is_refused(tmp_path):
    cache, m = _blobs(), _tiny_model()
    fit(m, FaceLoader(cache, 'train', batch_size=32, device='cpu'), None, train_config('default', epochs=1),
        out=tmp_path/'run', device='cpu', quiet=True)
    ptr = json.loads((tmp_path/'run'/'checkpoints'/'last.json').read_text())

    class Evil:
        def __reduce__(self): return (os.system, (f'touch {tmp_path}/pwned',))
    torch.save({'step': 1, 'evil': Evil()}, tmp_path/'run'/'checkpoints'/ptr['state'])
    with pytest.raises(FaceVAEError, match='refusing to load'):
        fit(_tiny_model(), FaceLoader(cache, 'train', batch_size=32, device='cpu'), None, train_config('default', epochs=2),
            out=tmp_path/'run', resume=True, device='cpu', quiet=True)
    assert not (tmp_path/'pwned').exists()


# --- real processes -------------------------------------------------------------------------------------------

N_FACES = 400
SCRIPT = textwrap.dedent('''
    # `facevae train ARGS` through the real command line, keeping a handle on the trained model of each rank
    import os, sys
    from safetensors.torch import save_file
    import facevae_nb.train as T, facevae_nb.cli as cli
    seen, _fit = {}, T.fit
    def fit(model, *a, **k): seen['model'] = model; return _fit(model, *a, **k)
    T.fit = fit
    out = sys.argv[sys.argv.index('--out') + 1]
    rc = cli.main(['train'] + sys.argv[1:])
    if rc: sys.exit(rc)
    rank = int(os.environ.get('RANK', 0))
    save_file({k: v.detach().contiguous() for k, v in seen['model'].state_dict().items()}, f'{out}/final_rank{rank}.safetensors')
''')


@pytest.fixture(scope='module')
def script(tmp_path_factory):
    "The training script, and a face cache built once for all the subprocesses (which share $FACEVAE_CACHE)."
    from facevae_nb.faces import open_faces
    open_faces('generated', image_size=32, n=N_FACES)
    p = tmp_path_factory.mktemp('scripts')/'train_script.py'
    p.write_text(SCRIPT)
    return p


def _env():
    return dict(os.environ, OMP_NUM_THREADS='1', IN_TEST='1', PYTHONPATH=str(ROOT))


def _train(script, out, *args):
    "Start `facevae train` on the tiny model in a subprocess (3 epochs, a checkpoint every 3 steps)."
    args = [*TINY, '--out', str(out), '--epochs', '3', '--batch-size', '32', '--ckpt-every', '3', '--seed', '1', *args]
    return subprocess.Popen([sys.executable, str(script), *args], env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _weights_equal(a, b):
    wa, wb = load_file(str(a)), load_file(str(b))
    return wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def test_exact_resume_after_sigkill(script, tmp_path):
    "Kill a training process with SIGKILL at a random step, resume it: the weights equal an uninterrupted run's, bit for bit."
    full, killed = _train(script, tmp_path/'full'), _train(script, tmp_path/'killed')
    last, target = tmp_path/'killed'/'checkpoints'/'last.json', random.Random().randint(3, 15)
    deadline = time.time() + 120
    while time.time() < deadline and killed.poll() is None:
        if last.exists() and json.loads(last.read_text())['step'] >= target: break
        time.sleep(0.02)
    time.sleep(random.uniform(0, 0.3))                      # somewhere between checkpoints
    assert killed.poll() is None, f'the run finished before it could be killed: {killed.communicate()[1][-2000:]}'
    killed.send_signal(signal.SIGKILL); killed.wait()
    step_at_kill = json.loads(last.read_text())['step']
    total = json.loads((tmp_path/'killed'/'config.json').read_text())['data']['n_train'] // 32 * 3
    assert step_at_kill < total
    resumed = _train(script, tmp_path/'killed', '--resume')
    for p in (full, resumed):
        o, e = p.communicate(timeout=300); assert p.returncode == 0, e[-3000:]
    assert _weights_equal(tmp_path/'full'/'final_rank0.safetensors', tmp_path/'killed'/'final_rank0.safetensors')
    assert _weights_equal(tmp_path/'full'/'model.safetensors', tmp_path/'killed'/'model.safetensors')
    ma = [json.loads(l) for l in (tmp_path/'full'/'metrics.jsonl').read_text().splitlines()]
    mb = [json.loads(l) for l in (tmp_path/'killed'/'metrics.jsonl').read_text().splitlines()]
    drop = lambda rows: [{k: v for k, v in r.items() if k != 'minutes'} for r in rows]
    assert drop(ma) == drop(mb) and len(ma) == 3


def test_ddp_two_processes_on_cpu(script, tmp_path):
    "torchrun with 2 CPU processes: both ranks end identical, and the loss matches a 1-process run with the same global batch."
    args = [*TINY, '--epochs', '2', '--batch-size', '32', '--seed', '0']
    ddp = subprocess.Popen([sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', '2',
                            str(script), *args, '--out', str(tmp_path/'ddp')], env=_env(), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    one = subprocess.Popen([sys.executable, str(script), *args, '--out', str(tmp_path/'one')], env=_env(),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for p in (ddp, one):
        o, e = p.communicate(timeout=300); assert p.returncode == 0, e[-3000:]
    assert _weights_equal(tmp_path/'ddp'/'final_rank0.safetensors', tmp_path/'ddp'/'final_rank1.safetensors')
    cfg = json.loads((tmp_path/'ddp'/'config.json').read_text())
    assert cfg['world_size'] == 2
    a = [json.loads(l) for l in (tmp_path/'ddp'/'metrics.jsonl').read_text().splitlines()][-1]
    b = [json.loads(l) for l in (tmp_path/'one'/'metrics.jsonl').read_text().splitlines()][-1]
    assert a['step'] == b['step']                           # same global batch: same number of steps
    # sigma is calibrated on the global batch (averaged across ranks), so the objective itself matches a 1-process run
    assert abs(a['loss'] - b['loss']) < 0.05*abs(b['loss']), (a['loss'], b['loss'])
    assert abs(a['mse'] - b['mse']) < 0.08*b['mse'], (a['mse'], b['mse'])
    # (the KL of a 20-step tiny model swings 1-5 nats with the posterior noise alone, which each rank draws itself,
    # so it is no measure of equivalence here; the loss, MSE and validation numbers are)
    assert abs(a['val_nelbo_bpd'] - b['val_nelbo_bpd']) < 0.1, (a['val_nelbo_bpd'], b['val_nelbo_bpd'])
    assert abs(a['val_psnr'] - b['val_psnr']) < 0.5, (a['val_psnr'], b['val_psnr'])


def test_fp16_scaler_survives_a_skipped_step():
    "With fp16 + GradScaler, a skipped (non-finite) step must not break the next one, and the scale backs off."
    from facevae_nb.train import train_step
    m = _tiny_model(); opt = torch.optim.Adam(m.parameters(), 1e-3)
    scaler = torch.amp.GradScaler('cpu', enabled=True)
    x = torch.from_numpy(_blobs(8).images[:8]).float()/255
    bad = x.clone(); bad[0, 0, 0, 0] = float('nan')
    s0 = scaler.get_scale()
    ok, _ = train_step(m, bad, opt, scaler, kl_weight=1.0, grad_clip=1.0, amp_dtype=None)
    assert not ok and scaler.get_scale() < s0
    ok, loss = train_step(m, x, opt, scaler, kl_weight=1.0, grad_clip=1.0, amp_dtype=None)
    assert ok and math.isfinite(loss['loss'])


def test_resume_from_a_checkpoint_without_prior_buffers(tmp_path):
    "Runs checkpointed before the fitted prior existed (no prior_loc/prior_tril) still resume, with N(0, I)."
    from safetensors.torch import save_file
    from safetensors import safe_open
    cache, out = _blobs(), tmp_path/'run'
    dl = lambda: FaceLoader(cache, 'train', batch_size=32, device='cpu')
    fit(_tiny_model(), dl(), None, train_config('default', epochs=1, ckpt_every=0), out=out, device='cpu', quiet=True)
    ptr = json.loads((out/'checkpoints'/'last.json').read_text()); wf = out/'checkpoints'/ptr['weights']
    with safe_open(str(wf), framework='pt') as f: meta = f.metadata()
    save_file({k: v for k, v in load_file(str(wf)).items() if not k.startswith('prior_')}, str(wf), metadata=meta)
    res = fit(_tiny_model(), dl(), None, train_config('default', epochs=2, ckpt_every=0), out=out, resume=True,
              device='cpu', quiet=True)
    assert res['epoch'] == 2


def test_refitting_the_prior_twice_scores_the_standard_prior_both_times(tmp_path):
    from facevae_nb.train import fit_run_prior
    from facevae_nb.model import save_vae
    cache, out = _blobs(), tmp_path/'run'
    m = _tiny_model()
    fit(m, FaceLoader(cache, 'train', batch_size=32, device='cpu'), None, train_config('default', epochs=1, ckpt_every=0),
        out=None, device='cpu', quiet=True)
    save_vae(m, out/'model.safetensors')
    loaders = lambda: (FaceLoader(cache, 'train', batch_size=64, shuffle=False, flip=False, device='cpu', drop_last=False),
                       FaceLoader(cache, 'valid', batch_size=64, shuffle=False, flip=False, device='cpu', drop_last=False))
    a = fit_run_prior(out, *loaders()); b = fit_run_prior(out, *loaders())
    assert a['standard']['nelbo_bpd'] == pytest.approx(b['standard']['nelbo_bpd'], abs=1e-9)
    assert b['fitted']['nelbo_bpd'] == pytest.approx(a['fitted']['nelbo_bpd'], abs=1e-6)
