#!/usr/bin/env bash
# Runs every libFuzzer target of the fuzz preset for SECONDS each (default 30) from its seed corpus
# (tests/configs, tests/genotypes, configs/, fuzz/corpus/, and a controller state saved by the target
# itself); prints the executions of each and exits 1 on a finding, whose input is kept in
# build/fuzz/findings/ (make it a regression test: fuzz/README.md).
#   cmake --preset fuzz && cmake --build --preset fuzz && scripts/fuzz.sh [SECONDS] [TARGET ...]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-30}
shift || true
declare -A seeds=(
  [fuzz_config]="tests/configs tests/configs/bad configs"
  [fuzz_genotype_nasnet]="tests/genotypes tests/genotypes/bad configs/genotypes"
  [fuzz_genotype_darts]="fuzz/corpus/darts"
  [fuzz_genotype_nasbench201]="fuzz/corpus/nasbench201"
  [fuzz_tabular]="fuzz/corpus/tabular"
  [fuzz_idx]="fuzz/corpus/idx"
  [fuzz_cifar]="fuzz/corpus/cifar"
  [fuzz_image]="fuzz/corpus/image"
  [fuzz_state_evolution]=""
  [fuzz_state_random]=""
  [fuzz_state_ppo]=""
)
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(fuzz_config fuzz_genotype_nasnet fuzz_genotype_darts fuzz_genotype_nasbench201
                                     fuzz_tabular fuzz_idx fuzz_cifar fuzz_image fuzz_state_evolution fuzz_state_random
                                     fuzz_state_ppo)
findings=build/fuzz/findings
mkdir -p "$findings"
# Leaks are not findings here: the plugin registry lives as long as the process on purpose.
export ASAN_OPTIONS=detect_leaks=0:protect_shadow_gap=0:verify_asan_link_order=0 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export ASAN_SYMBOLIZER_PATH=/usr/lib/llvm-16/bin/llvm-symbolizer
status=0
found=()
printf '%-28s %12s %10s  %s\n' target executions "exec/s" result
for target in "${targets[@]}"; do
  work=$(mktemp -d)  # the corpus grows here; the seed folders stay as they are
  mkdir "$work/corpus" "$work/seeds"
  log="$work/log"
  rm -f "$findings/$target.log"
  # shellcheck disable=SC2086  # the seed folders are a list
  if NAS_FUZZ_SEEDS="$work/seeds" "build/fuzz/bin/$target" "$work/corpus" "$work/seeds" ${seeds[$target]} \
       -max_total_time="$seconds" -timeout=20 -rss_limit_mb=6144 -artifact_prefix="$findings/$target-" \
       -print_final_stats=1 >"$log" 2>&1; then
    result=ok
  else
    result="FINDING: $(grep -m1 -E 'ERROR|SUMMARY|deadly|timeout' "$log" || tail -n 1 "$log")"
    cp "$log" "$findings/$target.log"
    found+=("$target")
    status=1
  fi
  runs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
  printf '%-28s %12s %10s  %s\n' "$target" "$runs" "$((runs / seconds))" "$result"
  rm -rf "$work"
done
# Each finding's report and stack: a CI log is all one sees of a finding on another machine.
for target in "${found[@]}"; do
  echo "--- $target ($findings/$target.log)"
  sed -n '/ERROR: \|runtime error\|deadly signal\|ALARM/,$p' "$findings/$target.log" | head -n 60
done
exit $status
