#!/usr/bin/env bash
# Installs everything nas needs on a Debian 12 machine: build tools and libraries from Debian, and the
# pinned torch wheel (LibTorch) into the machine's python3. Idempotent: when all is there it only checks.
# Run as root. The CUDA toolkit at /usr/local/cuda (which torch's CMake config checks) must be present.
set -euo pipefail
cd "$(dirname "$0")"

packages=(
  build-essential cmake ninja-build ccache git
  libboost-dev libboost-program-options-dev  # Boost.DLL (header-only) and Boost.Program_options
  libboost-math-dev                          # distributions for the ablation statistics (Mann-Whitney, Wilcoxon)
  libyaml-cpp-dev                            # the pipeline config
  nlohmann-json3-dev                         # JSON output: plugins list --json, run outputs
  libsqlite3-dev                             # the search's store (one SQLite file per run)
  libgloo-dev                                # headers c10d's ProcessGroupGloo.hpp needs (the wheel lacks them)
  libgoogle-perftools-dev                    # tcmalloc, every program's malloc (cmake/NasMalloc.cmake)
  zlib1g-dev                                 # gzipped IDX files (Fashion-MNIST)
  libturbojpeg0-dev libpng-dev               # JPEG and PNG decoding (dataset/image_folder)
  dataset-fashion-mnist                      # the embedded default data set: no download, ever
  libgtest-dev libgmock-dev                  # tests
  clang-16 libclang-rt-16-dev                # the fuzz preset: libFuzzer, ASan and UBSan (fuzz/README.md)
  graphviz                                   # cells drawn as SVG: nas-host inspect --dot, nas-host report
  libjs-chart.js                             # the report's charts (Chart.js, compiled into nas-host, inline in each page)
  gnuplot-nox                                # nas-host report --figures: every chart as SVG and PDF
  chromium                                   # tests: reports rendered in headless Chromium (tests/integration/test_report.cpp)
)

if [ "$(id -u)" -ne 0 ]; then
  echo "setup.sh: run as root (it installs Debian packages)" >&2
  exit 2
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
command -v python3 >/dev/null || missing+=(python3)
python3 -m pip --version >/dev/null 2>&1 || missing+=(python3-pip)
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup.sh: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

pin=$(grep -E '^torch==' requirements.txt)
want=${pin#torch==}
have=$(python3 -c 'import importlib.metadata as m; print(m.version("torch"))' 2>/dev/null || true)
if [ "${have%%+*}" != "$want" ]; then
  echo "setup.sh: installing torch $want (several GB, once) for $(command -v python3)"
  # Debian's own python3 refuses pip installs without this flag (PEP 668); it is the machine's Python on purpose.
  flag=$(python3 -m pip install --help | grep -q -- --break-system-packages && echo --break-system-packages || true)
  python3 -m pip install -q --no-cache-dir $flag -r requirements.txt
fi

if [ ! -x /usr/local/cuda/bin/nvcc ]; then
  echo "setup.sh: no CUDA toolkit at /usr/local/cuda; torch's CMake config needs it (see README)" >&2
  exit 1
fi
echo "setup.sh: ready (torch $(python3 -c 'import importlib.metadata as m; print(m.version("torch"))'))"
