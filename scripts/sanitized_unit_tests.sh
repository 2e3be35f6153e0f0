#!/usr/bin/env bash
# The unit suites under AddressSanitizer and UBSan (the fuzz preset's build), less the suites that
# train networks for a long time (minutes under the sanitizers; the release build runs them) and the
# ones that read LibTorch's RecordFunction (the multiply-add counts, the zero-cost proxies: NASWOT's
# ReLU observer and evaluator/proxy's cost): an inline class whose layout clang and gcc (which built
# the wheel) disagree on (UBSan: "load of value 49, which is not a valid value for type 'bool'" in
# ATen/record_function.h), so what it reads is only right in gcc builds.
#   cmake --preset fuzz && cmake --build --preset fuzz && scripts/sanitized_unit_tests.sh
set -euo pipefail
cd "$(dirname "$0")/.."
# Leaks are not findings: the plugin registry and LibTorch's caches live as long as the process on purpose.
export ASAN_OPTIONS=detect_leaks=0:protect_shadow_gap=0:verify_asan_link_order=0 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export ASAN_SYMBOLIZER_PATH=/usr/lib/llvm-16/bin/llvm-symbolizer
exec build/fuzz/bin/nas_unit_tests --gtest_filter="${NAS_SANITIZED_FILTER:--TrainerTest.*:DataParallelTest.*:ControllerTest.Learners*:NasnetSpaceTest.NasnetAReproducesThePublishedCounts:NasnetSpaceTest.PresetsAreThePapersModels:ProxyTest.*:ProxyEvaluatorTest.*:Spaces/ProxyEvaluatorTest.*}" "$@"
