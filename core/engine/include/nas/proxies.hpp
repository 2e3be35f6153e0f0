// Zero-cost proxies: what an untrained network's response to one batch says about how well it will
// train, to rank architectures without training them (Abdelfattah et al., "Zero-Cost Proxies for
// Lightweight NAS", ICLR 2021; Mellor et al., "Neural Architecture Search without Training", ICML 2021).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <ATen/core/Tensor.h>

#include "nas/api.hpp"

namespace nas {

class Network;

/// The proxies, by name:
/// - synflow: sum over weights of |w * dR/dw| where R is the sum of the outputs for an all-ones input,
///   every weight replaced by its absolute value, in double precision, batch norm in inference mode
///   (its statistics at initialization: the identity, up to epsilon), so that no data is needed;
/// - naswot: log |det K| of the batch's activation-pattern kernel, K[i][j] = the number of ReLUs
///   whose input has the same sign (positive or not) for examples i and j (Mellor et al.);
/// - grad_norm: sum over weights of the L2 norm of the cross-entropy loss's gradient;
/// - snip: sum over weights of |w * dL/dw| for the cross-entropy loss L (connection sensitivity).
/// "Weights" are the parameters with two or more dimensions (convolution and linear weights; not
/// biases or batch norm's affine parameters), as the papers' layer-wise sums over conv and linear layers.
NAS_API const std::vector<std::string>& proxy_names();

/// `proxy`'s score of `network` on `images` (B x C x H x W, normalized as for training) and `labels`
/// (B, int64); higher predicts better. Deterministic for the same weights and batch. The network is
/// left as it was: weights, batch norm statistics, mode (train or eval) and dtype; no gradient kept.
/// Throws UsageError naming the proxies for an unknown name.
NAS_API double proxy_score(Network& network, std::string_view proxy, const at::Tensor& images, const at::Tensor& labels);

}  // namespace nas
