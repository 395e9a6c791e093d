#!/usr/bin/env bash
# Lay out the files of the runtime image (deploy/Dockerfile) in one folder, as
# they go under the image's /: the runtime stage copies that folder whole. The
# build stage runs it on the binary it compiled; on a machine that has built
# the project already, it makes the small build context of the `prebuilt`
# build (deploy/README.md, "Container image"):
#
#   OUT/usr/local/bin/actorserve              BINARY, debug info stripped
#   OUT/usr/local/lib/actorserve/<soname>     the libraries it loads that the
#   OUT/usr/share/doc/<package>/copyright     base image lacks, with their
#                                             licences (bundle-runtime-libs.sh)
#   OUT/etc/ld.so.conf.d/actorserve.conf      the loader's path to them
#   OUT/opt/actorserve/models                 MODEL_REPOSITORY
#
# Usage: deploy/image-files.sh BINARY MODEL_REPOSITORY OUT [BASE_PACKAGES_FILE]
#   BASE_PACKAGES_FILE  the packages of the runtime base image, one a line
#                       (their libraries are left to it); outside the image:
#                       docker run --rm debian:bookworm-slim dpkg-query -W -f '${Package}\n'
set -euo pipefail

if (( $# < 3 || $# > 4 )); then
    echo "usage: $0 BINARY MODEL_REPOSITORY OUT [BASE_PACKAGES_FILE]" >&2
    exit 2
fi
binary=$1 repository=$2 out=$3 base_packages=${4:-}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

[[ -x "$binary" ]] || { echo "image-files: no binary $binary" >&2; exit 1; }
[[ -d "$repository" ]] || { echo "image-files: no model repository $repository" >&2; exit 1; }
if [[ -e "$out" ]] && [[ -n "$(ls -A "$out")" ]]; then
    echo "image-files: $out is not empty" >&2
    exit 1
fi

bundle=$(mktemp -d)
trap 'rm -rf "$bundle"' EXIT
"$here/bundle-runtime-libs.sh" "$binary" "$bundle" ${base_packages:+"$base_packages"}

mkdir -p "$out"/usr/local/bin "$out"/usr/local/lib "$out"/usr/share "$out"/etc/ld.so.conf.d "$out"/opt/actorserve
strip --strip-debug -o "$out/usr/local/bin/actorserve" "$binary"
mv "$bundle/lib" "$out/usr/local/lib/actorserve"
mv "$bundle/doc" "$out/usr/share/doc"
echo /usr/local/lib/actorserve >"$out/etc/ld.so.conf.d/actorserve.conf"
cp -r "$repository" "$out/opt/actorserve/models"
find "$out/opt/actorserve/models" -name __pycache__ -prune -exec rm -rf {} +
# Copied over the image's own folders: every folder 755 (a mktemp folder is
# 700), every file readable by the server's user, owned by root.
chmod -R u=rwX,go=rX "$out"
chmod 755 "$out"
echo "image-files: $out ($(du -sh "$out" | cut -f1))"
