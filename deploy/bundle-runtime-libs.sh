#!/usr/bin/env bash
# Copy the shared libraries a binary loads (ldd), and the copyright files of
# the packages they come from, into one folder for the image's runtime stage
# (deploy/Dockerfile). Debian's runtime packages carry far more than the
# libraries: libtorch1.13 depends on all of OpenCV, FFmpeg, Qt and GDAL, which
# bring Mesa's drivers with LLVM, PROJ's data, ICU, iso-codes... The loader
# needs only the libraries, so the image gets only those.
#
# Usage: deploy/bundle-runtime-libs.sh BINARY OUT_DIR [BASE_PACKAGES_FILE]
#   OUT_DIR/lib/<soname>            each library, symlinks resolved
#   OUT_DIR/doc/<package>/copyright the licence of each package bundled from
#   BASE_PACKAGES_FILE              packages (one a line) the runtime base image
#                                   already has: their libraries are left out.
#                                   libc6 is always left out (the loader is the
#                                   base image's).
set -euo pipefail

if (( $# < 2 || $# > 3 )); then
    echo "usage: $0 BINARY OUT_DIR [BASE_PACKAGES_FILE]" >&2
    exit 2
fi
binary=$1 out=$2 base_file=${3:-}

declare -A in_base=([libc6]=1)
if [[ -n "$base_file" ]]; then
    while read -r package; do
        [[ -n "$package" ]] && in_base[${package%%:*}]=1
    done <"$base_file"
fi

listing=$(ldd "$binary")
if grep -q 'not found' <<<"$listing"; then
    echo "$listing" >&2
    echo "bundle-runtime-libs: $binary misses libraries" >&2
    exit 1
fi

# soname -> path, as the loader resolves them.
declare -A path_of=()
while read -r soname path; do
    path_of[$soname]=$path
done < <(awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}' <<<"$listing")

# path -> owning package, in one dpkg call (dpkg -S is slow): each path as
# ldd wrote it, its usrmerge twin (/lib <-> /usr/lib) and its real file.
candidates=()
for path in "${path_of[@]}"; do
    candidates+=("$path" "$(readlink -f "$path")")
    if [[ $path == /usr/* ]]; then candidates+=("${path#/usr}"); else candidates+=("/usr$path"); fi
done
declare -A owner_of=()
while IFS= read -r line; do
    owner_of[${line##*: }]=${line%%[:,]*}
done < <(dpkg -S "${candidates[@]}" 2>/dev/null || true)

owner() {
    local path=$1 twin
    if [[ $path == /usr/* ]]; then twin=${path#/usr}; else twin=/usr$path; fi
    for candidate in "$path" "$twin" "$(readlink -f "$path")"; do
        if [[ -n "${owner_of[$candidate]:-}" ]]; then
            echo "${owner_of[$candidate]}"
            return
        fi
    done
}

mkdir -p "$out/lib" "$out/doc"
bundled=0 skipped=0
declare -A packages=()
for soname in "${!path_of[@]}"; do
    path=${path_of[$soname]}
    package=$(owner "$path")
    if [[ -z "$package" ]]; then
        echo "bundle-runtime-libs: no package owns $path" >&2
        exit 1
    fi
    if [[ -n "${in_base[$package]:-}" ]]; then
        skipped=$((skipped + 1))
        continue
    fi
    cp "$(readlink -f "$path")" "$out/lib/$soname"
    packages[$package]=1
    bundled=$((bundled + 1))
done

for package in "${!packages[@]}"; do
    mkdir -p "$out/doc/$package"
    cp "/usr/share/doc/$package/copyright" "$out/doc/$package/"
done
echo "bundle-runtime-libs: $bundled libraries from ${#packages[@]} packages" \
    "($(du -sh "$out/lib" | cut -f1)), $skipped left to the base image"
