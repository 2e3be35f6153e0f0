#!/usr/bin/env bash
# The SDK as a third-party plugin author uses it: install nas, build examples/out_of_tree_plugin
# against the installed package (find_package(nas), nas_add_plugin), and load it with the installed host.
set -euo pipefail
build_dir=$1 source_dir=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cmake --install "$build_dir" --prefix "$work/prefix" >/dev/null
torch_prefix=$(python3 -c 'import torch, sys; sys.stdout.write(torch.utils.cmake_prefix_path)' 2>/dev/null)
cmake -S "$source_dir/examples/out_of_tree_plugin" -B "$work/build" -G Ninja \
  -DCMAKE_PREFIX_PATH="$work/prefix;$torch_prefix" >"$work/configure.log" 2>&1 \
  || { cat "$work/configure.log"; echo "configuring the example against the installed SDK failed"; exit 1; }
cmake --build "$work/build" >/dev/null

listing=$(env -u NAS_PLUGIN_PATH "$work/prefix/bin/nas-host" plugins list --plugin-path "$work/build")
echo "$listing"
grep -q "^op/scaled_identity .* 1.0.0 .*libnas_op_example.so" <<<"$listing"
grep -q "^dataset/synthetic " <<<"$listing"  # the installed plugins, found next to the installed host
! grep -q "failed to load" <<<"$listing"

# The installed SDK is the sdk and engine layers: no host header, and a plugin including one fails to build.
for header in config.hpp loader.hpp pipeline.hpp stage.hpp store.hpp; do
  [[ ! -e "$work/prefix/include/nas/$header" ]] || { echo "the installed SDK ships host header nas/$header"; exit 1; }
done
cp -r "$source_dir/examples/out_of_tree_plugin" "$work/reaches_host"
printf '#include "nas/store.hpp"\n' >>"$work/reaches_host/scaled_identity.cpp"
cmake -S "$work/reaches_host" -B "$work/reaches_host/build" -G Ninja -DCMAKE_PREFIX_PATH="$work/prefix;$torch_prefix" >/dev/null 2>&1
if cmake --build "$work/reaches_host/build" >"$work/reaches_host.log" 2>&1; then
  echo "a plugin including nas/store.hpp built against the installed SDK"; exit 1
fi
grep -q "nas/store.hpp: No such file" "$work/reaches_host.log"
echo "out-of-tree plugin: ok"
