// controller/ppo and controller/reinforce: the NASNet controller. A one-layer LSTM makes the
// decisions in order; each decision has its own softmax over exactly its valid choices (a shared
// softmax masked to them, per step), and the chosen option's embedding is the next step's input.
// Rewards minus an exponential-moving-average baseline are the advantages; every `update_every`
// results the policy takes one plain policy-gradient step (REINFORCE) or, as PPO does, several
// epochs of Adam steps over shuffled minibatches of them on the clipped objective.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <sstream>

#include <fmt/ranges.h>
#include <torch/torch.h>

#include "nas/controller.hpp"
#include "nas/options.hpp"
#include "nas/plugin.hpp"

namespace {

namespace nn = torch::nn;

// The parameters of both controllers.
struct PolicyOptions {
  std::int64_t hidden = 100;
  double init_range = 0.1;
  double lr = 0.00035;
  double entropy_weight = 1e-5;
  double baseline_decay = 0.95;
  std::int64_t update_every = 20;

  static auto fields() {
    using O = PolicyOptions;
    return std::tuple{
        nas::field("hidden", &O::hidden).range(1, 10000).help("LSTM hidden units (and embedding size)"),
        nas::field("init_range", &O::init_range).range(0, 10).help("weights start uniform in (-init_range, init_range)"),
        nas::field("lr", &O::lr).range(0, 10).help("Adam learning rate"),
        nas::field("entropy_weight", &O::entropy_weight).range(0, 10).help("weight of the entropy bonus"),
        nas::field("baseline_decay", &O::baseline_decay).range(0, 1).help("decay of the reward baseline (exponential "
                                                                          "moving average)"),
        nas::field("update_every", &O::update_every).range(1, 100000).help("results per policy update")};
  }
};

// PPO's own. With one epoch of one minibatch the ratio is 1 at the step (the policy that proposed
// is the one updated) and PPO takes REINFORCE's step; several epochs are what the clip is for.
struct PpoOptions {
  double clip = 0.2;
  std::int64_t epochs = 4;
  std::int64_t minibatches = 2;
  bool normalize_advantages = true;

  static auto fields() {
    using O = PpoOptions;
    return std::tuple{
        nas::field("clip", &O::clip).range(0, 10).help("PPO clip range: the probability ratio is kept in [1-clip, 1+clip]"),
        nas::field("epochs", &O::epochs).range(1, 1000).help("PPO passes over each batch of results"),
        nas::field("minibatches", &O::minibatches).range(1, 100000).help(
            "each pass shuffles the batch into this many minibatches, one Adam step each"),
        nas::field("normalize_advantages", &O::normalize_advantages).help(
            "divide each batch's advantages by their standard deviation (the baseline still centres them): the "
            "same step for rewards in [0, 1] or in percent, and against the entropy bonus")};
  }
};

// The paper's settings (appendix: lr 0.00035, entropy 1e-5, baseline decay 0.95, 20 per update) say
// nothing of epochs or minibatches; one of each is the plain reading, and REINFORCE's step.
const nas::Presets ppo_presets{{"nasnet_paper",
                                {{"epochs", std::int64_t{1}}, {"minibatches", std::int64_t{1}},
                                 {"normalize_advantages", false}}}};

struct Settings : PolicyOptions, PpoOptions {
  bool ppo = true;  // false: REINFORCE
};

// One head and one embedding table for every decision's options; decision i owns rows offsets[i] ..
// offsets[i] + choices[i], and each step's softmax is over its own rows only. Sampling runs the LSTM
// a step at a time (each choice is the next input); scoring known decisions for an update runs it
// over the whole sequence at once, a few large ops instead of hundreds of small ones.
class Policy : public nn::Module {
 public:
  Policy(const std::vector<nas::Decision>& decisions, std::int64_t hidden)
      : lstm_(register_module("lstm", nn::LSTM(nn::LSTMOptions(hidden, hidden)))),
        start_(register_parameter("start", torch::zeros({1, hidden}))) {
    std::int64_t rows = 0;
    std::vector<std::int64_t> offsets;
    for (const nas::Decision& d : decisions) {
      offsets.push_back(rows);
      choices_.push_back(d.choices);
      rows += d.choices;
    }
    offsets_ = torch::tensor(offsets, torch::kInt64);
    // Each decision's rows, padded to the widest decision (padding: row 0, masked out).
    const std::int64_t steps = static_cast<std::int64_t>(decisions.size());
    const std::int64_t widest = *std::max_element(choices_.begin(), choices_.end());
    rows_ = torch::zeros({steps, widest}, torch::kInt64);
    padding_ = torch::full({steps, 1, widest}, -INFINITY);
    for (std::int64_t i = 0; i < steps; ++i) {
      const std::int64_t n = choices_[static_cast<std::size_t>(i)];
      rows_[i].narrow(0, 0, n).copy_(torch::arange(offsets[static_cast<std::size_t>(i)], offsets[static_cast<std::size_t>(i)] + n));
      padding_[i][0].narrow(0, 0, n).zero_();
    }
    head_weight_ = register_parameter("head_weight", torch::zeros({rows, hidden}));
    head_bias_ = register_parameter("head_bias", torch::zeros({rows}));
    embedding_ = register_parameter("embedding", torch::zeros({rows, hidden}));
  }

  /// Samples decisions into `actions` (B x D, int64): column i is filled by pick(i, probabilities of
  /// decision i's options, B x choices_i), which also tells the log-probability of its picks.
  void sample(at::Tensor& actions, const std::function<void(std::size_t, const at::Tensor&)>& pick) {
    const std::int64_t batch = actions.size(0);
    at::Tensor x = start_.expand({batch, start_.size(1)});
    at::Tensor h = torch::zeros_like(x), c = torch::zeros_like(x);
    const auto offsets = offsets_.accessor<std::int64_t, 1>();
    const std::vector<at::Tensor> w = lstm_->all_weights();  // w_ih, w_hh, b_ih, b_hh of the one layer
    for (std::size_t i = 0; i < choices_.size(); ++i) {
      const auto step = static_cast<std::int64_t>(i);
      std::tie(h, c) = torch::lstm_cell(x, {h, c}, w[0], w[1], w[2], w[3]);
      // Only this decision's rows: the same as the masked softmax over all of them.
      pick(i, torch::softmax(torch::linear(h, head_weight_.narrow(0, offsets[step], choices_[i]),
                                           head_bias_.narrow(0, offsets[step], choices_[i])), 1));
      x = torch::embedding(embedding_, actions.select(1, step) + offsets[step]);
    }
  }

  struct Score {
    at::Tensor log_prob;  ///< (B): log-probability of each row's decisions
    at::Tensor entropy;   ///< (B): summed entropy of the decisions' softmaxes
  };

  /// The log-probability and entropy of given decisions (B x D, int64), differentiable.
  Score score(const at::Tensor& actions) {
    const std::int64_t batch = actions.size(0), steps = actions.size(1);
    at::Tensor rows = actions + offsets_;  // (B, D): rows of the head and embedding table
    at::Tensor inputs = torch::cat({start_.expand({1, batch, start_.size(1)}),
                                    torch::embedding(embedding_, rows.narrow(1, 0, steps - 1).t())});  // (D, B, H)
    at::Tensor outputs = std::get<0>(lstm_->forward(inputs));
    // Each step's logits over its own options only (D x B x widest): a batched product with the
    // decision's head rows, 1/25th of the work of all rows at every step for the NASNet space.
    const std::int64_t widest = rows_.size(1);
    at::Tensor weight = head_weight_.index_select(0, rows_.flatten()).view({steps, widest, -1});
    at::Tensor bias = head_bias_.index_select(0, rows_.flatten()).view({steps, 1, widest});
    at::Tensor log_p = torch::log_softmax(torch::bmm(outputs, weight.transpose(1, 2)) + bias + padding_, 2);
    at::Tensor log_prob = log_p.gather(2, actions.t().unsqueeze(2)).squeeze(2).sum(0);
    at::Tensor entropy = -(log_p.exp() * log_p.masked_fill(torch::isinf(log_p), 0)).sum(at::IntArrayRef{0, 2});
    return {log_prob, entropy};
  }

 private:
  nn::LSTM lstm_;
  at::Tensor start_, head_weight_, head_bias_, embedding_;
  at::Tensor offsets_;  // (D) first row of each decision
  at::Tensor rows_;     // (D, widest): each decision's rows, padded with row 0
  at::Tensor padding_;  // (D, 1, widest): 0 on each decision's own options, -inf on the padding
  std::vector<std::int64_t> choices_;
};

std::string exact(double v) { return fmt::format("{:a}", v); }
double parse_exact(const std::string& text) { return std::strtod(text.c_str(), nullptr); }

class PolicyGradientController final : public nas::Controller {
 public:
  PolicyGradientController(std::vector<nas::Decision> decisions, Settings settings, std::uint64_t seed)
      : decisions_(std::move(decisions)), s_(settings), rng_(nas::generator(seed, nas::stream("controller"), 0)), policy_(std::make_shared<Policy>(decisions_, s_.hidden)),
        optimizer_(std::make_unique<torch::optim::Adam>(policy_->parameters(), torch::optim::AdamOptions(s_.lr))) {
    for (const nas::Decision& d : decisions_)
      if (d.choices < 1) throw nas::Error(fmt::format("decision '{}' has {} choices; expected at least 1", d.name, d.choices));
    // uniform(-init_range, init_range) from the controller's own generator: the same for a seed
    // whatever else the process has drawn from torch's global generator.
    std::uniform_real_distribution<float> init(static_cast<float>(-s_.init_range), static_cast<float>(s_.init_range));
    torch::NoGradGuard no_grad;
    for (at::Tensor& p : policy_->parameters()) {
      at::Tensor values = torch::empty(p.sizes());
      float* data = values.data_ptr<float>();
      for (std::int64_t i = 0; i < values.numel(); ++i) data[i] = init(rng_);
      p.copy_(values);
    }
  }

  std::vector<nas::Proposal> propose(std::int64_t count) override {
    c10::InferenceMode inference;
    at::Tensor actions = torch::zeros({count, static_cast<std::int64_t>(decisions_.size())}, torch::kInt64);
    auto chosen = actions.accessor<std::int64_t, 2>();
    std::vector<double> log_prob(static_cast<std::size_t>(count), 0.0);
    policy_->sample(actions, [&](std::size_t i, const at::Tensor& probs) {
      at::Tensor p = probs.to(torch::kFloat64).contiguous();
      auto rows = p.accessor<double, 2>();
      std::uniform_real_distribution<double> uniform(0.0, 1.0);
      for (std::int64_t b = 0; b < count; ++b) {
        double u = uniform(rng_), sum = 0;
        std::int64_t pick = 0;  // the last option with a chance, where rounding leaves u above the sum
        for (std::int64_t c = 0; c < rows.size(1); ++c) {
          if (rows[b][c] > 0) pick = c;
          if ((sum += rows[b][c]) > u) break;
        }
        chosen[b][static_cast<std::int64_t>(i)] = pick;
        log_prob[static_cast<std::size_t>(b)] += std::log(rows[b][pick]);
      }
    });
    std::vector<nas::Proposal> out(static_cast<std::size_t>(count));
    for (std::int64_t b = 0; b < count; ++b) {
      for (std::int64_t i = 0; i < actions.size(1); ++i) out[b].decisions.push_back(chosen[b][i]);
      out[b].memo = exact(log_prob[static_cast<std::size_t>(b)]);  // the proposing policy's log-probability (PPO's ratio)
    }
    return out;
  }

  void observe(const std::vector<nas::Outcome>& outcomes) override {
    signals_.clear();
    for (const nas::Outcome& o : outcomes) {
      if (!o.reward) continue;  // a failed child teaches nothing about accuracy
      pending_.push_back({o.proposal.decisions, parse_exact(o.proposal.memo), *o.reward});
      if (static_cast<std::int64_t>(pending_.size()) == s_.update_every) update();
    }
  }

  std::string save_state() const override {
    torch::serialize::OutputArchive archive, policy, optimizer;
    policy_->save(policy);
    optimizer_->save(optimizer);
    archive.write("policy", policy);
    archive.write("optimizer", optimizer);
    std::ostringstream rng;
    rng << rng_;
    archive.write("rng", c10::IValue(rng.str()));
    archive.write("baseline", c10::IValue(baseline_ ? exact(*baseline_) : std::string()));
    std::string pending;
    for (const Result& r : pending_) {
      pending += exact(r.old_log_prob) + " " + exact(r.reward);
      for (std::int64_t d : r.decisions) pending += " " + std::to_string(d);
      pending += "\n";
    }
    archive.write("pending", c10::IValue(pending));
    std::ostringstream out;
    archive.save_to(out);
    return out.str();
  }

  // Restored into a fresh policy and optimizer and checked before it replaces anything: torch's
  // archives take tensors of any shape, and a damaged state's would make the kernels read out of bounds.
  void load_state(const std::string& state) override {
    auto policy = std::make_shared<Policy>(decisions_, s_.hidden);
    auto optimizer = std::make_unique<torch::optim::Adam>(policy->parameters(), torch::optim::AdamOptions(s_.lr));
    std::mt19937_64 rng;
    std::optional<double> baseline;
    std::vector<Result> pending;
    try {
      torch::serialize::InputArchive archive, policy_archive, optimizer_archive;
      std::istringstream in(state);
      archive.load_from(in);
      archive.read("policy", policy_archive);
      archive.read("optimizer", optimizer_archive);
      policy->load(policy_archive);
      optimizer->load(optimizer_archive);
      c10::IValue value;
      archive.read("rng", value);
      std::istringstream rng_text(value.toStringRef());
      if (!(rng_text >> rng)) throw nas::Error("its generator state does not parse");
      archive.read("baseline", value);
      if (!value.toStringRef().empty()) baseline = parse_exact(value.toStringRef());
      archive.read("pending", value);
      std::istringstream lines(value.toStringRef());
      for (std::string line; std::getline(lines, line);) {
        std::istringstream fields(line);
        std::string log_prob, reward;
        fields >> log_prob >> reward;
        Result r{{}, parse_exact(log_prob), parse_exact(reward)};
        for (std::int64_t d; fields >> d;) r.decisions.push_back(d);
        pending.push_back(std::move(r));
      }
    } catch (const std::exception& e) {  // c10::Error, and torch::jit::ErrorReport from a damaged archive
      throw nas::Error(fmt::format("controller: the saved state is not a policy-gradient state: {}",
                                   std::string(e.what()).substr(0, std::string(e.what()).find('\n'))));
    }
    if (std::string why = mismatch(*policy, *optimizer, baseline, pending); !why.empty())
      throw nas::Error(fmt::format("controller: the saved state does not fit this controller: {}", why));
    policy_ = std::move(policy);
    optimizer_ = std::move(optimizer);
    rng_ = rng;
    baseline_ = baseline;
    pending_ = std::move(pending);
  }

 private:
  struct Result {
    std::vector<std::int64_t> decisions;
    double old_log_prob = 0;
    double reward = 0;
  };

  // Why a restored state cannot be this controller's (its options and decisions), or empty.
  std::string mismatch(Policy& policy, torch::optim::Adam& optimizer, const std::optional<double>& baseline,
                       const std::vector<Result>& pending) const {
    const auto expected = policy_->named_parameters();
    for (const auto& p : policy.named_parameters()) {
      const at::Tensor& want = expected[p.key()];
      if (!p.value().defined() || p.value().sizes() != want.sizes() || p.value().dtype() != want.dtype())
        return fmt::format("parameter '{}' is not {} {} (another `hidden` or space?)", p.key(), want.dtype().name(),
                           fmt::join(want.sizes(), "x"));
    }
    for (const at::Tensor& p : policy.parameters()) {
      auto found = optimizer.state().find(p.unsafeGetTensorImpl());
      if (found == optimizer.state().end()) continue;  // no step taken yet
      const auto& adam = static_cast<const torch::optim::AdamParamState&>(*found->second);
      for (const at::Tensor& moment : {adam.exp_avg(), adam.exp_avg_sq()})
        if (!moment.defined() || moment.sizes() != p.sizes() || moment.dtype() != p.dtype())
          return "the optimizer's moments do not match the policy's parameters";
      if (adam.step() < 0) return "the optimizer's step count is negative";
    }
    if (baseline && !std::isfinite(*baseline)) return "the baseline is not a finite number";
    for (const Result& r : pending) {
      if (!std::isfinite(r.old_log_prob) || !std::isfinite(r.reward)) return "a pending result is not finite";
      if (r.decisions.size() != decisions_.size())
        return fmt::format("a pending result has {} decisions, expected {}", r.decisions.size(), decisions_.size());
      for (std::size_t i = 0; i < r.decisions.size(); ++i)
        if (r.decisions[i] < 0 || r.decisions[i] >= decisions_[i].choices)
          return fmt::format("a pending result's decision {} is {}, outside 0..{}", i, r.decisions[i], decisions_[i].choices - 1);
    }
    if (static_cast<std::int64_t>(pending.size()) >= s_.update_every)
      return fmt::format("{} results pending, more than update_every ({}) allows", pending.size(), s_.update_every);
    return {};
  }

  void update() {
    const auto n = static_cast<std::int64_t>(pending_.size());
    at::Tensor actions = torch::empty({n, static_cast<std::int64_t>(decisions_.size())}, torch::kInt64);
    at::Tensor old_log_prob = torch::empty({n}), advantage = torch::empty({n});
    double mean = 0;
    for (const Result& r : pending_) mean += r.reward / static_cast<double>(n);
    if (!baseline_) baseline_ = mean;  // the first batch: advantages around its mean
    auto a = actions.accessor<std::int64_t, 2>();
    auto old = old_log_prob.accessor<float, 1>();
    auto adv = advantage.accessor<float, 1>();
    for (std::int64_t b = 0; b < n; ++b) {
      const Result& r = pending_[static_cast<std::size_t>(b)];
      for (std::size_t i = 0; i < r.decisions.size(); ++i) a[b][static_cast<std::int64_t>(i)] = r.decisions[i];
      old[b] = static_cast<float>(r.old_log_prob);
      adv[b] = static_cast<float>(r.reward - *baseline_);
    }
    for (const Result& r : pending_) *baseline_ = s_.baseline_decay * *baseline_ + (1 - s_.baseline_decay) * r.reward;
    pending_.clear();
    signals_ = {{"batch_mean_reward", mean}, {"baseline", *baseline_}};

    // Scaled to unit spread; a batch of (nearly) equal rewards (a converged policy proposing repeats)
    // is left alone: dividing by ~0 would make its advantages huge and stall Adam for many steps.
    if (s_.ppo && s_.normalize_advantages && n > 1)
      if (const double spread = advantage.std().item<double>(); spread > 1e-6) advantage = advantage / spread;
    if (!s_.ppo) {
      const Policy::Score trace = policy_->score(actions);
      step(trace.log_prob * advantage, trace.entropy);
      return;
    }
    const std::int64_t minibatches = std::min(s_.minibatches, n);
    for (std::int64_t epoch = 0; epoch < s_.epochs; ++epoch) {
      // A permutation from the controller's generator: the same updates for a seed (and none drawn
      // for one minibatch, so that the paper's preset proposes exactly what REINFORCE would).
      std::vector<std::int64_t> order(static_cast<std::size_t>(n));
      std::iota(order.begin(), order.end(), 0);
      if (minibatches > 1) std::shuffle(order.begin(), order.end(), rng_);
      for (std::int64_t m = 0; m < minibatches; ++m) {
        const std::int64_t begin = m * n / minibatches, end = (m + 1) * n / minibatches;
        at::Tensor rows = torch::tensor(std::vector<std::int64_t>(order.begin() + begin, order.begin() + end));
        Policy::Score trace = policy_->score(actions.index_select(0, rows));
        at::Tensor ratio = torch::exp(trace.log_prob - old_log_prob.index_select(0, rows));
        at::Tensor a = advantage.index_select(0, rows);
        step(torch::min(ratio * a, torch::clamp(ratio, 1 - s_.clip, 1 + s_.clip) * a), trace.entropy);
      }
    }
  }

  // What the last observe() learned: set by an update, none without one.
  std::map<std::string, double> learning_signals() const override { return signals_; }

  // One Adam step up the mean objective plus the entropy bonus; the signals keep the last step's
  // loss and the policy's entropy (nats per architecture, summed over the decisions) on its batch.
  void step(const at::Tensor& objective, const at::Tensor& entropy) {
    at::Tensor loss = -(objective.mean() + s_.entropy_weight * entropy.mean());
    optimizer_->zero_grad();
    loss.backward();
    optimizer_->step();
    signals_["loss"] = loss.item<double>();
    signals_["entropy"] = entropy.mean().item<double>();
  }

  std::vector<nas::Decision> decisions_;
  Settings s_;
  std::mt19937_64 rng_;
  std::shared_ptr<Policy> policy_;
  std::unique_ptr<torch::optim::Adam> optimizer_;  // a pointer: load_state replaces it
  std::optional<double> baseline_;
  std::vector<Result> pending_;
  std::map<std::string, double> signals_;
};

void register_all(nas::Registrar& r) {
  r.add<nas::Controller>("ppo", "the NASNet controller: LSTM policy trained with PPO (preset nasnet_paper: the paper's "
                         "settings)",
                         nas::join({nas::schema_of<PolicyOptions>(), nas::schema_of<PpoOptions>()}),
                         [](const nas::Params& p, const nas::Context& context, const nas::ControllerArgs& args) {
                           Settings s;
                           static_cast<PolicyOptions&>(s) = nas::options_from<PolicyOptions>(p);
                           static_cast<PpoOptions&>(s) = nas::options_from<PpoOptions>(p);
                           return std::make_unique<PolicyGradientController>(args.decisions, s, context.seed);
                         },
                         {}, ppo_presets);
  r.add<nas::Controller>("reinforce", "the NASNet controller's LSTM policy trained with plain REINFORCE",
                         nas::schema_of<PolicyOptions>(),
                         [](const nas::Params& p, const nas::Context& context, const nas::ControllerArgs& args) {
                           Settings s;
                           static_cast<PolicyOptions&>(s) = nas::options_from<PolicyOptions>(p);
                           s.ppo = false;
                           return std::make_unique<PolicyGradientController>(args.decisions, s, context.seed);
                         });
}

}  // namespace

NAS_PLUGIN("policy-gradient", "0.1.0", register_all)
