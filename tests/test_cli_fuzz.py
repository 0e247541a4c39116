"""Every option of every subcommand, read from its parser, fed `0`, `-1`, `nan` and `abc`.

Each case must end in exit 0 with a correct result (the run, image or figures it promises) or exit 2 with ONE
line on stderr; never a traceback. New subcommands and options are covered without editing this file. The cases
run in-process through `cli.main` on one tiny run (32 px, narrow, 64 generated faces) made once for the module."""

import pytest
from PIL import Image

import facevae_nb.cli as cli

pytestmark = pytest.mark.usefixtures('one_thread')   # tiny tensors: see conftest.one_thread

VALUES = ['0', '-1', 'nan', 'abc']
TINY_TRAIN = ['--data', 'generated', '--n-faces', '64', '--image-size', '32', '--epochs', '1', '--batch-size', '16',
              '--latent-dim', '4', '--widths', '8,8,8,8', '--device', 'cpu', '--no-amp', '--quiet']
BASE = {  # what every case of a command starts from (the fuzzed option replaces its value here); OUT, RUN filled in
    'train':   TINY_TRAIN + ['--out', 'OUT'],
    'demo':    ['--minutes', '0.05', '--epochs', '1', '--n-faces', '64', '--image-size', '32', '--device', 'cpu',
                '--quiet', '--out', 'OUT'],
    'sample':  ['--run', 'RUN', '--n', '4', '--device', 'cpu', '--out', 'OUT.png'],
    'latents': ['--run', 'RUN', '--max-images', '32', '--k', '2', '--device', 'cpu', '--out', 'OUT.png'],
    'edit':    ['--run', 'RUN', '--index', '0', '--attr', 'Smiling=1', '--device', 'cpu', '--out', 'OUT.png'],
    'speed':   ['--preset', 'seed', '--image-size', '16', '--batch-size', '2', '--seconds', '0.05', '--device', 'cpu',
                '--no-ceiling'],
}
# values the issue names as wrong even though they could be run: they must be refused (exit 2), not "succeed"
MUST_REFUSE = {('train', '--epochs', '0'), ('train', '--epochs', '-1'), ('train', '--lr', '0'), ('train', '--lr', '-1'),
               ('train', '--grad-clip', '-1'), ('train', '--holdout', '-1'), ('train', '--max-minutes', '-1'),
               ('sample', '--nrow', '0'), ('latents', '--k', '0'), ('latents', '--ncols', '0'),
               ('latents', '--batch-size', '0')}


def _value_options(cmd):
    "The `--options` of `cmd` that take a value, from its parser."
    p = cli.arg_parser(cli._resolve(cli.COMMANDS[cmd][0]), prog=f'facevae {cmd}')
    return [a.option_strings[0] for a in p._actions if a.option_strings and a.nargs != 0 and a.dest != 'help']


CASES = [(cmd, opt, v) for cmd in cli.COMMANDS if cmd in BASE for opt in _value_options(cmd) for v in VALUES]


def test_every_command_has_a_base():
    "A new subcommand needs a line in BASE (how to run it small); then all its options are fuzzed."
    assert set(cli.COMMANDS) <= set(BASE), set(cli.COMMANDS) - set(BASE)


@pytest.fixture(scope='module')
def tiny_run(tmp_path_factory):
    "One tiny trained run on generated faces, shared by every case."
    d = tmp_path_factory.mktemp('fuzz_run')
    assert cli.main(['train', *TINY_TRAIN, '--out', str(d/'run')]) == 0
    return d/'run'


def _argv(cmd, opt, value, run, out):
    base = [str(run) if a == 'RUN' else str(out) if a == 'OUT' else str(out) + '.png' if a == 'OUT.png' else a
            for a in BASE[cmd]]
    if opt in base: base[base.index(opt) + 1] = value
    else: base += [opt, value]
    return base


def _check_result(cmd, argv, tmp_path):
    "What exit 0 promises: the run folder, image or figures named by --out, and a sampled grid that is not blank."
    if '--out' not in argv: return                   # speed: a table on stdout
    out = tmp_path/argv[argv.index('--out') + 1]
    if cmd in ('train', 'demo'): assert (out/'model.safetensors').is_file(), out
    else:
        im = Image.open(out); im.load()
        assert im.format == {'.png': 'PNG', '.jpg': 'JPEG'}.get(out.suffix.lower(), im.format)
        lo, hi = im.convert('L').getextrema()
        assert hi > lo, f'{out} is one flat colour'
    if cmd == 'latents': assert all((out.with_name(out.stem + s + out.suffix)).is_file() for s in ('_mu_hist', '_z_hist'))


@pytest.mark.parametrize('cmd, opt, value', CASES, ids=[' '.join(c) for c in CASES])
def test_option_value(cmd, opt, value, tiny_run, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)                       # relative --out values ('0', 'abc') land here
    argv = _argv(cmd, opt, value, tiny_run, tmp_path/'out')
    code = cli.main([cmd, *argv])                     # an exception escaping main is the traceback we forbid
    err = capsys.readouterr().err
    assert 'Traceback' not in err, err
    if code == 2:
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f'facevae {cmd}: error: '), err
    else:
        assert code == 0, (code, err)
        assert (cmd, opt, value) not in MUST_REFUSE, f'{cmd} {opt} {value} was accepted'
        _check_result(cmd, argv, tmp_path)
        assert all(l.startswith((f'facevae {cmd}: warning: ', 'warning: ')) for l in err.strip().splitlines()), err
