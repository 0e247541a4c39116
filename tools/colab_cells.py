#!/usr/bin/env python3
"""Give every numbered notebook an "Open in Colab" badge and a Colab-only install cell (idempotent).

  python tools/colab_cells.py [NOTEBOOK_OR_FOLDER ...]          # add or update the two cells (default: nbs/)
  python tools/colab_cells.py --check [NOTEBOOK_OR_FOLDER ...]  # exit 1 listing notebooks missing them

The badge (a markdown cell right after the title cell) links to
https://colab.research.google.com/github/<user>/<repo>/blob/<branch>/nbs/<name>.ipynb, built from settings.ini's
`git_url` and `branch`. The install cell (the next cell, `#| hide` so the docs do not show it) installs the package
from the repository and nbdev (for `show_doc`) only when fastcore says it runs on Colab; anywhere else it does
nothing. It passes every package already installed to pip as a constraint at its installed version, so nothing Colab
ships is upgraded or downgraded (no `[dev]` extra: its nbdev 2 pin needs fastcore<2 and Colab has fastcore 2); pip
picks the nbdev release that fits them (tests/test_colab.py checks this in a venv of Colab's versions). Running the script again replaces both cells with their current text, so a changed
`git_url`/`branch` is picked up; nothing is added twice. Run `nbdev_clean` afterwards as for any notebook edit.
"""
import argparse, configparser, hashlib, json, re, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NUMBERED = re.compile(r'^\d\d[a-z]?_.*\.ipynb$')
BADGE_MARK = 'colab.research.google.com/github/'
INSTALL_MARK = '# colab: install facevae_nb'


def settings(root=ROOT) -> dict:
    "settings.ini's [DEFAULT] section, with its %(...)s references resolved."
    cp = configparser.ConfigParser()
    cp.read(root/'settings.ini')
    return dict(cp['DEFAULT'])


def repo_path(git_url: str) -> str:
    "'https://github.com/user/repo(.git)' -> 'user/repo'."
    m = re.match(r'^(?:https?://|git@)github\.com[/:]([^/]+)/([^/]+?)(?:\.git)?/?$', git_url.strip())
    if not m: sys.exit(f'settings.ini git_url={git_url!r} is not a GitHub URL like https://github.com/USER/REPO')
    return f'{m[1]}/{m[2]}'


def badge_source(nb_name: str, cfg: dict) -> str:
    url = f"https://colab.research.google.com/github/{repo_path(cfg['git_url'])}/blob/{cfg['branch']}/{cfg.get('nbs_path', 'nbs')}/{nb_name}"
    return f'[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({url})'


def install_source(cfg: dict) -> str:
    repo = repo_path(cfg['git_url'])
    spec = f"{cfg['lib_name']} @ git+https://github.com/{repo}.git@{cfg['branch']}"
    return '\n'.join([
        '#| hide',
        f'{INSTALL_MARK} and nbdev (for show_doc) when running on Colab, changing none of the packages Colab',
        "# ships (each stays at its version, a constraint for pip); elsewhere do nothing",
        'try: from fastcore.imports import IN_COLAB',
        "except ImportError: import sys; IN_COLAB = 'google.colab' in sys.modules",
        'if IN_COLAB:',
        '    import subprocess, sys, importlib.metadata as md',
        "    has = {d.metadata['Name'].lower(): f\"{d.metadata['Name']}=={d.version}\" for d in md.distributions()",
        f"           if d.metadata['Name'] and d.metadata['Name'].lower() not in ('{cfg['lib_name']}', '{cfg['lib_name'].replace('_', '-')}')}}",
        "    with open('/tmp/colab-has.txt', 'w') as f: f.write('\\n'.join(has.values()))",
        "    subprocess.run([sys.executable, '-m', 'pip', 'install', '-q', '-c', '/tmp/colab-has.txt',",
        f"                    {spec!r}, 'nbdev'], check=True)"])


def _id(nb_name, kind): return hashlib.sha1(f'{nb_name}|{kind}'.encode()).hexdigest()[:8]


def _src(cell): s = cell.get('source', ''); return ''.join(s) if isinstance(s, list) else s


def _lines(text):
    ls = text.split('\n')
    return [l + '\n' for l in ls[:-1]] + [ls[-1]]


def _is_badge(c): return c['cell_type'] == 'markdown' and BADGE_MARK in _src(c)
def _is_install(c): return c['cell_type'] == 'code' and INSTALL_MARK in _src(c)


def _title_index(cells):
    "Index of the title cell (the first markdown cell starting with '# '), or -1."
    for i, c in enumerate(cells):
        if c['cell_type'] == 'markdown' and _src(c).lstrip().startswith('# '): return i
    return -1


def expected_cells(nb_name, cfg):
    badge = dict(cell_type='markdown', id=_id(nb_name, 'badge'), metadata={}, source=_lines(badge_source(nb_name, cfg)))
    install = dict(cell_type='code', execution_count=None, id=_id(nb_name, 'install'), metadata={}, outputs=[],
                   source=_lines(install_source(cfg)))
    return badge, install


def problems(path: Path, cfg) -> list:
    "What is missing or out of date in notebook `path` (empty when it is fine)."
    cells = json.loads(path.read_text())['cells']
    t = _title_index(cells)
    badge, install = expected_cells(path.name, cfg)
    out = []
    if t < 0: return ['no title cell (a markdown cell starting with "# ")']
    if not any(_is_badge(c) for c in cells): out.append('no Open-in-Colab badge')
    elif not (t + 1 < len(cells) and _is_badge(cells[t+1]) and _src(cells[t+1]) == _src(badge)):
        out.append('Colab badge is not right after the title or is out of date')
    if not any(_is_install(c) for c in cells): out.append('no Colab install cell')
    elif not (t + 2 < len(cells) and _is_install(cells[t+2]) and _src(cells[t+2]) == _src(install)):
        out.append('Colab install cell is not right after the badge or is out of date')
    return out


def apply(path: Path, cfg) -> bool:
    "Add or update the badge and install cells of notebook `path`; returns True if the file changed."
    text = path.read_text()
    nb = json.loads(text)
    cells = [c for c in nb['cells'] if not (_is_badge(c) or _is_install(c))]
    t = _title_index(cells)
    if t < 0: raise SystemExit(f'{path}: no title cell (a markdown cell starting with "# ")')
    cells[t+1:t+1] = list(expected_cells(path.name, cfg))
    nb['cells'] = cells
    new = json.dumps(nb, indent=1, ensure_ascii=False) + '\n'
    if new == text: return False
    path.write_text(new)
    return True


def notebooks(args) -> list:
    paths = [Path(a) for a in args] or [ROOT/'nbs']
    out = []
    for p in paths:
        if p.is_dir(): out += sorted(q for q in p.glob('*.ipynb') if NUMBERED.match(q.name))
        elif p.is_file(): out.append(p)
        else: sys.exit(f'{p} does not exist')
    return out


if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('paths', nargs='*', help='notebooks or folders (default: the numbered notebooks in nbs/)')
    ap.add_argument('--check', action='store_true', help='change nothing; exit 1 listing notebooks that need the cells')
    a = ap.parse_args()
    cfg = settings()
    nbs = notebooks(a.paths)
    if a.check:
        bad = {p: problems(p, cfg) for p in nbs}
        bad = {p: v for p, v in bad.items() if v}
        for p, v in bad.items(): print(f'{p}: {"; ".join(v)}')
        print(f'{len(nbs)} notebooks checked, {len(bad)} need Colab cells' + (' (run: python tools/colab_cells.py)' if bad else ''))
        sys.exit(1 if bad else 0)
    changed = [p for p in nbs if apply(p, cfg)]
    for p in changed: print('updated', p)
    print(f'{len(nbs)} notebooks, {len(changed)} changed')
