#!/usr/bin/env bash
# Installs what lriad needs from Debian's packages (when missing) and builds it into build/.
# Usage: scripts/setup.sh            (idempotent; a second run only rebuilds what changed)
# Env:   LRIAD_BUILD_DIR (default build), LRIAD_JOBS (default: cores), CMAKE_PREFIX_PATH (official LibTorch)
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD_DIR=${LRIAD_BUILD_DIR:-build}
JOBS=${LRIAD_JOBS:-$(nproc)}
PACKAGES=(g++ cmake ninja-build pkg-config ccache git
  libtorch-dev libopencv-dev nlohmann-json3-dev libcli11-dev libspdlog-dev
  libsentencepiece-dev libgtest-dev
  libgloo-dev  # Gloo's headers: multi-process training over LibTorch's c10d (train/distributed.h)
  python3-sklearn  # the metrics cross-check test (tests/test_eval.cpp)
  help2man dpkg-dev file  # the man page; `cpack -G DEB` (dpkg-shlibdeps, file)
  libopenblas0-openmp)  # without it Debian's LibTorch runs on the ~100x slower reference BLAS

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "[setup] installing: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# If the pthread OpenBLAS is also installed it wins the alternative by priority and
# oversubscribes the cores against LibTorch's own threads: prefer the OpenMP build.
arch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo x86_64-linux-gnu)
for lib in libblas.so.3 liblapack.so.3; do
  target=/usr/lib/$arch/openblas-openmp/$lib
  if [ -e "$target" ] && update-alternatives --query "$lib-$arch" 2>/dev/null | grep -q "Value: .*openblas-pthread"; then
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO update-alternatives --set "$lib-$arch" "$target"
  fi
done

if [ ! -f "$BUILD_DIR/build.ninja" ]; then
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release
fi
echo "[setup] building with $JOBS jobs (ccache: $(command -v ccache || echo none))"
cmake --build "$BUILD_DIR" -j "$JOBS"
echo "[setup] built $BUILD_DIR/bin/lriad"
