#!/usr/bin/env bash
# Make the Debian 12 base images deploy/Dockerfile starts from, without a
# registry: debootstrap a minbase bookworm and `docker import` it as
#   debian:bookworm       the build stage's base
#   debian:bookworm-slim  the same system, less documentation: like Docker's
#                         official slim image, dpkg skips man pages, docs and
#                         translations (/etc/dpkg/dpkg.cfg.d/docker-slim)
# Both get the apt sources of the official images (bookworm, -updates,
# -security) and no apt caches. Runs as root (debootstrap); takes ~3 minutes.
#
# Usage: deploy/make-base-image.sh [--force]
#   --force   remake the images even if they exist
# Environment: DEBIAN_MIRROR (default: the first Debian mirror of this
# machine's apt sources, else http://deb.debian.org/debian), DOCKER (docker).
set -euo pipefail

docker=${DOCKER:-docker}
force=0
case "${1:-}" in
    --force) force=1 ;;
    "") ;;
    *) echo "usage: $0 [--force]" >&2; exit 2 ;;
esac

if (( !force )) && "$docker" image inspect debian:bookworm debian:bookworm-slim >/dev/null 2>&1; then
    echo "make-base-image: debian:bookworm and debian:bookworm-slim exist"
    exit 0
fi

# The machine's own mirror of the main archive (not the security one).
host_mirror() {
    grep -hsoE '^(deb|URIs:)[[:space:]]+[^[:space:]]+' /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
        /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' | grep -E '/debian/?$' | head -n 1
}
mirror=${DEBIAN_MIRROR:-$(host_mirror || true)}
mirror=${mirror:-http://deb.debian.org/debian}
mirror=${mirror%/}
security_mirror=${mirror%/debian}/debian-security

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
rootfs="$work/rootfs"

echo "make-base-image: debootstrap bookworm from $mirror"
debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 || {
    tail -n 30 "$work/debootstrap.log" >&2
    exit 1
}
echo "make-base-image: debootstrap done in ${SECONDS}s"

rm -f "$rootfs/etc/apt/sources.list"
cat >"$rootfs/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $security_mirror
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
rm -rf "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
: >"$rootfs/etc/hostname"

import() { # tag
    tar --numeric-owner -C "$rootfs" -c . | "$docker" import \
        --change 'CMD ["bash"]' --change 'ENV LANG=C.UTF-8' - "$1" >/dev/null
    echo "make-base-image: $1 $("$docker" image inspect --format '{{.Size}}' "$1" | numfmt --to=si)B (at ${SECONDS}s)"
}
import debian:bookworm

# The slim variant: what dpkg will not install from now on, removed now too.
cat >"$rootfs/etc/dpkg/dpkg.cfg.d/docker-slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
EOF
find "$rootfs/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete
rm -rf "$rootfs"/usr/share/{man,groff,info,lintian,linda}/*
find "$rootfs/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} +
import debian:bookworm-slim
