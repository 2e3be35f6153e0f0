// The dataset readers on files made of the input: FUZZ_DATASET fashion_mnist (IDX: the labels file
// starts at the input's last labels magic, 00 00 08 01; before it, the images file), cifar10 (a batch
// file) or image_folder (one JPEG or PNG, by the first byte); every example read.
#include "fuzz.hpp"
#include "nas/dataset.hpp"

namespace {

std::filesystem::path make_files(const std::uint8_t* data, std::size_t size) {
  const std::filesystem::path root = nas::fuzz::scratch();
  const std::string dataset = FUZZ_DATASET;
  if (dataset == "fashion_mnist") {
    const std::string input = nas::fuzz::text(data, size);
    const std::size_t labels = std::min(input.rfind(std::string("\0\0\x08\x01", 4)), size);
    nas::fuzz::write(root / "t10k-images-idx3-ubyte", data, labels);
    nas::fuzz::write(root / "t10k-labels-idx1-ubyte", data + labels, size - labels);
  } else if (dataset == "cifar10") {
    nas::fuzz::write(root / "test_batch.bin", data, size);
  } else {
    const bool png = size > 0 && data[0] % 2;
    nas::fuzz::write(root / "val" / "only" / (png ? "image.png" : "image.jpg"), data + (size ? 1 : 0), size - (size ? 1 : 0));
  }
  return root;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::filesystem::path root = make_files(data, size);
  std::map<std::string, nas::Value, std::less<>> options{{"root", root.string()}};
  if (std::string(FUZZ_DATASET) == "image_folder") {
    options.emplace("size", std::int64_t{16});
    options.emplace("resize", std::int64_t{16});
  }
  try {
    auto dataset = nas::fuzz::plugins().create<nas::Dataset>(FUZZ_DATASET, nas::fuzz::params("dataset/" FUZZ_DATASET, options),
                                                             nas::fuzz::context(), {nas::Split::test});
    for (std::int64_t i = 0; i < std::min<std::int64_t>(dataset->size(), 256); ++i) {
      (void)dataset->get(i);
      (void)dataset->label(i);
    }
  } catch (const nas::Error&) {
  }
  return 0;
}
