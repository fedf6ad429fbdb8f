#!/usr/bin/env bash
# Installs every build, test and model-generation dependency of sieve from Debian 12 packages, and
# makes `import sieve` find the Python module of this clone's release build for Debian's python3.
# Idempotent: packages already present are left alone. Run as root (or with sudo available).
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  build-essential cmake ninja-build pkg-config git
  libonnx-dev libprotobuf-dev protobuf-compiler
  libdnnl-dev libeigen3-dev
  libpng-dev libjpeg62-turbo-dev libturbojpeg0-dev zlib1g-dev
  libopencv-dev libopencv-contrib-dev
  libcli11-dev nlohmann-json3-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libonnx-testdata
  python3 python3-numpy python3-onnx python3-torch python3-torchvision
  python3-dev pybind11-dev python3-pybind11 python3-pytest
  chromium python3-pil
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# A .pth file in the interpreter's site directory for local installs (/usr/local/lib/python3.X/
# dist-packages) puts build/release/python on sys.path, so /usr/bin/python3 imports the module the
# build makes there without any environment variable. Written only when it names another directory.
site=$(/usr/bin/python3 -c 'import site; print(site.getsitepackages()[0])')
module_dir="$PWD/build/release/python"
if [ "$(cat "$site/sieve.pth" 2>/dev/null)" != "$module_dir" ]; then
  $SUDO mkdir -p "$site"
  echo "$module_dir" | $SUDO tee "$site/sieve.pth" >/dev/null
fi
