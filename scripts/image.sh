#!/usr/bin/env bash
# Builds the playbook container image offline with buildah (deploy/Containerfile, FROM scratch):
# the binary given (default target/dist/playbook: `cargo build --profile dist`, stripped in the copy), exactly the shared
# libraries `ldd` says it loads, and a non-root user (65532). Nothing is pulled.
#
#   scripts/image.sh [BINARY]            # tag: $IMAGE, default localhost/playbook:VERSION
#
# buildah's own settings apply (STORAGE_DRIVER, CONTAINERS_STORAGE_CONF, ...); the isolation
# defaults to chroot, which needs no user namespaces or runc (BUILDAH_ISOLATION overrides it).
# Prints the image id on its last line.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="${1:-$root/target/dist/playbook}"
if [ ! -x "$bin" ]; then
  echo "image.sh: no executable at $bin (build it first: cargo build --profile dist)" >&2
  exit 2
fi
command -v buildah >/dev/null || { echo "image.sh: buildah is not installed (apt-get install buildah)" >&2; exit 2; }
version="$("$bin" --version | awk '{print $2}')"
tag="${IMAGE:-localhost/playbook:$version}"
export BUILDAH_ISOLATION="${BUILDAH_ISOLATION:-chroot}"

ctx="$(mktemp -d)"
trap 'rm -rf "$ctx"' EXIT
strip -o "$ctx/playbook" "$bin" 2>/dev/null || cp "$bin" "$ctx/playbook"
chmod 0755 "$ctx/playbook"
# Every library the dynamic loader resolves, and the loader itself, at the path ldd names.
mkdir -p "$ctx/rootfs"
libs="$(ldd "$bin" | awk '/=> \//{print $3} /^[ \t]*\//{print $1}')"
if [ -z "$libs" ]; then
  echo "image.sh: ldd names no libraries for $bin (a static binary needs none)" >&2
fi
for lib in $libs; do
  mkdir -p "$ctx/rootfs$(dirname "$lib")"
  cp -L "$lib" "$ctx/rootfs$lib"
done
mkdir -p "$ctx/etc" "$ctx/home"
cp "$root/deploy/passwd" "$ctx/etc/passwd"
cp "$root/deploy/group" "$ctx/etc/group"

buildah bud --quiet --layers=false \
  --label "org.opencontainers.image.title=playbook" \
  --label "org.opencontainers.image.version=$version" \
  -f "$root/deploy/Containerfile" -t "$tag" "$ctx"
