"The installed `facevae` command, run as a user runs it: a real subprocess, so only exported code is used."
import json, subprocess, sys


def _facevae(*args, cwd):
    return subprocess.run([sys.executable, '-m', 'facevae_nb.cli', *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600)


def test_demo_then_sample_and_latents(tmp_path):
    r = _facevae('demo', '--out', 'runs/demo', '--minutes', '0.2', '--epochs', '2', '--n-faces', '400',
                 '--image-size', '32', '--quiet', cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    run = tmp_path/'runs'/'demo'
    for f in ['config.json', 'model.safetensors', 'prior.json', 'metrics.jsonl', 'figures/samples.png', 'figures/latents.png']:
        assert (run/f).is_file(), f
    assert 'validation PSNR' in r.stdout and str(run/'model.safetensors').endswith('model.safetensors')
    # running the demo again continues the same run instead of failing on the existing folder
    r2 = _facevae('demo', '--out', 'runs/demo', '--minutes', '0.2', '--epochs', '2', '--n-faces', '400',
                  '--image-size', '32', '--quiet', cwd=tmp_path)
    assert r2.returncode == 0, r2.stderr[-3000:]
    r3 = _facevae('sample', '--run', 'runs/demo', '--n', '16', '--out', 'samples.png', cwd=tmp_path)
    assert r3.returncode == 0 and (tmp_path/'samples.png').is_file(), r3.stderr[-3000:]
    r4 = _facevae('latents', '--run', 'runs/demo', '--out', 'lat.png', '--max-images', '200', cwd=tmp_path)
    assert r4.returncode == 0 and (tmp_path/'lat.png').is_file(), r4.stderr[-3000:]


def test_user_errors_are_one_clear_line(tmp_path):
    r = _facevae('train', '--data', str(tmp_path/'nowhere'), '--out', str(tmp_path/'run'), cwd=tmp_path)
    assert r.returncode == 2 and 'Traceback' not in r.stderr, r.stderr
    assert str(tmp_path/'nowhere') in r.stderr and 'error' in r.stderr
    r = _facevae('sample', '--run', str(tmp_path/'norun'), cwd=tmp_path)
    assert r.returncode == 2 and 'Traceback' not in r.stderr and 'norun' in r.stderr, r.stderr
