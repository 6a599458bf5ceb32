#!/usr/bin/env bash
# Refresh the dashboard's vendored front-end files from the npm registry (run by hand when
# upgrading; the files are committed so Watchkeeper serves them itself, with no CDN and no
# build step at install time).
set -euo pipefail
HTMX=2.0.11 HTMX_SSE=2.2.4 UPLOT=1.6.32
dest="$(cd "$(dirname "$0")/.." && pwd)/src/watchkeeper/web/static/vendor"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
npm init -y >/dev/null
npm install --silent "htmx.org@$HTMX" "htmx-ext-sse@$HTMX_SSE" "uplot@$UPLOT"
cp node_modules/htmx.org/dist/htmx.min.js "$dest/"
cp node_modules/htmx.org/LICENSE "$dest/htmx.LICENSE"
cp node_modules/htmx-ext-sse/dist/sse.min.js "$dest/"
cp node_modules/htmx-ext-sse/LICENSE "$dest/htmx-ext-sse.LICENSE"
cp node_modules/uplot/dist/uPlot.iife.min.js node_modules/uplot/dist/uPlot.min.css "$dest/"
cp node_modules/uplot/LICENSE "$dest/uPlot.LICENSE"
echo "vendored htmx $HTMX, htmx-ext-sse $HTMX_SSE, uPlot $UPLOT into $dest"
