#!/usr/bin/env bash
# The libFuzzer targets of fuzz/ (clang, AddressSanitizer + UBSan):
#   tools/fuzz.sh TARGET SECONDS   build (if needed), replay tests/fuzz_regressions/TARGET/, then
#                                  fuzz TARGET for SECONDS from its seeds and saved corpus
#   tools/fuzz.sh all SECONDS      the readers' unit suites under the same sanitizers
#                                  (sanitized_reader_tests), then every target, one after another
# Targets: graph safetensors image csv onnx tflite emtm. A crash, sanitizer report, leak, hang
# (over 10 s for one input) or an input needing over 2 GB stops the script with a non-zero exit;
# libFuzzer saves the input under build-fuzz/findings/TARGET/. Copy it into
# tests/fuzz_regressions/TARGET/ with the fix, so every later run replays it.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${EMT_FUZZ_BUILD_DIR:-$root/build-fuzz}"
targets=(graph safetensors image csv onnx tflite emtm)
if (($# != 2)) || ! [[ "$2" =~ ^[0-9]+$ ]]; then
  echo "usage: tools/fuzz.sh TARGET|all SECONDS (targets: ${targets[*]})" >&2
  exit 2
fi

# Largest input per target: a few times its largest seed (the TFLite seed is a whole model).
max_len() {
  case "$1" in
    tflite) echo 600000 ;;
    onnx | image) echo 16384 ;;
    graph) echo 8192 ;;
    *) echo 4096 ;;
  esac
}

build_fuzzers() {
  CC=clang CXX=clang++ cmake -S "$root/fuzz" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    >/dev/null
  cmake --build "$build" -j"${EMT_FUZZ_JOBS:-1}"
}

# Seeds are made, never committed: the formats' own writers (fuzz_seeds), the graph files, and
# the TFLite model of ../shared when it is there.
make_seeds() {
  local seeds="$build/seeds"
  # Remade when the seed writer changes.
  [[ "$seeds/.made" -nt "$build/fuzz_seeds" ]] && return
  rm -rf "$seeds"
  local node_tests=/usr/share/libonnx-testdata/data/node  # Debian's libonnx-testdata
  if [[ -d "$node_tests" ]]; then
    "$build/fuzz_seeds" "$seeds" "$node_tests"
  else
    "$build/fuzz_seeds" "$seeds"
  fi
  mkdir -p "$seeds/graph" "$seeds/tflite"
  cp "$root"/graphs/*.toml "$root"/graphs/lib/*.toml "$seeds/graph/"
  local shared="${EMT_SHARED_DIR:-$root/../shared}"
  if [[ -f "$shared/models/mobilenet_v1_0.25_128_quant.tflite" ]]; then
    cp "$shared/models/mobilenet_v1_0.25_128_quant.tflite" "$seeds/tflite/"
  else
    printf '\x1c\x00\x00\x00TFL3' >"$seeds/tflite/header_only.tflite"
  fi
  touch "$seeds/.made"
}

run_target() {
  local target="$1" seconds="$2" fuzzer="$build/fuzz_$1"
  local options=(-max_len="$(max_len "$target")" -rss_limit_mb=2048 -timeout=10)
  local regressions="$root/tests/fuzz_regressions/$target"
  # Where the targets write each input as a file (fuzz/fuzz_input.h); emptied after each run.
  export EMT_FUZZ_SCRATCH="$build/scratch"
  trap 'rm -rf "$EMT_FUZZ_SCRATCH"' RETURN
  if compgen -G "$regressions/*" >/dev/null; then
    echo "fuzz: $target: replaying $(ls "$regressions" | wc -l) regression inputs"
    "$fuzzer" "${options[@]}" "$regressions"/* >"$build/$target.replay.log" 2>&1 || {
      tail -n 60 "$build/$target.replay.log" >&2
      echo "fuzz: $target: a regression input fails again (log: $build/$target.replay.log)" >&2
      return 1
    }
  fi
  local corpus="$build/corpus/$target" findings="$build/findings/$target/"
  mkdir -p "$corpus" "$findings"
  echo "fuzz: $target for ${seconds}s"
  "$fuzzer" "${options[@]}" -max_total_time="$seconds" -print_final_stats=1 \
    -artifact_prefix="$findings" "$corpus" "$build/seeds/$target" 2>"$build/$target.log" || {
    tail -n 60 "$build/$target.log" >&2
    echo "fuzz: $target found a problem: the input is in $findings (log: $build/$target.log)" >&2
    return 1
  }
  grep -aE '(DONE|stat::number_of_executed_units|stat::peak_rss_mb)' "$build/$target.log"
}

if [[ "$1" == all ]]; then
  chosen=("${targets[@]}")
elif [[ " ${targets[*]} " == *" $1 "* ]]; then
  chosen=("$1")
else
  echo "fuzz: unknown target '$1' (${targets[*]} or all)" >&2
  exit 2
fi
build_fuzzers
make_seeds
if [[ "$1" == all ]]; then
  echo "fuzz: the readers' unit suites under AddressSanitizer + UBSan (sanitized_reader_tests)"
  (cd "$root" && EMT_SOURCE_DIR="$root" ASAN_OPTIONS=detect_leaks=1 \
    "$build/sanitized_reader_tests" --gtest_brief=1) || {
    echo "fuzz: a reader's unit test failed under the sanitizers" >&2
    exit 1
  }
fi
for t in "${chosen[@]}"; do run_target "$t" "$2"; done
