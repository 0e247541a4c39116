"README's two commands are the ones CI and the docs promise."
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _sh_blocks(text): return re.findall(r'```\s*sh\n(.*?)```', text, flags=re.S)


def test_readme_commands_match_ci():
    blocks = _sh_blocks((ROOT/'README.md').read_text())
    first = blocks[0].strip().splitlines()
    assert first[0].startswith('git clone https://github.com/') and first[-1] == 'pip install -e ".[dev]" && facevae demo', blocks[0]
    test_cmd = blocks[1].strip()
    ci = (ROOT/'.ci'/'run').read_text().strip().splitlines()
    assert ci[-1].strip() == test_cmd, f'.ci/run must end with the README test command {test_cmd!r}, not {ci[-1]!r}'


def test_readme_generated_from_index():
    "README.md is nbdev_readme's output of nbs/index.ipynb, so its prose must appear in the notebook."
    import json
    nb = json.loads((ROOT/'nbs'/'index.ipynb').read_text())
    md = '\n'.join(''.join(c['source']) for c in nb['cells'] if c['cell_type'] == 'markdown')
    for cmd in _sh_blocks((ROOT/'README.md').read_text())[:2]: assert cmd.strip() in md
