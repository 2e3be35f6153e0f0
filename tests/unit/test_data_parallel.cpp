// Data-parallel training with Gloo on loopback, the ranks being threads of this process: two or three
// ranks on shares of every batch end with the weights (and batch-norm statistics) of one rank on whole
// batches, and a data-parallel run killed mid-way resumes from rank 0's checkpoint to the weights of
// one that was not.
#include <numeric>
#include <thread>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "cluster.hpp"
#include "data_parallel.hpp"
#include "nas/data.hpp"
#include "nas/layers.hpp"
#include "nas/log.hpp"
#include "nas/trainer.hpp"
#include "support.hpp"

namespace fs = std::filesystem;

namespace {

// A convolution, batch norm (nas::BatchNorm2d: global-batch statistics when data-parallel), a head.
class TinyNet final : public nas::Network {
 public:
  TinyNet() {
    conv_ = register_module("conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(3, 8, 3).padding(1)));
    bn_ = register_module("bn", nas::BatchNorm2d(torch::nn::BatchNorm2dOptions(8)));
    head_ = register_module("head", torch::nn::Linear(8, 10));
  }
  nas::NetworkOutput forward(const at::Tensor& images) override {
    return {head_(torch::relu(bn_(conv_(images))).mean(at::IntArrayRef{2, 3})), {}};
  }
  std::vector<std::pair<std::string, std::vector<std::int64_t>>> stage_shapes(const at::Tensor&) override { return {}; }

 private:
  torch::nn::Conv2d conv_{nullptr};
  nas::BatchNorm2d bn_{nullptr};
  torch::nn::Linear head_{nullptr};
};

class DataParallelTest : public ::testing::Test {
 protected:
  static constexpr std::int64_t kExamples = 96;

  void SetUp() override {
    data_ = nas::test::dataset(context_, "synthetic",
                               {{"size", kExamples}, {"height", std::int64_t{8}}, {"width", std::int64_t{8}}});
  }

  static std::shared_ptr<TinyNet> network(std::uint64_t seed) {
    torch::manual_seed(seed);
    return std::make_shared<TinyNet>();
  }

  nas::TrainOptions options(std::int64_t epochs) const {
    nas::TrainOptions o;
    o.epochs = epochs;
    o.lr = 0.1;
    o.weight_decay = 1e-3;
    o.grad_clip = 1.0;  // on the averaged gradients: the same on every rank
    o.channels_last = true;
    return o;
  }

  nas::Loader loader(std::int64_t batch, std::int64_t shard, std::int64_t shards) const {
    nas::LoaderOptions o;
    o.batch_size = batch;
    o.train = true;
    o.augmentation = {1, true};
    o.shard = shard;
    o.shards = shards;
    std::vector<std::int64_t> all(kExamples);
    std::iota(all.begin(), all.end(), 0);
    return nas::Loader(*data_, all, o, 4);
  }

  // `ranks` threads train one replica each (initialized from `seed`) on their shares of global batches
  // of `batch`; returns the replicas, or throws what a rank threw.
  std::vector<std::shared_ptr<TinyNet>> train(std::int64_t ranks, std::int64_t batch, std::int64_t epochs,
                                              std::uint64_t seed, const fs::path& checkpoint,
                                              std::int64_t kill_at = -1) {
    const nas::World first{0, ranks, 0, "127.0.0.1", 0, false, "test"};
    auto server = std::make_unique<nas::Cluster>(first, std::chrono::seconds(30));
    // Built here, one after another: torch's generator is global, and ranks drawing from it at once
    // would initialize rank 0's replica differently from run to run.
    std::vector<std::shared_ptr<TinyNet>> replicas;
    for (std::int64_t rank = 0; rank < ranks; ++rank) replicas.push_back(network(seed));
    std::vector<std::exception_ptr> failures(static_cast<std::size_t>(ranks));
    std::vector<std::thread> threads;
    for (std::int64_t rank = 0; rank < ranks; ++rank)
      threads.emplace_back([&, rank] {
        try {
          std::unique_ptr<nas::Cluster> client;
          if (rank > 0)
            client = std::make_unique<nas::Cluster>(
                nas::World{rank, ranks, rank, "127.0.0.1", server->port(), false, "test"}, std::chrono::seconds(30));
          const nas::Cluster& cluster = rank > 0 ? *client : *server;
          const nas::ClusterProcessGroup group(cluster);
          nas::Context context{.log = log_, .seed = 3};
          TinyNet* net = replicas[static_cast<std::size_t>(rank)].get();
          nas::test::KillAt kill(kill_at);
          nas::Trainer trainer(*net, options(epochs), {&kill}, context, checkpoint, &group);
          trainer.fit(loader(batch, rank, ranks));
        } catch (...) {
          failures[static_cast<std::size_t>(rank)] = std::current_exception();
        }
      });
    for (std::thread& t : threads) t.join();
    for (const std::exception_ptr& failure : failures)
      if (failure) std::rethrow_exception(failure);
    return replicas;
  }

  // Over the parameters and the floating-point buffers (batch norm's running statistics).
  static double max_difference(nas::Network& a, nas::Network& b) {
    double worst = 0;
    auto pa = a.parameters(), pb = b.parameters();
    for (std::size_t i = 0; i < pa.size(); ++i) worst = std::max(worst, (pa[i] - pb[i]).abs().max().item<double>());
    auto ba = a.buffers(), bb = b.buffers();
    for (std::size_t i = 0; i < ba.size(); ++i)
      if (ba[i].is_floating_point()) worst = std::max(worst, (ba[i] - bb[i]).abs().max().item<double>());
    return worst;
  }

  nas::Logger log_{nas::Logger::Level::error};
  nas::Context context_{.log = log_, .seed = 3, .registry = &nas::test::plugins()};
  std::unique_ptr<nas::Dataset> data_;
  nas::test::ScratchDir scratch_;
  const fs::path& dir_ = scratch_.path();
};

TEST_F(DataParallelTest, TwoRanksOnHalvesEqualOneRankOnWholeBatches) {
  auto whole = train(1, 16, 2, 5, {});
  auto halves = train(2, 16, 2, 5, {});
  auto other_init = network(6);
  EXPECT_LT(max_difference(*halves[0], *whole[0]), 1e-5);
  EXPECT_LT(max_difference(*halves[1], *whole[0]), 1e-5);
  EXPECT_EQ(max_difference(*halves[0], *halves[1]), 0.0);  // the replicas stay identical
  EXPECT_GT(max_difference(*halves[0], *other_init), 1e-2);  // and they did train
}

// 16 = 5 + 5 + 6: the gradient of a rank's share is weighted by its size.
TEST_F(DataParallelTest, ThreeRanksOnUnequalSharesEqualOneRankOnWholeBatches) {
  auto whole = train(1, 16, 2, 5, {});
  auto thirds = train(3, 16, 2, 5, {});
  for (const auto& replica : thirds) EXPECT_LT(max_difference(*replica, *whole[0]), 1e-5);
}

TEST_F(DataParallelTest, AKilledRunResumesFromRankZerosCheckpoint) {
  auto uninterrupted = train(2, 16, 3, 5, dir_ / "whole.pt");
  // 6 steps per epoch: killed in the second, after the first epoch's checkpoint.
  EXPECT_THROW(train(2, 16, 3, 5, dir_ / "killed.pt", 8), std::runtime_error);
  ASSERT_TRUE(fs::exists(dir_ / "killed.pt"));
  auto resumed = train(2, 16, 3, 99, dir_ / "killed.pt");  // fresh replicas: other initial weights
  EXPECT_LT(max_difference(*resumed[0], *uninterrupted[0]), 1e-6);
  EXPECT_LT(max_difference(*resumed[1], *uninterrupted[0]), 1e-6);
}

}  // namespace
