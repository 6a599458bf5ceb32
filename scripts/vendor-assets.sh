#!/usr/bin/env bash
# Refresh the dashboard's vendored front-end files from the npm registry (run by hand when
# upgrading; the files are committed so Watchkeeper serves them itself, with no CDN and no
# build step at install time).
set -euo pipefail
HTMX=2.0.11 HTMX_SSE=2.2.4 UPLOT=1.6.32
# The API docs' renderers (/api/docs, /api/redoc). Only their self-contained bundles are
# used, so they are unpacked with `npm pack`: no dependency tree, no install scripts. ReDoc
# stays on 2.x: 3.x depends on a package the registry does not have and reports usage.
SWAGGER_UI=5.35.0 REDOC=2.5.4
dest="$(cd "$(dirname "$0")/.." && pwd)/src/watchkeeper/http/web/static/vendor"
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
npm pack --silent "swagger-ui-dist@$SWAGGER_UI" "redoc@$REDOC" >/dev/null
mkdir swagger-ui redoc
tar xzf "swagger-ui-dist-$SWAGGER_UI.tgz" -C swagger-ui
tar xzf "redoc-$REDOC.tgz" -C redoc
# Without their source-map comments: the maps are not vendored.
sed '/^\/\/# sourceMappingURL=/d' swagger-ui/package/swagger-ui-bundle.js >"$dest/swagger-ui-bundle.js"
sed '/^\/\*# sourceMappingURL=/d' swagger-ui/package/swagger-ui.css >"$dest/swagger-ui.css"
cp swagger-ui/package/LICENSE "$dest/swagger-ui.LICENSE"
sed '/^\/\/# sourceMappingURL=/d' redoc/package/bundles/redoc.standalone.js >"$dest/redoc.standalone.js"
cp redoc/package/LICENSE "$dest/redoc.LICENSE"
echo "vendored htmx $HTMX, htmx-ext-sse $HTMX_SSE, uPlot $UPLOT, swagger-ui $SWAGGER_UI," \
  "redoc $REDOC into $dest"
