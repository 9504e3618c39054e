#!/usr/bin/env bash
# Installs what the end-to-end tests in internal/daemon (e2e_*_test.go) need,
# each thing only when it is missing, so running it twice is cheap:
#   - ffmpeg/ffprobe  (HLS)
#   - chromium        (e2e_browser_test.go: headless playback)
#   - firefox-esr     (e2e_watchfirefox_test.go: the /watch page in Gecko,
#                      driven over Marionette)
#   - WebKitWebDriver (e2e_watchwebkit_test.go: the /watch page in WebKit,
#                      WebKitGTK's MiniBrowser driven over W3C WebDriver:
#                      webkit2gtk-driver, xvfb for its display, and the
#                      GStreamer plugins its media stack plays H.264/AAC/AC-3
#                      with: -bad (h264parse, tsdemux), -libav (the decoders),
#                      -gl (its video sink); -base and -good come with it)
#   - cvlc            (e2e_vlc_test.go: vlc-bin + vlc-plugin-base, which holds
#                      the http access, the m3u/mp4/mkv/ts demuxers, avcodec
#                      and the adaptive (HLS) module)
#   - hls.js          (the browser test's HLS player for browsers without
#                      native HLS), from the npm registry into a cache dir
#
# Its only output on stdout is the path of hls.min.js; everything else goes
# to stderr. Use it as:
#   export TORRENTCLAW_HLSJS="$(bash .ci/e2e-deps.sh)"
#   export TORRENTCLAW_E2E=required
#
# TORRENTCLAW_E2E_CACHE overrides the cache dir (default
# $HOME/.cache/torrentclaw-e2e). HLSJS_VERSION overrides the npm version spec
# (default 1, the latest 1.x).
set -euo pipefail

# Everything below writes to stderr; fd 3 is the real stdout.
exec 3>&1 1>&2

cache="${TORRENTCLAW_E2E_CACHE:-${HOME:-/root}/.cache/torrentclaw-e2e}"
hlsjs_version="${HLSJS_VERSION:-1}"

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

need=()
command -v ffmpeg >/dev/null 2>&1 && command -v ffprobe >/dev/null 2>&1 || need+=(ffmpeg)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v firefox-esr >/dev/null 2>&1 || command -v firefox >/dev/null 2>&1 || need+=(firefox-esr)
command -v WebKitWebDriver >/dev/null 2>&1 || need+=(webkit2gtk-driver)
command -v Xvfb >/dev/null 2>&1 || need+=(xvfb)
for p in gstreamer1.0-plugins-bad gstreamer1.0-libav gstreamer1.0-gl libgl1-mesa-dri; do
	installed "$p" || need+=("$p")
done
command -v cvlc >/dev/null 2>&1 || need+=(vlc-bin)
installed vlc-plugin-base || need+=(vlc-plugin-base)
command -v npm >/dev/null 2>&1 || need+=(npm)

if ((${#need[@]})); then
	echo "e2e-deps: installing ${need[*]}"
	sudo=()
	if [ "$(id -u)" -ne 0 ]; then
		command -v sudo >/dev/null 2>&1 || { echo "e2e-deps: need root or sudo to install ${need[*]}"; exit 1; }
		sudo=(sudo)
	fi
	export DEBIAN_FRONTEND=noninteractive
	# Package lists may be missing or stale on a fresh machine.
	"${sudo[@]}" apt-get update -qq
	"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

hlsjs="$cache/node_modules/hls.js/dist/hls.min.js"
if [ ! -s "$hlsjs" ]; then
	echo "e2e-deps: installing hls.js@$hlsjs_version into $cache"
	mkdir -p "$cache"
	npm install --no-audit --no-fund --no-save --loglevel=error --prefix "$cache" "hls.js@$hlsjs_version"
fi
if [ ! -s "$hlsjs" ]; then
	echo "e2e-deps: $hlsjs is missing after npm install"
	exit 1
fi
echo "e2e-deps: ffmpeg, chromium, firefox, WebKitWebDriver, cvlc and hls.js ($hlsjs) are ready"

echo "$hlsjs" >&3
