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
#   libwebrtc-audio-processing-dev  echo cancellation, noise suppression, gain control (WebRTC APM 0.3)
#   libyuv-dev             the reference the media benchmarks compare against
#   apngdis                an independent APNG decoder the gift decoder is checked against
#   xvfb xauth imagemagick desktop tests: a real window under Xvfb and its screenshot
PACKAGES=(
  build-essential pkg-config
  libwebkit2gtk-4.1-dev libayatana-appindicator3-dev librsvg2-dev
  libasound2-dev libv4l-dev libclang-dev cmake nasm libvpx-dev
  libyuv-dev libwebrtc-audio-processing-dev apngdis
  xvfb xauth imagemagick
)

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
