"Process-level checks of the edit measurement: benchmarks/bench_edits.py and bench_photo_edits.py end to end on a tiny generated run."
import json, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _bench(*args, cwd=ROOT):
    r = subprocess.run([sys.executable, str(ROOT/'benchmarks'/'bench_edits.py'), *map(str, args), '--threads', '1'],
                       capture_output=True, text=True, cwd=cwd, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout


def test_bench_edits_end_to_end(tmp_path, one_thread):
    "Train a classifier, measure a run: the tables are printed and the plot is written."
    from facevae_nb.faces import generated_celeba
    from facevae_nb.train_command import run_training
    src = generated_celeba(300, root=tmp_path/'gen')
    run = run_training(str(src), out=str(tmp_path/'run'), image_size=32, latent_dim=8, widths='8,16,32', epochs=1,
                       batch_size=32, holdout=60, quiet=True)
    out = _bench('--train-classifier', tmp_path/'clf', '--data', src, '--holdout', 60, '--image-size', 32, '--epochs', 1)
    assert 'holdout (60 faces)' in out and (tmp_path/'clf'/'classifier.safetensors').is_file()
    out = _bench(run, '--classifier', tmp_path/'clf', '--out', tmp_path/'out', '--methods', 'per-face,mean,regression,random',
                 '--max-faces', 8, '--weights', '1,2')
    for s in ('| per-face (balanced; the default) |', '| mean |', '| regression |', '| random (same Mahalanobis length as mean) |',
              'per attribute (per-face (balanced; the default))', 'latent move at success 0.80'): assert s in out, out
    assert (tmp_path/'out'/'run_success_drift.png').stat().st_size > 1000
    # the photo-preserving edits of the same run (its held-out files are the photos), rows from measure.edit_report
    r = subprocess.run([sys.executable, str(ROOT/'benchmarks'/'bench_photo_edits.py'), str(run), '--classifier', str(tmp_path/'clf'),
                        '--names', 'Smiling,Eyeglasses', '--weights', '1,2', '--max-faces', '8', '--out', str(tmp_path/'photo.json')],
                       capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    rows = json.loads((tmp_path/'photo.json').read_text())['rows']
    assert [(x['attr'], x['weight']) for x in rows['residual']] == [(a, w) for a in ('Smiling', 'Eyeglasses') for w in (0, 1, 2)]
    assert all(x['drift'] == 0 for k in rows for x in rows[k] if x['weight'] == 0) and 'residual: photo + edit' in r.stdout


def test_bench_edits_needs_classifier(tmp_path):
    r = subprocess.run([sys.executable, str(ROOT/'benchmarks'/'bench_edits.py'), str(tmp_path)], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode != 0 and '--classifier' in (r.stderr + r.stdout)
