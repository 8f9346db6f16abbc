#!/usr/bin/env bash
# PgBouncer for the tests (a real transaction pooler in front of the embedded server): the one on
# PATH, or Debian's package unpacked under .cache/pgbouncer (no root, no dpkg install).
set -euo pipefail
cd "$(dirname "$0")/.."
dest=.cache/pgbouncer
if command -v pgbouncer >/dev/null || [ -x "$dest/usr/sbin/pgbouncer" ]; then
    exit 0
fi
if ! command -v apt-get >/dev/null; then
    echo "fetch-pgbouncer: no pgbouncer on PATH and no apt-get to fetch it: install PgBouncer (e.g. brew install pgbouncer)" >&2
    exit 1
fi
work=$(mktemp -d)
chmod a+rwx "$work"  # apt fetches as its own user, _apt
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get download pgbouncer libc-ares2 >/dev/null)
mkdir -p "$dest"
for deb in "$work"/*.deb; do
    dpkg-deb -x "$deb" "$dest"
done
LD_LIBRARY_PATH="$PWD/$dest/usr/lib/x86_64-linux-gnu:$PWD/$dest/usr/lib/aarch64-linux-gnu" "$dest/usr/sbin/pgbouncer" --version | head -1 >&2
