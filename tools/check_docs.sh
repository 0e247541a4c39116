#!/usr/bin/env bash
# Build the docs site with nbdev_docs and check it (pages, sidebar, links, images, saved outputs, maths, page
# heights); optionally full-page screenshots. Works from a fresh clone after `pip install -e ".[dev]"`:
#   tools/check_docs.sh [--screenshot OUTDIR] [--max-height 15000] [--no-browser]
# Uses real Quarto when installed; otherwise the offline stand-in ../shared/tools/quarto, whose Python packages it
# installs (smalldocs==0.5.4 pypandoc_binary==1.17 pyyaml) and puts first on PATH for the build only.
# Page heights and screenshots need Chromium: installed with apt-get when run as root, else say what to install.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
QPATH=""
if ! command -v quarto >/dev/null 2>&1; then
  if [ -x ../shared/tools/quarto ]; then
    QPATH="$(realpath ../shared/tools):"
    if ! $PY -c 'import smalldocs, pypandoc, yaml' 2>/dev/null; then
      echo "installing the offline Quarto stand-in's packages: smalldocs==0.5.4 pypandoc_binary==1.17 pyyaml"
      $PY -m pip install -q smalldocs==0.5.4 pypandoc_binary==1.17 pyyaml || {
        echo "could not install them: run '$PY -m pip install smalldocs==0.5.4 pypandoc_binary==1.17 pyyaml'"; exit 1; }
    fi
  else
    echo "quarto not found: install Quarto (https://quarto.org/docs/get-started/), or put the offline stand-in at ../shared/tools/quarto"
    exit 1
  fi
fi
if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1 && ! command -v google-chrome >/dev/null 2>&1 \
   && [[ " $* " != *" --no-browser "* ]]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing Chromium (page heights, screenshots): apt-get install -y chromium"
    apt-get install -y -q chromium >/dev/null 2>&1 || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium >/dev/null 2>&1; } \
      || echo "could not install Chromium: run 'sudo apt-get install -y chromium' (heights and screenshots are skipped)"
  else
    echo "Chromium not found: run 'sudo apt-get install -y chromium' (heights and screenshots are skipped)"
  fi
fi
rm -rf _proc _docs     # a page of a renamed or deleted notebook must not survive from an earlier build
PATH="$QPATH$PATH" nbdev_docs
$PY tools/check_docs.py _docs "$@"
