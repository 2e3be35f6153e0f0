// The training engine: SGD with a warmup + cosine schedule, checkpoints that resume exactly.
#include "nas/trainer.hpp"

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <optional>

#include <ATen/autocast_mode.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>
#include <caffe2/serialize/inline_container.h>
#include <torch/csrc/jit/serialization/pickler.h>
#include <torch/torch.h>

#include "nas/error.hpp"
#include "nas/log.hpp"
#include "nas/reducer.hpp"

namespace fs = std::filesystem;

namespace nas {
namespace {

// bf16 autocast on `device` for a scope (the forward pass) when `enabled`, restoring the previous
// state on exit, exceptions included; nothing at all when not. Weights, gradients and the optimizer
// stay fp32.
class Bf16Autocast {
 public:
  Bf16Autocast(c10::DeviceType device, bool enabled)
      : device_(device), enabled_(enabled), was_enabled_(at::autocast::is_autocast_enabled(device)),
        was_dtype_(at::autocast::get_autocast_dtype(device)) {
    if (!enabled_) return;
    at::autocast::set_autocast_enabled(device_, true);
    at::autocast::set_autocast_dtype(device_, at::kBFloat16);
  }
  ~Bf16Autocast() {
    if (!enabled_) return;
    at::autocast::set_autocast_enabled(device_, was_enabled_);
    at::autocast::set_autocast_dtype(device_, was_dtype_);
    if (!was_enabled_) at::autocast::clear_cache();  // leaving the outermost autocast, as Python does
  }
  Bf16Autocast(const Bf16Autocast&) = delete;
  Bf16Autocast& operator=(const Bf16Autocast&) = delete;

 private:
  c10::DeviceType device_;
  bool enabled_, was_enabled_;
  at::ScalarType was_dtype_;
};

// `t` laid out in memory as `like` is, a copy when it is not. Strides of dimensions of size 1 do not
// count (autograd keeps a gradient whose strides differ from its parameter's only there).
at::Tensor laid_out_as(const at::Tensor& t, const at::Tensor& like) {
  for (std::int64_t d = 0; d < like.dim(); ++d)
    if (like.size(d) > 1 && t.stride(d) != like.stride(d)) return at::empty_like(like).copy_(t);
  return t;
}

// A dense tensor as the flat run of its elements in memory order; others as they are. ATen's CPU
// fused SGD kernel walks a parameter, its gradient and its buffer as flat arrays, and first makes a
// contiguous copy (unused) of every gradient that is not contiguous, channels_last ones included.
at::Tensor flat(const at::Tensor& t) {
  return t.is_non_overlapping_and_dense() ? t.as_strided({t.numel()}, {1}, t.storage_offset()) : t;
}

// torch::optim::SGD's step after clipping the gradients' global norm to `max_norm` (no clipping when
// 0), in ATen's fused kernel: one pass over each parameter, its gradient and its momentum buffer,
// where torch::optim::SGD runs four ops per parameter and clip_grad_norm_ two more (and a pass of its
// own for the norm, as here). The update is torch::optim::SGD's (weight decay, momentum, dampening,
// Nesterov) and its momentum buffers stay in the optimizer's state: checkpoints are unchanged.
void clip_and_step(torch::optim::SGD& optimizer, double max_norm) {
  std::optional<at::Tensor> grad_scale;  // the gradients are divided by it
  if (max_norm > 0) {
    std::vector<at::Tensor> grads;
    for (const auto& group : optimizer.param_groups())
      for (const at::Tensor& p : group.params())
        if (p.grad().defined()) grads.push_back(p.grad());
    if (grads.empty()) return;
    // torch's clip_grad_norm_: grads times max_norm / (norm + 1e-6) where that is below 1.
    const at::Tensor norm = at::linalg_vector_norm(at::stack(at::_foreach_norm(grads, 2)), 2);
    grad_scale = ((norm + 1e-6) / max_norm).clamp_min(1.0).to(at::kFloat);
  }
  for (auto& group : optimizer.param_groups()) {
    const auto& o = static_cast<const torch::optim::SGDOptions&>(group.options());
    const bool momentum = o.momentum() != 0;
    // Parameters whose momentum buffer exists, and those on their first step (the buffer is the
    // gradient); each with its gradient and buffer laid out as it is, all three flat.
    std::vector<at::Tensor> params[2], grads[2], buffers[2];
    for (at::Tensor& p : group.params()) {
      if (!p.grad().defined()) continue;
      p.mutable_grad() = laid_out_as(p.grad(), p);
      bool first = false;
      if (momentum) {
        auto& state = optimizer.state()[p.unsafeGetTensorImpl()];
        first = !state;
        if (first) {
          state = std::make_unique<torch::optim::SGDParamState>();
          static_cast<torch::optim::SGDParamState&>(*state).momentum_buffer(at::empty_like(p));
        }
        auto& buffer = static_cast<torch::optim::SGDParamState&>(*state);
        buffer.momentum_buffer(laid_out_as(buffer.momentum_buffer(), p));  // a resumed one may not be
        buffers[first].push_back(flat(buffer.momentum_buffer()));
      }
      params[first].push_back(flat(p));
      grads[first].push_back(flat(p.grad()));
    }
    at::NoGradGuard no_grad;
    for (const bool first : {false, true})
      if (!params[first].empty())
        at::_fused_sgd_(params[first], grads[first], buffers[first], o.weight_decay(), o.momentum(), o.lr(),
                        o.dampening(), o.nesterov(), /*maximize=*/false, first, grad_scale);
  }
}

double learning_rate(const TrainOptions& o, std::int64_t step, std::int64_t steps_per_epoch) {
  const double total = static_cast<double>(o.epochs * steps_per_epoch);
  const double warmup = o.warmup_epochs * static_cast<double>(steps_per_epoch);
  const double s = static_cast<double>(step);
  if (s < warmup) return o.lr * (s + 1) / warmup;
  const double t = total > warmup ? (s - warmup) / (total - warmup) : 1.0;
  return o.min_lr + 0.5 * (o.lr - o.min_lr) * (1.0 + std::cos(M_PI * std::min(1.0, t)));
}

// Correct top-1 and top-k predictions in a batch.
std::pair<std::int64_t, std::int64_t> hits(const at::Tensor& logits, const at::Tensor& labels) {
  std::int64_t k = std::min<std::int64_t>(5, logits.size(1));
  at::Tensor top = std::get<1>(logits.topk(k, 1));
  at::Tensor match = top.eq(labels.unsqueeze(1));
  return {match.select(1, 0).sum().item<std::int64_t>(), match.any(1).sum().item<std::int64_t>()};
}

std::string duration(double seconds) {
  auto s = static_cast<std::int64_t>(seconds);
  return s >= 3600 ? fmt::format("{}h{:02}m", s / 3600, s / 60 % 60) : fmt::format("{}m{:02}s", s / 60, s % 60);
}

// Data-parallel: a loss sum and hit counts, each summed over the ranks.
void sum_over_ranks(Reducer& parallel, double& loss_sum, std::int64_t& top1, std::int64_t& top5,
                    std::int64_t& examples) {
  const std::vector<double> total = parallel.sum(
      {loss_sum, static_cast<double>(top1), static_cast<double>(top5), static_cast<double>(examples)});
  loss_sum = total[0];
  top1 = static_cast<std::int64_t>(total[1]);
  top5 = static_cast<std::int64_t>(total[2]);
  examples = static_cast<std::int64_t>(total[3]);
}

// Module::load copies a checkpoint's tensors over the network's whatever their shapes: check every
// parameter and buffer first (Module::save nests an archive per submodule), so that a checkpoint of
// another network fails instead of loading into it half-way.
void require_same_tensors(torch::serialize::InputArchive& archive, const torch::nn::Module& module,
                          const std::string& prefix = "") {
  auto fail = [](std::string what) {
    throw c10::Error({__func__, __FILE__, static_cast<std::uint32_t>(__LINE__)}, std::move(what));
  };
  auto check = [&](const std::string& name, const at::Tensor& ours, bool buffer) {
    at::Tensor saved;
    if (!archive.try_read(name, saved, buffer)) fail(fmt::format("it has no '{}{}'", prefix, name));
    if (saved.sizes() != ours.sizes())
      fail(fmt::format("'{}{}' is [{}] there, [{}] here", prefix, name, fmt::join(saved.sizes(), ", "),
                       fmt::join(ours.sizes(), ", ")));
  };
  for (const auto& p : module.named_parameters(/*recurse=*/false)) check(p.key(), p.value(), false);
  for (const auto& b : module.named_buffers(/*recurse=*/false)) check(b.key(), b.value(), true);
  for (const auto& child : module.named_children()) {
    torch::serialize::InputArchive nested;
    if (!archive.try_read(child.key(), nested)) fail(fmt::format("it has no module '{}{}'", prefix, child.key()));
    require_same_tensors(nested, *child.value(), prefix + child.key() + ".");
  }
}

class MetricsFile {
 public:
  /// A training resumed from its checkpoint continues the file; one that starts over replaces it.
  MetricsFile(const fs::path& run_dir, bool resumed) {
    if (run_dir.empty()) return;
    file_ = run_dir / "metrics.jsonl";
    out_.open(file_, resumed ? std::ios::app : std::ios::trunc);
    if (!out_) throw Error(fmt::format("cannot write '{}': {}", file_.string(), std::strerror(errno)));
  }
  void write(const nlohmann::ordered_json& line) {
    if (!out_.is_open()) return;
    out_ << line.dump() << "\n" << std::flush;
    if (!out_) throw Error(fmt::format("cannot write '{}': {}", file_.string(), std::strerror(errno)));
  }

 private:
  fs::path file_;
  std::ofstream out_;
};

// A batch's images as the network takes them: on the device (from pinned batches, see
// LoaderOptions::pin_memory, one direct transfer that the caller does not wait for) and in the
// trainer's memory format.
at::Tensor network_input(const at::Tensor& images, const Context& context, const TrainOptions& options) {
  at::Tensor input = images.to(context.device, /*non_blocking=*/true);
  return options.channels_last ? input.contiguous(at::MemoryFormat::ChannelsLast) : input;
}

}  // namespace

Trainer::Trainer(Network& network, TrainOptions options, std::vector<Regularizer*> regularizers, const Context& context,
                 fs::path checkpoint, const ProcessGroup* data_parallel)
    : network_(network), options_(options), regularizers_(std::move(regularizers)), context_(context),
      checkpoint_(std::move(checkpoint)) {
  network_.to(context_.device);
  // Explicit channels_last strides, as Python's module.to(memory_format=...) gives them: the default
  // strides of a 1x1 (or depthwise) kernel pass for channels_last too, so contiguous(ChannelsLast)
  // would leave them as they are; a convolution whose input is a strided view (the factorized
  // reduction's grid of every second pixel) then sees neither operand as channels_last, computes in
  // NCHW, and so does every layer after it (NASNet-A Large: half the network, 1.9x slower).
  if (options_.channels_last)
    for (at::Tensor& p : network_.parameters())
      if (p.dim() == 4) p.set_data(at::empty_like(p.data(), at::MemoryFormat::ChannelsLast).copy_(p.data()));
  if (data_parallel && data_parallel->size() > 1) {
    reducer_ = data_parallel->reducer(network_, context_.device);
    rank_ = data_parallel->rank();
    ranks_ = data_parallel->size();
  }
}

Trainer::~Trainer() = default;

TrainResult Trainer::fit(const Loader& train, const Loader* validation, std::int64_t until_epoch) {
  torch::optim::SGD optimizer(network_.parameters(), torch::optim::SGDOptions(options_.lr)
                                                         .momentum(options_.momentum)
                                                         .nesterov(options_.nesterov)
                                                         .weight_decay(options_.weight_decay));
  const std::int64_t steps_per_epoch = train.batches_per_epoch();
  const std::int64_t total_steps = options_.epochs * steps_per_epoch;
  std::int64_t epoch = 0, step = 0;

  const bool resumed = !checkpoint_.empty() && fs::exists(checkpoint_);
  if (resumed) {
    try {
      torch::serialize::InputArchive archive;
      archive.load_from(checkpoint_.string());
      torch::serialize::InputArchive model, optim;
      archive.read("model", model);
      archive.read("optimizer", optim);
      require_same_tensors(model, network_);
      network_.load(model);
      optimizer.load(optim);
      c10::IValue value;
      archive.read("epoch", value);
      epoch = value.toInt();
      archive.read("step", value);
      step = value.toInt();
      at::Tensor rng;
      archive.read("rng", rng);
      at::Generator cpu = at::detail::getDefaultCPUGenerator();  // a handle to the global one
      cpu.set_state(rng);
      if (context_.device.is_cuda() && archive.try_read("rng_cuda", rng)) {
        at::Generator gpu = at::globalContext().defaultGenerator(context_.device);
        gpu.set_state(rng);
      }
    } catch (const c10::Error& e) {
      throw Error(fmt::format("cannot resume from checkpoint '{}': it does not match this network and trainer "
                              "(written for another architecture, size or version?): {}; delete it to start over",
                              checkpoint_.string(), e.what_without_backtrace()));
    }
    context_.log.info("resumed from {} at epoch {}, step {}", checkpoint_.string(), epoch, step);
  }

  const bool writer = rank_ == 0;  // of checkpoints and metrics
  const std::int64_t ranks = ranks_;
  MetricsFile metrics(writer ? context_.run_dir : fs::path(), resumed);
  TrainResult result;
  const auto start = std::chrono::steady_clock::now();
  std::int64_t images = 0;
  // Stopping early keeps the schedule of all the epochs: a later fit() from the checkpoint continues
  // exactly as one uninterrupted run would have.
  const std::int64_t last = until_epoch > 0 ? std::min(until_epoch, options_.epochs) : options_.epochs;
  if (epoch >= last && validation) {  // nothing left to train
    // As after that epoch (the same batches): a checkpoint may come from a fit() that did not validate.
    if (epoch > 0) recalibrate_batch_norm(train, epoch - 1);
    result.validation = evaluate(*validation);
  }
  for (; epoch < last && !result.diverged; ++epoch) {
    network_.train();
    Metrics running;
    double loss_sum = 0;
    std::int64_t top1 = 0, top5 = 0;
    train.for_each(epoch, 0, [&](std::int64_t index, Batch& batch) {
      const double lr = learning_rate(options_, step, steps_per_epoch);
      for (auto& group : optimizer.param_groups()) static_cast<torch::optim::SGDOptions&>(group.options()).lr(lr);
      for (Regularizer* r : regularizers_) {
        r->on_batch(batch.images, {step, total_steps});
        r->on_step(network_, {step, total_steps});
      }
      const at::Tensor images_in = network_input(batch.images, context_, options_);  // waited for at the loss, below
      at::Tensor labels = batch.labels.to(context_.device, /*non_blocking=*/true);

      optimizer.zero_grad();
      NetworkOutput out;
      {
        Bf16Autocast autocast(context_.device.type(), options_.bf16);
        std::optional<GlobalBatchNorm> global_statistics;
        if (reducer_) global_statistics.emplace(*reducer_);
        out = network_.forward(images_in);
      }
      auto ce = torch::nn::functional::CrossEntropyFuncOptions().label_smoothing(options_.label_smoothing);
      at::Tensor loss = torch::nn::functional::cross_entropy(out.logits.to(at::kFloat), labels, ce);
      if (out.aux_logits.defined() && options_.aux_weight > 0)
        loss = loss + options_.aux_weight * torch::nn::functional::cross_entropy(out.aux_logits.to(at::kFloat), labels, ce);
      const std::int64_t n = labels.size(0);
      const double local_loss = loss.item<double>();
      // The global batch's mean loss: every rank logs it and stops alike when it diverges.
      const double loss_value =
          reducer_ ? reducer_->sum({local_loss * static_cast<double>(n)})[0] / static_cast<double>(train.batch_size())
                    : local_loss;
      if (!std::isfinite(loss_value)) {
        result.diverged = true;
        result.diverged_step = step;
        context_.log.warn("diverged at step {} (loss {})", step, loss_value);
        metrics.write({{"event", "diverged"}, {"step", step}, {"epoch", epoch}});
        return false;
      }
      // The ranks' gradients are averaged: weighted by each rank's share of the global batch (shares
      // differ by one example when the batch does not divide), the average is the whole batch's gradient.
      if (reducer_) loss = loss * (static_cast<double>(n * ranks) / static_cast<double>(train.batch_size()));
      loss.backward();
      if (reducer_) reducer_->finalize();
      clip_and_step(optimizer, options_.grad_clip);

      auto [h1, h5] = hits(out.logits.detach(), labels);
      loss_sum += local_loss * static_cast<double>(n);
      top1 += h1;
      top5 += h5;
      running.examples += n;
      images += train.batch_size();
      ++step;
      if (step % options_.log_every == 0 || index + 1 == steps_per_epoch) {
        const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        const double rate = static_cast<double>(images) / elapsed;
        const double eta = static_cast<double>((total_steps - step) * train.batch_size()) / rate;
        context_.log.progress(fmt::format("epoch {}/{} step {}/{} loss {:.4f} lr {:.5f} {:.0f} img/s ETA {}", epoch + 1,
                                          options_.epochs, index + 1, steps_per_epoch, loss_value, lr, rate, duration(eta)));
        metrics.write({{"epoch", epoch}, {"step", step}, {"loss", loss_value}, {"lr", lr}, {"images_per_s", rate}});
      }
      return true;
    });
    if (result.diverged) break;
    if (validation || epoch + 1 == options_.epochs) recalibrate_batch_norm(train, epoch);
    if (reducer_) {
      sum_over_ranks(*reducer_, loss_sum, top1, top5, running.examples);
      reducer_->average_buffers();  // one set of statistics to evaluate and save (torch BatchNorm2d: per rank)
    }
    running.loss = loss_sum / static_cast<double>(running.examples);
    running.top1 = static_cast<double>(top1) / static_cast<double>(running.examples);
    running.top5 = static_cast<double>(top5) / static_cast<double>(running.examples);
    result.train = running;
    nlohmann::ordered_json line{{"epoch", epoch}, {"step", step}, {"train_loss", running.loss}, {"train_top1", running.top1}};
    if (validation) {
      result.validation = evaluate(*validation);
      line["val_loss"] = result.validation.loss;
      line["val_top1"] = result.validation.top1;
      line["val_top5"] = result.validation.top5;
      context_.log.info("epoch {}/{}: train loss {:.4f} top-1 {:.2f}%, validation top-1 {:.2f}%", epoch + 1,
                        options_.epochs, running.loss, 100 * running.top1, 100 * result.validation.top1);
    } else {
      context_.log.info("epoch {}/{}: train loss {:.4f} top-1 {:.2f}%", epoch + 1, options_.epochs, running.loss,
                        100 * running.top1);
    }
    metrics.write(line);
    if (!checkpoint_.empty() && writer) {
      torch::serialize::OutputArchive archive, model, optim;
      network_.save(model);
      optimizer.save(optim);
      archive.write("model", model);
      archive.write("optimizer", optim);
      archive.write("epoch", c10::IValue(epoch + 1));
      archive.write("step", c10::IValue(step));
      // Every generator the training draws from (weights' init is done; drop path, dropout and cutout
      // draw from these or from seeds of their own).
      archive.write("rng", at::detail::getDefaultCPUGenerator().get_state());
      if (context_.device.is_cuda())
        archive.write("rng_cuda", at::globalContext().defaultGenerator(context_.device).get_state());
      // Write then rename: a kill while saving leaves the previous checkpoint intact.
      fs::path partial = checkpoint_.string() + ".partial";
      archive.save_to(partial.string());
      fs::rename(partial, checkpoint_);
    }
  }
  result.steps = step;
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  result.images_per_second = result.seconds > 0 ? static_cast<double>(images) / result.seconds : 0.0;
  return result;
}

// PreciseBN (Wu & Johnson, "Rethinking 'Batch' in BatchNorm", 2021). Evaluation normalizes with
// running averages (momentum 0.1: mostly the last ten steps), which lag weights that still move fast:
// after one epoch at a high learning rate a child's validation accuracy can be anywhere between
// chance and what its weights can do, and children compared that early (a scheduler's first rung)
// rank by luck. Re-estimated as a plain average over training batches at the current weights, the
// statistics are those of the weights evaluated. Only the BatchNorm layers train here (drop path,
// dropout and the auxiliary head stay off) and the batches are the epoch's own, a function of the
// epoch: no random number is drawn, so what is trained next is the same with or without it. Like
// evaluate(), no autocast: the statistics are those of the fp32 forward pass that evaluation runs.
void Trainer::recalibrate_batch_norm(const Loader& train, std::int64_t epoch) {
  const std::int64_t batches = std::min(options_.precise_bn_batches, train.batches_per_epoch());
  if (batches == 0) return;  // precise_bn_batches 0, or no batch: the running averages stay
  using Momentum = std::decay_t<decltype(torch::nn::BatchNormOptions(1).momentum())>;
  struct Saved {
    torch::nn::BatchNorm2dImpl* norm;
    Momentum momentum;
    at::Tensor mean, var, tracked;
  };
  // What is changed here is put back on the way out, exceptions included; so are the statistics of
  // layers an evaluation never reaches (the auxiliary head's), which no batch below re-estimates.
  struct Restore {
    Network& network;
    const bool training = network.is_training();
    std::vector<Saved> saved;
    ~Restore() {
      for (Saved& s : saved) {
        s.norm->options.momentum(s.momentum);
        if (s.norm->num_batches_tracked.item<std::int64_t>() > 0) continue;
        s.norm->running_mean.copy_(s.mean);
        s.norm->running_var.copy_(s.var);
        s.norm->num_batches_tracked.copy_(s.tracked);
      }
      network.train(training);
    }
  } restore{network_};
  torch::NoGradGuard no_grad;
  network_.eval();
  for (const auto& module : network_.modules(/*include_self=*/false)) {
    auto* norm = dynamic_cast<torch::nn::BatchNorm2dImpl*>(module.get());
    if (!norm || !norm->options.track_running_stats()) continue;
    restore.saved.push_back({norm, norm->options.momentum(), norm->running_mean.clone(), norm->running_var.clone(),
                             norm->num_batches_tracked.clone()});
    norm->options.momentum(Momentum());  // none: a cumulative average of the batches below
    norm->reset_running_stats();
    norm->train();
  }
  if (restore.saved.empty()) return;
  train.for_each(epoch, 0, [&](std::int64_t index, Batch& batch) {
    const at::Tensor images = network_input(batch.images, context_, options_);
    std::optional<GlobalBatchNorm> global_statistics;  // the global batch's, as in training: the same on every rank
    if (reducer_) global_statistics.emplace(*reducer_);
    network_.forward(images);
    return index + 1 < batches;
  });
}

Metrics Trainer::evaluate(const Loader& loader) {
  torch::NoGradGuard no_grad;
  const bool was_training = network_.is_training();
  network_.eval();
  Metrics m;
  double loss_sum = 0;
  std::int64_t top1 = 0, top5 = 0;
  loader.for_each(0, 0, [&](std::int64_t, Batch& batch) {
    const at::Tensor images = network_input(batch.images, context_, options_);
    at::Tensor labels = batch.labels.to(context_.device, /*non_blocking=*/true);
    at::Tensor logits = network_.forward(images).logits.to(at::kFloat);
    loss_sum += torch::nn::functional::cross_entropy(logits, labels).item<double>() * static_cast<double>(labels.size(0));
    auto [h1, h5] = hits(logits, labels);
    top1 += h1;
    top5 += h5;
    m.examples += labels.size(0);
    return true;
  });
  network_.train(was_training);
  if (reducer_) sum_over_ranks(*reducer_, loss_sum, top1, top5, m.examples);
  if (m.examples > 0) {
    m.loss = loss_sum / static_cast<double>(m.examples);
    m.top1 = static_cast<double>(top1) / static_cast<double>(m.examples);
    m.top5 = static_cast<double>(top5) / static_cast<double>(m.examples);
  }
  return m;
}

void Trainer::save_weights(const fs::path& path) const {
  // Python's torch.save format: a zip with data.pkl (an untyped dict of name -> tensor; a typed one
  // would carry a type tag that torch.load(weights_only=True) refuses) and one record per storage.
  c10::impl::GenericDict state(c10::AnyType::get(), c10::AnyType::get());
  for (const auto& p : network_.named_parameters()) state.insert(p.key(), p.value().detach().cpu().clone());
  for (const auto& b : network_.named_buffers()) state.insert(b.key(), b.value().detach().cpu().clone());
  std::string pickle;
  std::int64_t storages = 0;
  torch::jit::Pickler pickler([&](const char* data, std::size_t size) { pickle.append(data, size); }, nullptr, nullptr,
                              nullptr, [&](const at::Tensor&) { return std::to_string(storages++); },
                              /*tag_aggregates=*/false);
  pickler.protocol();
  pickler.pushIValue(state);
  pickler.stop();
  try {
    caffe2::serialize::PyTorchStreamWriter writer(path.string());
    writer.writeRecord("data.pkl", pickle.data(), pickle.size());
    const std::vector<at::Tensor>& tensors = pickler.tensorData();
    for (std::size_t i = 0; i < tensors.size(); ++i) {
      torch::jit::WriteableTensorData data = torch::jit::getWriteableTensorData(tensors[i]);
      writer.writeRecord(fmt::format("data/{}", i), data.data(), data.sizeInBytes());
    }
    writer.writeEndOfFile();
  } catch (const c10::Error& e) {
    throw Error(fmt::format("cannot write weights to '{}': {}", path.string(), e.what_without_backtrace()));
  }
}

}  // namespace nas
