// The tabular evaluator's CSV reader (a NAS-Bench-201 table made of the input), then a few lookups.
#include "fuzz.hpp"
#include "nas/evaluator.hpp"
#include "nas/space.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const std::shared_ptr<const nas::Space> space = nas::fuzz::plugins().create<nas::Space>(
      "nasbench201", nas::fuzz::params("space/nasbench201"), nas::fuzz::context(), {});
  const std::filesystem::path table = nas::fuzz::scratch() / "table.csv";
  nas::fuzz::write(table, data, size);
  try {
    auto evaluator = nas::fuzz::plugins().create<nas::Evaluator>(
        "tabular", nas::fuzz::params("evaluator/tabular", {{"table", table.string()}}), nas::fuzz::context(),
        {space, nullptr, {}});
    for (std::int64_t i = 0; i < 3; ++i) {
      std::vector<std::int64_t> decisions(space->decisions().size(), i);
      const std::string genotype = space->decode(decisions);
      (void)evaluator->evaluate(nas::Candidate{i, decisions, genotype, ""});
    }
  } catch (const nas::Error&) {
  }
  return 0;
}
