"""Training as processes and real runs: exact resume after a real SIGKILL, 2-process DDP on CPU, non-finite losses
and time budgets in real runs, run folders shared with a user's files or another process, and many bad option values.
The recipe, the guarded step, the prior refit, the checks before a run and the checkpoints are checked in
nbs/05_train.ipynb, nbs/05c_training_run.ipynb and nbs/04b_runs.ipynb."""
import dataclasses, json, math, os, random, re, signal, subprocess, sys, textwrap, time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from facevae_nb.core import FaceVAEError, seed_everything, device_settings
from facevae_nb.data import FaceCache, FaceLoader
from facevae_nb.model import make_vae
from facevae_nb.runs import load_checkpoint
from facevae_nb.train import fit, train_config, Trainer
from facevae_nb.train_command import run_training

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


# plumbing: a loader wrapper that injects NaN batches into a real `fit` and snapshots the weights around them
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


# plumbing: a loader wrapper that injects NaN batches into a real `fit` and snapshots the weights around them
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


class FakeClock:
    "A clock that advances `tick` seconds each time it is read: how many steps a time budget allows no longer depends on the machine's load."
    def __init__(self, tick=0.01): self.t, self.tick = 0.0, tick
    def __call__(self): self.t += self.tick; return self.t


def _budget_fit(cache, out, max_minutes, resume=False, valid=True, model=None):
    cfg = train_config('default', epochs=1000, max_minutes=max_minutes, ckpt_every=0)
    vdl = FaceLoader(cache, 'valid', batch_size=64, shuffle=False, flip=False, device='cpu', drop_last=False) if valid else None
    return cfg, fit(model or _tiny_model(), FaceLoader(cache, 'train', batch_size=32, device='cpu'), vdl, cfg, out=out,
                    resume=resume, device='cpu', quiet=True, clock=FakeClock())


# a real training run (tens of steps under a fake clock, then a resume): too slow for the notebook
def test_time_budget_stops_annealed_with_checkpoint(tmp_path):
    cache = _blobs()
    cfg, r = _budget_fit(cache, tmp_path/'run', 0.02)                    # 1.2 fake seconds, 3 reads (0.03 s) per step
    assert r['stopped'] == 'time' and 20 < r['step'] < 60, r['step']
    assert r['metrics'][-1]['lr'] < 0.1*cfg.lr                                # the schedule was laid out over the budget
    ck = load_checkpoint(tmp_path/'run'/'checkpoints')
    assert ck['step'] == r['step'] and (tmp_path/'run'/'model.safetensors').exists()
    assert ck['state']['time_stop'] == pytest.approx(1.2)                     # the decision to stop is saved ...
    _, r2 = _budget_fit(cache, tmp_path/'run', 0.02, resume=True, valid=False)
    assert r2['stopped'] == 'time' and r2['step'] == r['step'] and r2['metrics'] == r['metrics']   # ... and honoured
    assert _budget_fit(cache, tmp_path/'again', 0.02)[1]['step'] == r['step']   # the same steps every time


# a real training run (tens of steps under a fake clock, twice): too slow for the notebook
def test_a_larger_budget_continues_a_time_stopped_run(tmp_path):
    cache = _blobs()
    _, r = _budget_fit(cache, tmp_path/'run', 0.02)
    cfg, r2 = _budget_fit(cache, tmp_path/'run', 0.04, resume=True)
    assert r2['stopped'] == 'time' and r2['step'] > r['step'] and r2['metrics'][:len(r['metrics'])] == r['metrics']
    assert r2['metrics'][-1]['lr'] < 0.1*cfg.lr                               # annealed again at the new end
    assert load_checkpoint(tmp_path/'run'/'checkpoints')['state']['time_stop'] == pytest.approx(2.4)


# a real training run (tens of steps under a fake clock, then a resume): too slow for the notebook
def test_a_time_stop_before_any_step_is_saved(tmp_path):
    "A resume whose raised budget fits no step stops at once, and saves the new decision (no metrics row to add)."
    cache = _blobs(); out = tmp_path/'run'
    _, r = _budget_fit(cache, out, 0.02)
    _, r1 = _budget_fit(cache, out, 0.020001, resume=True)                 # raised, but by less than a step
    assert r1['step'] == r['step'] and r1['metrics'] == r['metrics']
    assert load_checkpoint(out/'checkpoints')['state']['time_stop'] == pytest.approx(0.020001*60)


# a real training run (tens of steps under a fake clock, then a resume): too slow for the notebook
def test_resume_from_a_checkpoint_without_a_time_stop(tmp_path):
    "Checkpoints written before `time_stop` existed still resume."
    cache, out = _blobs(), tmp_path/'run'
    _, r = _budget_fit(cache, out, 0.02)
    ptr = json.loads((out/'checkpoints'/'last.json').read_text()); sf = out/'checkpoints'/ptr['state']
    s = torch.load(sf, weights_only=True); s.pop('time_stop'); torch.save(s, sf)
    _, r2 = _budget_fit(cache, out, 0.02, resume=True)
    assert r2['stopped'] == 'time' and r2['step'] >= r['step']
    assert load_checkpoint(out/'checkpoints')['state']['time_stop'] == pytest.approx(1.2)



# real training runs (a mid-epoch checkpoint, a copy of it rewritten in the old format, both resumed): too slow for
# the notebook
def test_a_checkpoint_with_the_state_names_of_before_trainstate_resumes_the_same(tmp_path):
    "Checkpoints from before `TrainState` (keys dt, acc, log) resume exactly like the same checkpoint in today's format."
    import itertools, shutil
    from facevae_nb.runs import open_run
    cache = _blobs(); dl = lambda: FaceLoader(cache, 'train', batch_size=32, device='cpu')
    cfg = train_config('default', epochs=2, ckpt_every=0, amp=False)
    with open_run(tmp_path/'new'):                                  # 4 steps into the first epoch, then a checkpoint
        t = Trainer(_tiny_model(), dl(), cfg=cfg, out=tmp_path/'new', device='cpu', quiet=True)
        for x in itertools.islice(dl().iter_from(0, 0), 4): t.step(x, (t.state.step + 1)/t.total_steps)
        t.state.sec_per_step = 0.5; t.checkpoint()
    shutil.copytree(tmp_path/'new', tmp_path/'old')
    ptr = json.loads((tmp_path/'old'/'checkpoints'/'last.json').read_text()); sf = tmp_path/'old'/'checkpoints'/ptr['state']
    s = torch.load(sf, weights_only=True)
    assert s['epoch_sums']['n'] == 4*32 and s['log_sums'][1] == 4 and s['sec_per_step'] == 0.5
    s.update(dt=s.pop('sec_per_step'), acc=list(s.pop('epoch_sums').values()), log=s.pop('log_sums'))
    torch.save(s, sf)
    runs = {}
    for name in ('new', 'old'):
        m = _tiny_model()
        r = fit(m, dl(), None, cfg, out=tmp_path/name, resume=True, device='cpu', quiet=True, clock=FakeClock())
        runs[name] = r, m.state_dict()
    (rn, wn), (ro, wo) = runs['new'], runs['old']
    assert ro['metrics'] == rn['metrics'] and ro['losses'] == rn['losses'] and ro['step'] == rn['step'] == 18
    assert all(torch.equal(wn[k], wo[k]) for k in wn)

# --- real processes -------------------------------------------------------------------------------------------

N_FACES = 400
SCRIPT = textwrap.dedent('''
    # `facevae train ARGS` through the real command line, keeping a handle on the trained model of each rank
    import os, sys
    from safetensors.torch import save_file
    import facevae_nb.train_command as T, facevae_nb.cli as cli
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
    return dict(os.environ, OMP_NUM_THREADS='1', IN_TEST='1', PYTHONPATH=os.pathsep.join([str(ROOT), *filter(None, [os.environ.get('PYTHONPATH')])]))


def _train(script, out, *args):
    "Start `facevae train` on the tiny model in a subprocess (3 epochs, a checkpoint every 3 steps)."
    args = [*TINY, '--out', str(out), '--epochs', '3', '--batch-size', '32', '--ckpt-every', '3', '--seed', '1', *args]
    return subprocess.Popen([sys.executable, str(script), *args], env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _weights_equal(a, b):
    wa, wb = load_file(str(a)), load_file(str(b))
    return wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


# process: a training process killed with SIGKILL at a random step, then resumed
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


# process: torchrun with two CPU processes (DDP)
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


# a real training run (an old-format checkpoint resumed for an epoch): too slow for the notebook
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


# --- the run folder: only its own files, one training at a time, resumes that continue the same run ------------

from facevae_nb import cli
from facevae_nb.runs import LOCK, MANIFEST, run_files

RUN_ARGS = dict(image_size=32, latent_dim=16, widths='16,32,64', n_faces=N_FACES, epochs=1, batch_size=32, device='cpu',
                quiet=True)


@pytest.fixture(scope='module')
def trained(script, tmp_path_factory):
    "A tiny finished run (1 epoch on 400 generated faces); tests copy it."
    out = tmp_path_factory.mktemp('trained')/'run'
    run_training('generated', out=str(out), **RUN_ARGS)
    return out


def _copy(run, tmp_path):
    import shutil
    return Path(shutil.copytree(run, tmp_path/'run'))


def _cli(*args, capsys):
    rc = cli.main(list(map(str, args)))
    return rc, capsys.readouterr().err


# a real training run (with --force into a user's folder): too slow for the notebook
def test_a_folder_that_is_not_a_run_is_refused_unless_forced(script, tmp_path, capsys):
    out = tmp_path/'mine'; (out/'checkpoints').mkdir(parents=True)
    (out/'thesis.tex').write_text('years of work'); (out/'checkpoints'/'step_old.pt').write_text('my own file')
    rc, err = _cli('train', '--out', out, *TINY, '--epochs', '1', capsys=capsys)
    assert rc == 2 and 'is not a facevae run folder' in err and '--force' in err and len(err.strip().splitlines()) == 1
    assert sorted(p.name for p in out.rglob('*')) == ['checkpoints', 'step_old.pt', 'thesis.tex']   # nothing written
    # --force writes into it, and its files survive checkpoint pruning (a checkpoint every 3 steps: step 3 is pruned)
    run_training('generated', out=str(out), force=True, ckpt_every=3, **RUN_ARGS)
    assert (out/'thesis.tex').read_text() == 'years of work'
    assert (out/'checkpoints'/'step_old.pt').read_text() == 'my own file'
    assert (out/'model.safetensors').exists() and 'checkpoints/step00000003.pt' not in run_files(out)   # its own: pruned


_HOLDER = textwrap.dedent('''
    import sys
    from facevae_nb.runs import run_lock
    with run_lock(sys.argv[1]):
        print('locked', flush=True)
        sys.stdin.readline()                    # hold the lock until the test says so
''')


def _holder(out, tmp_path):
    p = subprocess.Popen([sys.executable, '-c', _HOLDER, str(out)], env=_env(), stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == 'locked', p.stderr.read()
    return p


# process: another process holds the lock while `facevae train` runs as a subprocess
def test_a_second_training_into_a_locked_folder_exits_2_naming_the_other(script, tmp_path):
    out = tmp_path/'run'
    holder = _holder(out, tmp_path)
    try:
        r = subprocess.run([sys.executable, '-m', 'facevae_nb.cli', 'train', '--out', str(out), *TINY, '--epochs', '1'],
                           env=_env(), capture_output=True, text=True, timeout=300)
        assert r.returncode == 2 and 'Traceback' not in r.stderr, r.stderr
        assert f'in use by another training (pid {holder.pid}' in r.stderr and len(r.stderr.strip().splitlines()) == 1
        assert not (out/'config.json').exists()                                 # the second run wrote nothing
    finally:
        holder.stdin.write('\n'); holder.stdin.flush(); holder.wait(timeout=60)
    assert holder.returncode == 0 and not (out/LOCK).exists()                # released on exit


# process: the lock holder is killed with SIGKILL, then a real run takes the lock over
def test_a_stale_lock_is_taken_over(script, tmp_path, capsys):
    out = tmp_path/'run'
    holder = _holder(out, tmp_path)
    holder.kill(); holder.wait()                                              # kill -9: the lock file stays behind
    assert json.loads((out/LOCK).read_text())['pid'] == holder.pid
    run_training('generated', out=str(out), **RUN_ARGS)
    assert f'locked by process {holder.pid}' in capsys.readouterr().err and not (out/LOCK).exists()
    assert (out/'model.safetensors').exists()


# many bad values: every setting a resume must keep (--image-size is checked in nbs/05c_training_run.ipynb)
@pytest.mark.parametrize('opt,val,msg', [
    ('preset', 'seed', '--preset default, not seed'), ('latent_dim', 8, '--latent-dim 16, not 8'), ('widths', '8,16,32', '--widths 16,32,64, not 8,16,32'),
    ('n_faces', 500, '--n-faces 400, not 500'), ('holdout', 40, '--holdout none, not 40'),
    ('seed', 3, '--seed 0, not 3'), ('batch_size', 16, '--batch-size 32, not 16')])
def test_resume_with_different_settings_is_refused(trained, tmp_path, opt, val, msg):
    out = _copy(trained, tmp_path)
    with pytest.raises(FaceVAEError, match='drop --') as e:
        run_training('generated', out=str(out), resume=True, **{**RUN_ARGS, 'epochs': 2, opt: val})
    assert msg in str(e.value) and 'another --out' in str(e.value)


# a real training run (a resume that trains a second epoch with new options): too slow for the notebook
def test_resume_applies_options_that_may_change(trained, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv('IN_TEST', raising=False)   # the notebook tests set it, and it silences a run's lines
    out = _copy(trained, tmp_path)
    run_training(out=str(out), resume=True, epochs=2, lr=1e-4, grad_clip=0.5, amp=False, device='cpu')
    cfg = json.loads((out/'config.json').read_text()); t = cfg['train']
    assert (t['epochs'], t['lr'], t['grad_clip'], t['amp']) == (2, 1e-4, 0.5, False)
    assert json.loads((out/'checkpoints'/'last.json').read_text())['epoch'] == 2
    # the run says its precision, layout and threads once, in one line, and records them: --no-amp is float32
    said = [l for l in capsys.readouterr().out.splitlines() if l.startswith('precision: ')]
    assert said == [f"precision: {device_settings('cpu', amp=False)}"] and 'fp32' in said[0], said
    assert cfg['settings'] == dataclasses.asdict(device_settings('cpu', amp=False))


# a real resume: a run folder from before the hardware rule (amp=True then meant "bf16 where supported") resumes
# under the rule, not under forced bf16, which is emulated and many times slower on a CPU without bf16 units
def test_a_run_from_before_the_rule_resumes_under_the_rule(trained, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv('IN_TEST', raising=False)
    out = _copy(trained, tmp_path)
    cfg = json.loads((out/'config.json').read_text()); cfg.pop('settings'); cfg['train'].update(amp=True, channels_last=True)
    (out/'config.json').write_text(json.dumps(cfg))
    run_training(out=str(out), resume=True, epochs=2, device='cpu')
    said = [l for l in capsys.readouterr().out.splitlines() if l.startswith('precision: ')]
    assert said == [f"precision: {device_settings('cpu')}"], said
    assert json.loads((out/'config.json').read_text())['settings'] == dataclasses.asdict(device_settings('cpu'))


# a real resume whose config.json describes another model than its checkpoints (copied from another run or
# preset): one line naming the problem, not load_state_dict's size-mismatch traceback
def test_a_config_json_from_another_model_is_refused_in_one_line(trained, tmp_path):
    out = _copy(trained, tmp_path)
    cfg = json.loads((out/'config.json').read_text()); cfg['model']['latent_dim'] = 8
    (out/'config.json').write_text(json.dumps(cfg))
    with pytest.raises(FaceVAEError, match="do not fit the model its config.json describes") as e:
        run_training(out=str(out), resume=True, epochs=2, device='cpu', quiet=True)
    assert "weights differ, e.g. " in str(e.value) and "another --out" in str(e.value)


# the plumbing from the recipe to the step: unset follows the hardware rule, --amp forces autocast (bf16 on a CPU)
def test_the_trainer_takes_its_precision_from_the_rule_or_the_override():
    m, dl = make_vae('default', 16, latent_dim=4, widths=(8, 8, 8, 8)), [torch.rand(2, 3, 16, 16)]
    for amp, want in [(None, device_settings('cpu')), (True, device_settings('cpu', amp=True)),
                      (False, device_settings('cpu', amp=False))]:
        t = Trainer(m, dl, cfg=train_config('default', amp=amp, epochs=1), device='cpu', quiet=True)
        assert t.settings == want and t.amp_dtype == want.amp_dtype and t.scaler.is_enabled() == want.grad_scaler
    assert device_settings('cpu', amp=True).precision == 'bf16'


# process: a training process killed with SIGKILL in the middle of writing a checkpoint
def test_stale_temporaries_of_a_killed_checkpoint_write_are_removed(script, tmp_path):
    "A real process killed by SIGKILL in the middle of writing a checkpoint; the next start removes what it left."
    out = tmp_path/'run'
    killer = textwrap.dedent('''
        import os, signal, sys, torch
        import facevae_nb.cli as cli
        _save = torch.save
        def save(obj, f, *a, **k):
            _save(obj, f, *a, **k)
            if str(f).endswith('.tmp') and obj.get('step') == 6: os.kill(os.getpid(), signal.SIGKILL)   # mid-write
        torch.save = save
        cli.main(['train'] + sys.argv[1:])
    ''')
    p = subprocess.run([sys.executable, '-c', killer, '--out', str(out), *TINY, '--epochs', '1', '--batch-size', '32',
                        '--ckpt-every', '3'], env=_env(), capture_output=True, text=True, timeout=300)
    assert p.returncode == -9, p.stderr[-2000:]
    left = [f.name for f in (out/'checkpoints').glob('.*.tmp')]
    assert left and (out/LOCK).exists()                                      # what a kill -9 leaves
    (out/'checkpoints'/'.notes.txt.abcdefgh.tmp').write_text('mine')        # looks like one, but not of a run file
    run_training(out=str(out), resume=True, image_size=32, device='cpu', quiet=True)
    assert [f.name for f in (out/'checkpoints').glob('.*.tmp')] == ['.notes.txt.abcdefgh.tmp']
    assert not (out/LOCK).exists() and json.loads((out/'checkpoints'/'last.json').read_text())['epoch'] == 1


# a real training run (a run from before manifests, resumed): too slow for the notebook
def test_a_run_from_before_manifests_resumes_and_keeps_foreign_files(trained, tmp_path):
    out = _copy(trained, tmp_path); (out/MANIFEST).unlink()
    (out/'checkpoints'/'step00000001.old').write_text('not ours')
    run_training(out=str(out), resume=True, epochs=2, device='cpu', quiet=True)
    assert (out/'checkpoints'/'step00000001.old').read_text() == 'not ours'
    assert 'config.json' in run_files(out) and 'checkpoints/step00000001.old' not in run_files(out)


# many bad values: every training option through the command line
@pytest.mark.parametrize('args,msg', [
    (['--epochs', '0'], 'epochs=0'), (['--epochs', '-1'], 'epochs=-1'),
    (['--max-minutes', '-1'], 'max_minutes=-1.0'), (['--max-minutes', 'nan'], "max_minutes=nan|--max-minutes: invalid value 'nan'"),
    (['--lr', '0'], 'lr=0.0'), (['--lr', '-1'], 'lr=-1.0'), (['--lr', 'nan'], "lr=nan|--lr: invalid value 'nan'"),
    (['--grad-clip', '-1'], 'grad_clip=-1.0'), (['--weight-decay', '-1'], 'weight_decay=-1.0'),
    (['--holdout', '-5'], 'holdout=-5'), (['--limit', '0'], 'limit=0'), (['--n-faces', '0'], 'n_faces=0'),
    (['--kl-warmup-epochs', '-1'], 'kl_warmup_epochs=-1.0'), (['--ckpt-every', '-1'], 'ckpt_every=-1'),
    (['--batch-size', '0'], 'batch_size=0'), (['--latent-dim', '0'], 'latent_dim=0'),
    (['--widths', 'abc'], "widths='abc'"), (['--widths', '0,0,0,0'], "widths='0,0,0,0'"),
    (['--image-size', '40'], 'image_size=40'), (['--device', 'gpu'], "'gpu'")])
def test_bad_training_options_are_one_line_exit_2(tmp_path, capsys, args, msg):
    out = tmp_path/'run'
    rc, err = _cli('train', '--out', out, '--device', 'cpu', *args, capsys=capsys)
    assert rc == 2 and re.search(msg, err) and len(err.strip().splitlines()) == 1, err
    assert not out.exists() or not any(out.iterdir())                         # refused before anything was written


# many bad values: the same checks through `run_training`
@pytest.mark.parametrize('kw,msg', [(dict(epochs=0), 'epochs=0'), (dict(lr=math.nan), 'lr=nan'), (dict(lr=0), 'lr=0'),
                                    (dict(grad_clip=-1), 'grad_clip=-1'), (dict(max_minutes=-1), 'max_minutes=-1'),
                                    (dict(max_minutes=math.inf), 'max_minutes=inf'), (dict(holdout=-1), 'holdout=-1'),
                                    (dict(limit=0), 'limit=0'), (dict(n_faces=0), 'n_faces=0'), (dict(seed=-1), 'seed=-1'),
                                    (dict(epochs=1.5), 'epochs=1.5'), (dict(widths='16,0'), "widths='16,0'")])
def test_bad_values_are_refused_by_the_library_too(tmp_path, kw, msg):
    "The same checks hold for `run_training` called from Python (no CLI in between), before anything is written."
    with pytest.raises(FaceVAEError, match=re.escape(msg)):
        run_training('generated', out=str(tmp_path/'run'), **{**RUN_ARGS, **kw})
    assert not (tmp_path/'run').exists()
