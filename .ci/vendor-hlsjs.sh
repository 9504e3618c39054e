#!/usr/bin/env bash
# Vendors hls.js into internal/media/web, where go:embed puts it into the
# binary for the /watch player page:
#   - fetches the pinned npm package with `npm pack` (the registry's own
#     tarball, immutable once published),
#   - checks the tarball's SHA-256 against the one pinned here,
#   - copies dist/hls.min.js, its LICENSE and the version.
# To upgrade: change version, run it once with HLSJS_SHA256=any to print
# the new checksum, review the upstream changes, pin the checksum, run again.
set -euo pipefail

version="1.6.19"
sha256="${HLSJS_SHA256:-a35046767c8dff431fb02b565451d1214378ffc48928355f3622d4702ec2aca0}"

root="$(cd "$(dirname "$0")/.." && pwd)"
dest="$root/internal/media/web"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

(cd "$tmp" && npm pack --silent --loglevel=error "hls.js@$version" >/dev/null)
tgz="$tmp/hls.js-$version.tgz"
got="$(sha256sum "$tgz" | cut -d' ' -f1)"
if [ "$got" != "$sha256" ]; then
	echo "vendor-hlsjs: hls.js@$version tarball has SHA-256 $got, want $sha256" >&2
	exit 1
fi
tar -xzf "$tgz" -C "$tmp" package/dist/hls.min.js package/LICENSE
cp "$tmp/package/dist/hls.min.js" "$dest/hls.min.js"
cp "$tmp/package/LICENSE" "$dest/hls.js.LICENSE"
echo "$version" >"$dest/hls.js.VERSION"
echo "vendor-hlsjs: hls.js $version (sha256 $got) in $dest" >&2
