#!/bin/sh
# Builds web/dist/app.js from web/src/app.js with the pinned esbuild, yjs and y-websocket of the
# repository's npm workspace (ginws/yjs/testdata/js; `npm ci` there first). The built bundle is
# committed, so `go run ./examples/yjs` needs no npm; run this (or `go generate ./examples/yjs`)
# after changing web/src. An argument writes the bundle elsewhere (the tests compare).
set -eu
here="$(cd "$(dirname "$0")" && pwd)"
js="$here/../../ginws/yjs/testdata/js"
out="${1:-$here/web/dist/app.js}"
NODE_PATH="$js/node_modules" "$js/node_modules/.bin/esbuild" "$here/web/src/app.js" \
	--bundle --format=iife --target=es2020 --minify --legal-comments=none \
	--outfile="$out" --log-level=warning
