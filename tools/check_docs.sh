#!/usr/bin/env bash
# Build the docs site with nbdev_docs and check it (pages, links, images); optional screenshots.
#   tools/check_docs.sh [--screenshot OUTDIR]
# Uses real Quarto when installed; otherwise the offline stand-in in ../shared/tools (needs
# `pip install smalldocs==0.5.4 pypandoc_binary==1.17 pyyaml`).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v quarto >/dev/null 2>&1 && [ -x ../shared/tools/quarto ]; then
  export PATH="$(realpath ../shared/tools):$PATH"
fi
command -v quarto >/dev/null 2>&1 || { echo "quarto not found: install Quarto (https://quarto.org)"; exit 1; }
nbdev_docs
python tools/check_docs.py _docs "$@"
