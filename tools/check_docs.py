#!/usr/bin/env python3
"""Check a built docs site: one page per notebook, every local link and image resolves, figures are present.

  python tools/check_docs.py [_docs] [--screenshot OUTDIR]

Exits 1 listing each problem. With --screenshot, headless Chromium saves a PNG of index.html and every page.
"""
import argparse, re, shutil, subprocess, sys, tempfile
from pathlib import Path
from urllib.parse import unquote, urlparse

ROOT = Path(__file__).resolve().parents[1]


def page_name(nb: Path) -> str:
    "nbdev drops a leading number prefix: `01_data.ipynb` -> `data.html`."
    return re.sub(r'^\d+[a-z]?_', '', nb.stem) + '.html'


def check(site: Path) -> list:
    problems = []
    nbs = sorted(p for p in (ROOT/'nbs').glob('*.ipynb') if not p.name.startswith('_'))
    for nb in nbs:
        if not (site/page_name(nb)).exists(): problems.append(f'{nb.name}: no page {page_name(nb)} in {site}')
    for page in sorted(site.rglob('*.html')):
        html = page.read_text(errors='replace')
        if '<title>' not in html: problems.append(f'{page.name}: no <title>')
        for attr, url in re.findall(r'<(?:img|a)\b[^>]*?\b(src|href)="([^"]+)"', html):
            u = urlparse(url)
            if u.scheme or url.startswith(('#', '//', 'mailto:')) or not u.path: continue
            target = (page.parent/unquote(u.path)).resolve()
            if not target.exists(): problems.append(f'{page.relative_to(site)}: broken {attr} {url}')
    return problems


def screenshot(site: Path, out: Path):
    chromium = shutil.which('chromium') or shutil.which('chromium-browser') or shutil.which('google-chrome')
    if not chromium: sys.exit('no chromium found: apt-get install -y chromium')
    out.mkdir(parents=True, exist_ok=True)
    for page in sorted(site.glob('*.html')):
        png = out/(page.stem + '.png')
        subprocess.run([chromium, '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
                        '--disable-background-networking', '--disable-component-update', '--disable-sync',
                        f'--user-data-dir={tempfile.mkdtemp()}', '--window-size=1200,2400', '--hide-scrollbars',
                        f'--screenshot={png}', page.as_uri()], capture_output=True, timeout=120)
        print('screenshot', png, 'ok' if png.exists() else 'MISSING')


if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('site', nargs='?', default=str(ROOT/'_docs'))
    ap.add_argument('--screenshot', default=None, help='folder for PNG screenshots of each page')
    a = ap.parse_args()
    site = Path(a.site).resolve()
    if not (site/'index.html').exists(): sys.exit(f'{site}/index.html not found: build the docs first (nbdev_docs)')
    probs = check(site)
    for p in probs: print('PROBLEM', p)
    n_img = sum(len(re.findall(r'<img\b', p.read_text(errors='replace'))) for p in site.glob('*.html'))
    print(f'{len(list(site.glob("*.html")))} pages, {n_img} images, {len(probs)} problems')
    if a.screenshot: screenshot(site, Path(a.screenshot))
    sys.exit(1 if probs else 0)
