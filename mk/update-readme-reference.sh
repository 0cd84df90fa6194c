#!/bin/sh
# Replace the generated configuration reference in README.md.
set -eu
ref=$(mktemp)
trap 'rm -f "$ref"' EXIT
"$1" >"$ref"
awk -v ref="$ref" '
  /<!-- config-reference:start -->/ { print; while ((getline l < ref) > 0) print l; skip = 1; next }
  /<!-- config-reference:end -->/ { skip = 0 }
  !skip { print }
' README.md >README.md.new
mv README.md.new README.md
