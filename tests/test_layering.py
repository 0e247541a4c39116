"""The package's layering: a module imports only from modules of earlier notebooks (so there is no import cycle, not
even through an import inside a function), and no private name (`_x`) crosses from one module to another: what two
modules share is public, documented and exported in the notebook where it belongs. Read with `ast`, so imports inside
functions count. Here and not in a notebook: it reads every module of the package at once."""
import ast, re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT/'facevae_nb'


def _modules() -> dict:
    "{module name: path} of the package's exported modules (not nbdev's index)."
    return {p.stem: p for p in sorted(PKG.glob('*.py')) if not p.stem.startswith('_')}


def _notebook(path:Path) -> str:
    "The notebook a module is exported from ('' if none is named)."
    m = re.search(r'File to edit: \.\./nbs/(\S+)\.ipynb', path.read_text())
    return m[1] if m else ''


def _target(node, mods) -> list:
    "[(module, name or None)] that an import node takes from the package."
    out = []
    if isinstance(node, ast.ImportFrom):
        src = node.module or ''
        if node.level == 1 and src in mods: out += [(src, a.name) for a in node.names]
        elif node.level == 1 and not src or src == 'facevae_nb':   # from . import x / from facevae_nb import x
            out += [(a.name, None) for a in node.names if a.name in mods]
        elif src.startswith('facevae_nb.') and src.split('.')[1] in mods:
            out += [(src.split('.')[1], a.name) for a in node.names]
    elif isinstance(node, ast.Import):
        out += [(a.name.split('.')[1], None) for a in node.names
                if a.name.startswith('facevae_nb.') and a.name.split('.')[1] in mods]
    return out


def _uses(path:Path, mods) -> tuple:
    "({modules imported}, [(line, 'module._name')] private names taken from other modules) of one file."
    tree, me = ast.parse(path.read_text()), path.stem
    deps, private, aliases = set(), [], {}
    for node in ast.walk(tree):
        for mod, name in _target(node, mods):
            if mod == me: continue
            deps.add(mod)
            if name and name.startswith('_') and not name.startswith('__'): private.append((node.lineno, f'{mod}.{name}'))
            if name is None or isinstance(node, ast.ImportFrom) and name in mods:
                for a in node.names: aliases[a.asname or a.name.split('.')[-1]] = mod
            if isinstance(node, ast.Import):
                for a in node.names: aliases[a.asname or a.name] = mod if a.asname else aliases.get(a.name, mod)
    for node in ast.walk(tree):           # facevae_nb.data._x or (import facevae_nb.data as d) d._x
        if isinstance(node, ast.Attribute) and node.attr.startswith('_') and not node.attr.startswith('__'):
            base = ast.unparse(node.value)
            mod = aliases.get(base) or (base.split('.')[1] if base.startswith('facevae_nb.') else None)
            if mod in mods and mod != me: private.append((node.lineno, f'{mod}.{node.attr}'))
    return deps, private


def _graph() -> dict:
    mods = _modules()
    return {m: _uses(p, mods)[0] for m, p in mods.items()}


def _cycles(graph:dict) -> list:
    "Every import cycle, as a list of modules (found by depth-first search)."
    found, state = [], {}
    def visit(m, path):
        state[m] = 'open'
        for d in sorted(graph.get(m, ())):
            if state.get(d) == 'open': found.append(path[path.index(d):] + [d])
            elif d not in state: visit(d, path + [d])
        state[m] = 'done'
    for m in sorted(graph):
        if m not in state: visit(m, [m])
    return found


def test_no_import_cycle():
    cycles = _cycles(_graph())
    assert not cycles, 'import cycles between facevae_nb modules: ' + '; '.join(' -> '.join(c) for c in cycles)


def test_cycle_check_finds_a_cycle():
    "The checker itself: a made-up graph with a cycle through an import inside a function is caught."
    assert _cycles({'a': {'b'}, 'b': {'c'}, 'c': {'a'}, 'd': set()}) == [['a', 'b', 'c', 'a']]
    src = "from .b import x\ndef f():\n    from facevae_nb.c import _y\n    import facevae_nb.d as d\n    return d._z\n"
    p = Path(__file__).parent/'_layering_probe_a.py'
    try:
        p.write_text(src)
        deps, private = _uses(p, {'_layering_probe_a', 'b', 'c', 'd'})
    finally: p.unlink()
    assert deps == {'b', 'c', 'd'} and [n for _, n in private] == ['c._y', 'd._z']


def test_no_private_name_crosses_modules():
    mods = _modules()
    bad = [f'{p.name}:{line} takes {name}' for m, p in mods.items() for line, name in _uses(p, mods)[1]]
    assert not bad, 'private names used across modules (make them public where they belong, or keep them in one module):\n' + '\n'.join(bad)


def test_scripts_use_public_names():
    "The benchmarks and tools use the package as a reader would: public names only. (Tests may check private helpers.)"
    mods = _modules()
    bad = [f'{p.relative_to(ROOT)}:{line} takes {name}' for d in ('benchmarks', 'tools')
           for p in sorted((ROOT/d).glob('*.py')) for line, name in _uses(p, mods)[1]]
    assert not bad, 'private names of facevae_nb used by scripts:\n' + '\n'.join(bad)


# Modules of a later notebook that earlier ones may import: none (the file numbers follow the imports).
LATER_OK = set()


def test_imports_follow_notebook_order():
    mods = _modules()
    nb = {m: _notebook(p) for m, p in mods.items()}
    bad = [f'{m} ({nb[m]}) imports {d} ({nb[d]})' for m, deps in _graph().items() for d in sorted(deps)
           if nb[d] >= nb[m] and d not in LATER_OK]
    assert not bad, 'a module imports from a later notebook:\n' + '\n'.join(bad)


# Notebooks that may import a later notebook's module (the notebook, the module): none.
NB_LATER_OK = set()


def test_notebooks_follow_notebook_order():
    "A notebook's cells import only modules of earlier notebooks (or its own), so the course reads in file order."
    import json
    mods = _modules()
    nb = {m: _notebook(p) for m, p in mods.items()}
    bad = []
    for f in sorted((ROOT/'nbs').glob('*.ipynb')):
        cells = json.loads(f.read_text())['cells']
        src = '\n'.join(''.join(c['source']) for c in cells if c['cell_type'] == 'code')
        used = set(re.findall(r'^\s*(?:from\s+facevae_nb\.(\w+)\s+import|import\s+facevae_nb\.(\w+))', src, re.M))
        for m in sorted({a or b for a, b in used} & set(mods)):
            if nb[m] > f.stem and m not in NB_LATER_OK and (f.stem, m) not in NB_LATER_OK:
                bad.append(f'{f.name} imports {m} ({nb[m]})')
    assert not bad, 'a notebook imports a later notebook\'s module:\n' + '\n'.join(bad)


def _sidebar() -> dict:
    "{section title: [notebook stems]} of the hand-written sidebar in nbs/_quarto.yml ('' for pages outside a section)."
    import yaml
    out = {}
    def walk(items, sec):
        for it in items:
            if isinstance(it, str): out.setdefault(sec, []).append(it.removesuffix('.ipynb'))
            elif isinstance(it, dict) and 'section' in it: walk(it.get('contents', []), it['section'])
    walk(yaml.safe_load((ROOT/'nbs'/'_quarto.yml').read_text())['website']['sidebar']['contents'], '')
    return out


def test_one_order_everywhere():
    """Every numbered notebook is in the sidebar once, each section in file-number order, and the guide's tables list
    the same pages in the same order as the sidebar's sections."""
    import json
    side = _sidebar()
    numbered = sorted(p.stem for p in (ROOT/'nbs').glob('*.ipynb') if re.match(r'\d', p.name))
    listed = [s for sec in side.values() for s in sec if re.match(r'\d', s)]
    assert sorted(listed) == numbered, f'sidebar (nbs/_quarto.yml) and nbs/ differ: {set(listed) ^ set(numbered)}'
    for sec, stems in side.items():
        num = [s for s in stems if re.match(r'\d', s)]
        assert num == sorted(num), f'sidebar section {sec!r} is not in file-number order: {num}'
    guide = json.loads((ROOT/'nbs'/'guide.ipynb').read_text())
    text = '\n'.join(''.join(c['source']) for c in guide['cells'] if c['cell_type'] == 'markdown')
    tables = re.findall(r'((?:^\| \[`\d\w*`\].*\n?)+)', text, flags=re.M)
    in_guide = [re.findall(r'^\| \[`(\w+)`\]', t, flags=re.M) for t in tables]
    test = [[s for s in stems if re.match(r'\d', s)] for stems in side.values() if any(re.match(r'\d', s) for s in stems)]
    assert in_guide == test, f"nbs/guide.ipynb's tables {in_guide} must list the sidebar's sections {test}"


def test_sample_command_does_not_load_matplotlib():
    "`facevae sample --attr` needs arithmetic and the vector cache, not plotting: importing them (and the CLI) leaves matplotlib unloaded."
    import subprocess, sys
    code = "import sys, facevae_nb.cli, facevae_nb.arithmetic, facevae_nb.vector_cache; print(sorted(m for m in sys.modules if m.startswith('matplotlib'))[:3])"
    r = subprocess.run([sys.executable, '-c', code], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() == '[]', r.stdout + r.stderr
