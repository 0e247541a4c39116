#!/usr/bin/env python3
"""Check a built docs site and the notebooks' saved outputs; optional full-page screenshots.

  python tools/check_docs.py [_docs] [--screenshot OUTDIR] [--max-height 15000] [--no-browser]

Problems (exit 1 listing each):
- a notebook without its page, a page without <title>, a local link or image that does not resolve;
- a notebook page missing from the sidebar (index.html), no GitHub link in the navbar;
- saved stderr longer than a few lines, a traceback or a warning in a notebook's saved outputs (named by cell);
- a cell that prints or plots (a `print`/`display`/plotting call outside a function, or a bare expression as its
  last line) but has no saved output, so its page shows code with nothing under it (`missing_outputs`);
- a formula left as raw `$...$` in a page, or raw markdown link syntax `[text](url)` (named by notebook cell);
- an image too small to read or so wide that the page shrinks it to under ~55% (the text column is ~760 px);
- a page taller than --max-height px at 1280 px width (needs Chromium; skipped with a note when it is missing);
- README.md with a test cell (`test_...`) in it, a relative image path or link (they break on GitHub and PyPI), or an
  image URL of this repository that names a file it does not have.
With --screenshot, headless Chromium saves a full-page PNG of every page at 1280 px width.
"""
import argparse, html as htmllib, json, re, shutil, struct, subprocess, sys, tempfile
from pathlib import Path
from urllib.parse import unquote, urlparse

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT/'tools'))
from run_nbs import REAL_DATA                 # the cells whose outputs are never saved: they read real CelebA
from colab_cells import settings, repo_path   # 'user/repo' from settings.ini's git_url, as the Colab badges use it
MAX_STDERR_LINES = 5          # saved stderr longer than this is noise on a page (progress bars, logs)
MIN_IMG_W, MAX_IMG_W = 200, 1400   # px: narrower is unreadable; wider is shrunk below ~55% in the ~760 px column
WIDTH = 1280


def page_name(nb: Path) -> str:
    "nbdev drops a leading number prefix: `01_data.ipynb` -> `data.html`."
    return re.sub(r'^\d+[a-z]?_', '', nb.stem) + '.html'


def notebooks() -> list:
    return sorted(p for p in (ROOT/'nbs').glob('*.ipynb') if not p.name.startswith('_'))


def _src(c): s = c.get('source', ''); return ''.join(s) if isinstance(s, list) else s


def _text(o):
    t = o.get('text', '')
    return ''.join(t) if isinstance(t, list) else t


def output_problems(nb: Path) -> list:
    "Long stderr, tracebacks and warnings in a notebook's saved outputs, named by cell number (0-based)."
    out = []
    for i, c in enumerate(json.loads(nb.read_text())['cells']):
        for o in c.get('outputs', []) or []:
            if o.get('output_type') == 'error':
                out.append(f"{nb.name} cell {i}: saved traceback ({o.get('ename')}: {str(o.get('evalue'))[:80]})")
            elif o.get('output_type') == 'stream' and o.get('name') == 'stderr':
                t = _text(o); n = t.count('\n') + t.count('\r')
                if n > MAX_STDERR_LINES: out.append(f'{nb.name} cell {i}: {n} lines of saved stderr (progress bars or logs: hide or clear them)')
                elif re.search(r'\w+Warning\b', t): out.append(f"{nb.name} cell {i}: saved warning: {t.strip().splitlines()[0][:100]}")
    return out


PLOT_CALL = re.compile(r'^(print|display|imshow|show_images?|plot_\w+|\w+_grid|\w+_strip)$')  # calls that show something
PLOT_OBJ = {'plt', 'ax', 'axs', 'axes', 'fig'}


def _shows(tree) -> bool:
    "Does running this cell print or plot? Calls outside function/class bodies, or a bare last expression."
    import ast
    def calls(nodes):
        for n in nodes:
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)): continue
            if isinstance(n, ast.Call) and not (closes and ast.unparse(n.func) not in ('print', 'display')):
                f = n.func
                if isinstance(f, ast.Name) and PLOT_CALL.match(f.id): return True
                if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and f.value.id in PLOT_OBJ \
                   and f.attr not in ('close', 'savefig', 'subplots', 'figure', 'tight_layout', 'suptitle', 'set_title', 'axis'): return True
            if calls(ast.iter_child_nodes(n)): return True
        return False
    body = tree.body
    if not body: return False
    closes = any(isinstance(n, ast.Call) and ast.unparse(n.func) in ('plt.close', 'plt.close_all') for n in ast.walk(tree))
    last = body[-1]
    if isinstance(last, ast.Expr) and not isinstance(last.value, (ast.Call, ast.Await, ast.Constant)): return True
    return calls(body)


def missing_outputs(nb: Path) -> list:
    "Code cells that print or plot but have no saved output (cells hidden from the page or not run here excepted)."
    import ast
    out = []
    for i, c in enumerate(json.loads(nb.read_text())['cells']):
        if c['cell_type'] != 'code' or c.get('outputs'): continue
        src = _src(c)
        flags = ' '.join(l for l in src.splitlines() if l.startswith('#|'))
        if re.search(r'#\|\s*(hide|eval:\s*false|output:\s*false|include:\s*false)\b', flags) or re.search(r'\bcuda\b', flags): continue
        if REAL_DATA.search(src): continue          # reads real CelebA: tools/run_nbs.py never saves its output (licence)
        code = '\n'.join('' if l.lstrip().startswith(('%', '!')) else l for l in src.splitlines())
        try: tree = ast.parse(code)
        except SyntaxError: continue
        if _shows(tree): out.append(f'{nb.name} cell {i}: prints or plots but has no saved output (run the notebook: tools/run_nbs.py)')
    return out


def _visible_text(html: str) -> str:
    "The page's running text: no scripts, styles, code, preformatted blocks or rendered maths; tags removed."
    h = re.sub(r'(?is)<(script|style|pre|code|textarea|math)\b.*?</\1>', ' ', html)
    h = re.sub(r'(?is)<span class="math[^"]*">.*?</span>', ' ', h)
    h = re.sub(r'(?s)<[^>]+>', ' ', h)
    return htmllib.unescape(h)


RAW_MATH = re.compile(r'\$([^$\n]{1,200}?)\$')   # left in the text: pandoc did not take it as maths
RAW_LINK = re.compile(r'\[([^\]\n]{1,120})\]\(([^)\s]{1,300})\)')


def _locate(nb: Path, snippet: str) -> str:
    "'NB cell N' for the first cell (markdown first, then docments in code) that contains `snippet`, else NB."
    if not nb or not nb.exists(): return '(no notebook)'
    cells = json.loads(nb.read_text())['cells']
    for kinds in (('markdown',), ('code',)):
        for i, c in enumerate(cells):
            if c['cell_type'] in kinds and snippet in _src(c): return f'{nb.name} cell {i}'
    return nb.name


def png_size(p: Path):
    "(width, height) of a PNG, JPEG or GIF file, read from its header; None if unknown."
    b = p.read_bytes()[:64*1024]
    if b[:8] == b'\x89PNG\r\n\x1a\n': return struct.unpack('>II', b[16:24])
    if b[:6] in (b'GIF87a', b'GIF89a'): return struct.unpack('<HH', b[6:10])
    if b[:2] == b'\xff\xd8':
        i = 2
        while i + 9 < len(b):
            if b[i] != 0xFF: i += 1; continue
            m, L = b[i+1], struct.unpack('>H', b[i+2:i+4])[0]
            if m in (0xC0, 0xC1, 0xC2): h, w = struct.unpack('>HH', b[i+5:i+9]); return w, h
            i += 2 + L
    return None


def check(site: Path) -> list:
    problems = []
    nbs = notebooks()
    by_page = {page_name(nb): nb for nb in nbs}
    index = (site/'index.html').read_text(errors='replace') if (site/'index.html').exists() else ''
    for nb in nbs:
        if not (site/page_name(nb)).exists(): problems.append(f'{nb.name}: no page {page_name(nb)} in {site}')
        elif nb.name != 'index.ipynb' and f'href="{page_name(nb)}"' not in index and f'href="./{page_name(nb)}"' not in index:
            problems.append(f'{nb.name}: its page {page_name(nb)} is not in the sidebar (add it to nbs/_quarto.yml)')
        problems += output_problems(nb) + missing_outputs(nb)
    if index and 'github.com' not in re.sub(r'(?s).*?(<nav\b.*?</nav>).*', r'\1', index, count=1): problems.append('index.html: no GitHub link in the navbar')
    for page in sorted(site.rglob('*.html')):
        html = page.read_text(errors='replace')
        rel = page.relative_to(site)
        if '<title>' not in html: problems.append(f'{rel}: no <title>')
        for attr, url in re.findall(r'<(?:img|a)\b[^>]*?\b(src|href)="([^"]+)"', html):
            u = urlparse(url)
            if u.scheme or url.startswith(('#', '//', 'mailto:', 'data:')) or not u.path: continue
            target = (page.parent/unquote(u.path)).resolve()
            if not target.exists(): problems.append(f'{rel}: broken {attr} {url}')
            elif attr == 'src' and target.suffix.lower() in ('.png', '.jpg', '.jpeg', '.gif'):
                wh = png_size(target)
                if wh and wh[0] < MIN_IMG_W: problems.append(f'{rel}: image {url} is only {wh[0]}x{wh[1]} px (too small to read)')
                elif wh and wh[0] > MAX_IMG_W: problems.append(f'{rel}: image {url} is {wh[0]} px wide: shrunk to {760/wh[0]:.0%} in the text column (draw it narrower or in several figures)')
        main = re.sub(r'(?is).*?<main\b', '<main', html, count=1)
        text = _visible_text(main)
        nb = by_page.get(page.name)
        for m in (m for m in RAW_MATH.finditer(text) if re.search(r'[\\^_{}=]', m[1])):
            problems.append(f'{rel}: raw maths ${m[1][:60]}$ not rendered ({_locate(nb, m[1][:40])})')
        for m in RAW_LINK.finditer(text):
            problems.append(f'{rel}: raw markdown link [{m[1][:40]}]({m[2][:50]}) ({_locate(nb, m[0][:40])})')
    readme = ROOT/'README.md'
    if readme.exists():
        text = readme.read_text()
        raw = 'https://raw.githubusercontent.com/' + repo_path(settings()['git_url']) + '/main/'
        for src in re.findall(r'<img\b[^>]*\bsrc="([^"]+)"|!\[[^\]]*\]\(([^)\s]+)', text):
            src = next(s for s in src if s)
            if not urlparse(src).scheme:      # a relative path breaks on PyPI and in the site's copy of the page
                problems.append(f"README.md: image {src} is a relative path, which PyPI cannot show: use {raw}nbs/{src.removeprefix('nbs/')} in nbs/index.ipynb")
            elif src.startswith(raw) and not (ROOT/src[len(raw):]).exists():
                problems.append(f"README.md: image {src} is not in the repository ({src[len(raw):]} does not exist)")
        for url in re.findall(r'\]\(([^)\s]+)\)|<a\b[^>]*\bhref="([^"]+)"', text):
            url = next(u for u in url if u)
            if not urlparse(url).scheme and not url.startswith('#'):
                problems.append(f"README.md: link {url} is relative and breaks on GitHub and PyPI: use the site's full URL in nbs/index.ipynb")
        for block in re.findall(r'```\s*python\n(.*?)```', text, flags=re.S):
            if re.search(r'\btest_\w+|\bassert\b', block): problems.append(f'README.md: a test cell leaked in ({block.strip().splitlines()[0][:60]}): hide it with #| hide in nbs/index.ipynb')
    return problems


def chromium():
    return shutil.which('chromium') or shutil.which('chromium-browser') or shutil.which('google-chrome')


def _chrome(exe, *args, timeout=120):
    flags = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--hide-scrollbars',
             '--disable-background-networking', '--disable-component-update', '--disable-sync', '--mute-audio',
             f'--user-data-dir={tempfile.mkdtemp()}', '--virtual-time-budget=5000']
    return subprocess.run([exe, *flags, *args], capture_output=True, text=True, timeout=timeout)


def page_height(exe, page: Path) -> int:
    "The page's full height in px at WIDTH px, from the DOM once it has loaded (a copy of the page reports it)."
    probe = page.with_name(f'.height-probe-{page.name}')
    js = ("<script>window.addEventListener('load',()=>{document.body.setAttribute('data-page-height',"
          "Math.max(document.documentElement.scrollHeight,document.body.scrollHeight))})</script>")
    probe.write_text(page.read_text(errors='replace').replace('</body>', js + '</body>'))
    try:
        r = _chrome(exe, f'--window-size={WIDTH},1000', '--dump-dom', probe.as_uri())
        m = re.search(r'data-page-height="(\d+)"', r.stdout)
        return int(m[1]) if m else -1
    finally: probe.unlink(missing_ok=True)


def browser_checks(site: Path, max_height: int, shots: Path|None) -> list:
    exe, problems = chromium(), []
    if not exe:
        print('NOTE no Chromium: page heights not checked and no screenshots (apt-get install -y chromium)')
        return problems
    if shots: shots.mkdir(parents=True, exist_ok=True)
    for page in sorted(site.glob('*.html')):
        h = page_height(exe, page)
        if h > max_height: problems.append(f'{page.name}: {h:,} px tall at {WIDTH} px width (limit {max_height:,}): hide or shrink outputs')
        if shots:
            png = shots/(page.stem + '.png')
            _chrome(exe, f'--window-size={WIDTH},{min(max(h, 800), 30000) if h > 0 else 2400}', f'--screenshot={png}', page.as_uri())
            print('screenshot', png, f'({h:,} px)' if png.exists() else 'MISSING')
        else: print(f'{page.name}: {h:,} px tall')
    return problems


if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('site', nargs='?', default=str(ROOT/'_docs'))
    ap.add_argument('--screenshot', default=None, help='folder for full-page PNG screenshots of each page')
    ap.add_argument('--max-height', type=int, default=15000, help='fail on a page taller than this at 1280 px width')
    ap.add_argument('--no-browser', action='store_true', help='skip the Chromium checks (heights, screenshots)')
    a = ap.parse_args()
    site = Path(a.site).resolve()
    if not (site/'index.html').exists(): sys.exit(f'{site}/index.html not found: build the docs first (nbdev_docs)')
    probs = check(site)
    if not a.no_browser: probs += browser_checks(site, a.max_height, Path(a.screenshot) if a.screenshot else None)
    for p in probs: print('PROBLEM', p)
    n_img = sum(len(re.findall(r'<img\b', p.read_text(errors='replace'))) for p in site.glob('*.html'))
    print(f'{len(list(site.glob("*.html")))} pages, {n_img} images, {len(probs)} problems')
    sys.exit(1 if probs else 0)
