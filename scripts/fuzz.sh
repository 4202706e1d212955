#!/usr/bin/env bash
# make fuzz: build the libFuzzer targets (fuzz/, clang, -DDT_FUZZ=ON in build-fuzz/) and run
# each for SECONDS (default 60) from its corpus in the repository (fuzz/corpus/<target>/) and
# its regression inputs (fuzz/regressions/<target>/). New corpus entries and crash inputs go
# to a scratch folder, never into the repository; a crash fails the run and names the input
# to keep as a regression (fuzz/README.md). Installs clang and libFuzzer when missing: they
# are needed here only, not by make test.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
targets=(pb_request http_request json time)

bash scripts/deps.sh
missing=()
for p in clang libclang-rt-dev; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "fuzz: installing ${missing[*]}" >&2
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -q
  $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Debug -DDT_FUZZ=ON -DDT_TESTS=OFF >/dev/null
cmake --build build-fuzz -j "$(nproc 2>/dev/null || echo 2)"

scratch=$(mktemp -d "${TMPDIR:-/tmp}/dt-fuzz.XXXXXX")
echo "fuzz: $seconds s per target; new inputs and crashes under $scratch"
failed=()
summary=()
for t in "${targets[@]}"; do
  mkdir -p "$scratch/$t/corpus" "$scratch/$t/artifacts"
  inputs=("fuzz/corpus/$t")
  [ -d "fuzz/regressions/$t" ] && inputs+=("fuzz/regressions/$t")
  log="$scratch/$t/log"
  echo "fuzz: $t ..."
  set +e
  DT_TEST_TMP="$scratch/$t" build-fuzz/fuzz/fuzz_$t -max_total_time="$seconds" -timeout=25 \
    -print_final_stats=1 -artifact_prefix="$scratch/$t/artifacts/" \
    "$scratch/$t/corpus" "${inputs[@]}" >"$log" 2>&1
  rc=$?
  set -e
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1 || true)
  cov=$(grep -o 'cov: [0-9]* ft: [0-9]*' "$log" | tail -1 || true)
  corpus=$(find "$scratch/$t/corpus" -type f | wc -l)
  summary+=("$(printf '%-13s %12s runs  %-22s %6s new inputs' "$t" "${runs:-?}" "${cov:-}" "$corpus")")
  if [ $rc -ne 0 ]; then
    failed+=("$t")
    grep -E 'ERROR|SUMMARY|invariant|Test unit written' "$log" | head -20 >&2 || true
    echo "fuzz: $t FAILED (log: $log); keep the input as fuzz/regressions/$t/<name> and" \
         "fix it: make test runs every file there" >&2
  fi
done
printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: failed: ${failed[*]}" >&2
  exit 1
fi
rm -rf "$scratch"
echo "fuzz: no crash"
