#!/usr/bin/env bash
# The npm packages of the browser and OpenAPI tests, installed with `npm ci`
# from package-lock.json into DIR/node_modules (the build dir, not the source
# tree). Run by the CTest fixture node_packages.
# Usage: tests/browser/install.sh DIR
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
dir=${1:?usage: $0 DIR}
mkdir -p "$dir"
cp "$here/package.json" "$here/package-lock.json" "$dir/"
cd "$dir"
npm ci --no-audit --no-fund
