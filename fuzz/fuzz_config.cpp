// The config loader with overrides: the input is a YAML config, then (after a line "--") one
// KEY=VALUE override per line; loaded and resolved against the shipped plugins.
#include "fuzz.hpp"
#include "nas/config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string input = nas::fuzz::text(data, size);
  const std::size_t split = input.find("\n--\n");
  std::vector<std::string> overrides;
  if (split != std::string::npos) {
    std::string rest = input.substr(split + 4);
    for (std::size_t at = 0; at <= rest.size();) {
      const std::size_t end = std::min(rest.find('\n', at), rest.size());
      if (end > at) overrides.push_back(rest.substr(at, end - at));
      at = end + 1;
    }
  }
  const std::filesystem::path file = nas::fuzz::scratch() / "config.yaml";
  const std::string yaml = input.substr(0, split);
  nas::fuzz::write(file, reinterpret_cast<const std::uint8_t*>(yaml.data()), yaml.size());
  try {
    nas::resolve(nas::ConfigDocument::load(file, overrides), nas::fuzz::plugins());
  } catch (const nas::Error&) {
  }
  return 0;
}
