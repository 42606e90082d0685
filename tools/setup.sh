#!/usr/bin/env bash
# One-step set-up for a fresh Debian 12 machine (run as root): installs the missing packages,
# configures and builds (Release, -j2), then runs what was asked:
#   tools/setup.sh run [engine run options]   train + evaluate EMT-Net on the built-in phantom data
#   tools/setup.sh test                       the whole test suite (ctest), the sanitized and
#                                             fuzz runs, then the aarch64 build's tests under
#                                             qemu (build-aarch64/)
#   tools/setup.sh build                      set-up and build only (both builds)
# Idempotent: packages already present are not touched, and the build is incremental.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${EMT_BUILD_DIR:-$root/build}"
mode="${1:-build}"
shift || true

# libonnx-testdata: ONNX's backend test cases, which the ONNX import conformance suite runs
# (ctest -L onnx-conformance). libsimde-dev compiles the NEON kernels on x86;
# g++-aarch64-linux-gnu and qemu-user build the mobile runtime for ARM and run its tests.
# ocl-icd-opencl-dev: oneDNN's CMake config looks for OpenCL (a Recommends of libdnnl-dev,
# which --no-install-recommends leaves out). clang and libclang-rt-14-dev: the libFuzzer
# targets (fuzz/, tools/fuzz.sh).
packages=(cmake g++ make pkg-config ccache
          libdnnl-dev libtbb-dev libopencv-dev libtoml11-dev nlohmann-json3-dev libcli11-dev
          libonnx-dev libprotobuf-dev protobuf-compiler libgtest-dev libgmock-dev
          libonnx-testdata libsimde-dev g++-aarch64-linux-gnu qemu-user
          ocl-icd-opencl-dev clang libclang-rt-14-dev)
# node and npm install onnxruntime-node (below), so the ONNX Runtime comparisons of the export
# test run instead of skipping. Asked for by command, not package: a NodeSource nodejs bundles npm
# and conflicts with Debian's npm package.
command -v node >/dev/null || packages+=(nodejs)
command -v npm >/dev/null || packages+=(npm)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# ONNX Runtime for Node.js, which the ONNX export test compares our exports with: a pinned
# onnxruntime-node in <build>/ort (outside git). Its post-install script would download CUDA
# libraries; the CPU libraries ship in the package, so that step is skipped. When npm is missing
# or cannot reach the registry, set-up goes on and the test skips, saying why.
ort_version=1.30.0
ort_dir="$build/ort"
ort_installed() {
  [[ "$(node -p "require('$ort_dir/node_modules/onnxruntime-node/package.json').version" \
        2>/dev/null)" == "$ort_version" ]]
}
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "setup: node/npm not found: the ONNX Runtime comparison of the export test will skip"
elif ! ort_installed; then
  echo "setup: installing onnxruntime-node@$ort_version into $ort_dir"
  mkdir -p "$ort_dir"
  if ! ONNXRUNTIME_NODE_INSTALL_CUDA=skip npm install --prefix "$ort_dir" --no-audit --no-fund \
         --loglevel=error --fetch-retries=1 --fetch-timeout=60000 \
         "onnxruntime-node@$ort_version" >"$ort_dir/npm-install.log" 2>&1 || ! ort_installed; then
    echo "setup: could not install onnxruntime-node (see $ort_dir/npm-install.log):" \
         "the ONNX Runtime comparison of the export test will skip"
  fi
fi

cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j2

# The aarch64 build of ops/ and mobile/ (cmake/aarch64-linux-gnu.cmake); its tests run under
# qemu-aarch64 through ctest.
build_arm="${EMT_ARM_BUILD_DIR:-$root/build-aarch64}"
build_aarch64() {
  cmake -S "$root" -B "$build_arm" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_TOOLCHAIN_FILE="$root/cmake/aarch64-linux-gnu.cmake" >/dev/null
  cmake --build "$build_arm" -j2
}

# The ops and mobile suites (reference kernels, NEON variants through SIMDe, the .emtm reader
# and the mobile runtime) under AddressSanitizer + UndefinedBehaviorSanitizer (EMT_SANITIZE).
# No suppressions: any report fails its test.
build_asan="${EMT_ASAN_BUILD_DIR:-$root/build-asan}"
test_sanitized() {
  cmake -S "$root" -B "$build_asan" -DCMAKE_BUILD_TYPE=Release -DEMT_MOBILE_ONLY=ON \
    -DEMT_SANITIZE=ON >/dev/null
  cmake --build "$build_asan" -j2 --target ops_tests neon_tests mobile_tests
  (cd "$build_asan" && \
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
    ctest --output-on-failure -j2 "$@")
}

case "$mode" in
  build) build_aarch64 ;;
  run) cd "$root" && exec "$build/tools/engine" run graphs/emtnet.toml "$@" ;;
  test)
    build_aarch64
    (cd "$build" && ctest --output-on-failure -j2 "$@")
    echo "setup: the ops and mobile tests under AddressSanitizer + UBSan (build-asan/)"
    test_sanitized "$@"
    echo "setup: every fuzz target for 15 s after replaying its regression inputs (build-fuzz/)"
    EMT_FUZZ_JOBS=2 "$root/tools/fuzz.sh" all 15
    echo "setup: the aarch64 tests, under qemu-aarch64"
    cd "$build_arm" && exec ctest --output-on-failure -j2 "$@" ;;
  *) echo "setup: unknown mode '$mode' (run, test or build)" >&2; exit 2 ;;
esac
