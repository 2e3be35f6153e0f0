// Out-of-line destructors: they anchor each type's vtable and type info in the core library.
#include "nas/error.hpp"

#include "nas/controller.hpp"
#include "nas/dataset.hpp"
#include "nas/evaluator.hpp"
#include "nas/op.hpp"
#include "nas/regularizer.hpp"
#include "nas/registry.hpp"
#include "nas/scheduler.hpp"

namespace nas {

Error::~Error() = default;
UsageError::~UsageError() = default;
AnyFactory::~AnyFactory() = default;
Op::~Op() = default;
Controller::~Controller() = default;
std::map<std::string, double> Controller::learning_signals() const { return {}; }
Dataset::~Dataset() = default;
std::int64_t Dataset::label(std::int64_t index) const { return get(index).label; }
Evaluator::~Evaluator() = default;
Regularizer::~Regularizer() = default;
Scheduler::~Scheduler() = default;
void Regularizer::on_batch(at::Tensor&, const TrainingStep&) {}
void Regularizer::on_step(Network&, const TrainingStep&) {}

}  // namespace nas
