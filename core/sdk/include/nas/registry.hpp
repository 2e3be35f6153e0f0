// The registry of factories that plugins register, keyed "kind/name", and the Registrar they use.
#pragma once

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "nas/api.hpp"
#include "nas/context.hpp"
#include "nas/error.hpp"
#include "nas/kinds.hpp"
#include "nas/schema.hpp"

namespace nas {

/// A factory of kind I: parameters (validated against the schema), host services, kind-specific args.
template <class I>
using Factory = std::function<typename KindOf<I>::Ptr(const Params&, const Context&, const typename KindOf<I>::Args&)>;

/// Type-erased factory, anchored in the core so that its vtable has one home.
struct NAS_API AnyFactory {
  virtual ~AnyFactory();
};

template <class I>
struct TypedFactory final : AnyFactory {
  explicit TypedFactory(Factory<I> f) : make(std::move(f)) {}
  Factory<I> make;
};

/// Capabilities a plugin declares when it registers, so that the host and other plugins choose it by
/// what it can do rather than by its name.
namespace capability {
/// An evaluator whose parameters are the training recipe (recipe_schema(), nas/recipe.hpp) and which
/// trains the genotype with it: the `retrain` stage trains its architectures with such an evaluator.
inline constexpr std::string_view trains_recipe = "trains_recipe";
/// An evaluator that builds the space's networks without the recipe (e.g. evaluator/proxy): its
/// section takes the space's model parameters too, as a trains_recipe evaluator's does.
inline constexpr std::string_view builds_networks = "builds_networks";
/// An evaluator that evaluates to a Candidate::fidelity below its full budget and continues a child
/// from a lower one (train: epochs, from the child's checkpoint): a search's scheduler needs one.
inline constexpr std::string_view multi_fidelity = "multi_fidelity";
/// An op that drop path leaves alone (TF's NASNet never drops identity paths, whatever their stride).
inline constexpr std::string_view no_drop_path = "no_drop_path";
}  // namespace capability

/// Where a factory came from.
struct PluginFile {
  std::filesystem::path file;
  std::string name;
  std::string version;
  std::uint32_t abi_minor = 0;  ///< the ABI minor version it was built for (what the host may call in it)
};

/// Named sets of parameter values (e.g. the paper's settings), which a section selects with
/// `preset: NAME`; the keys the section gives itself override the preset's.
using Presets = std::map<std::string, std::map<std::string, Value>, std::less<>>;

/// The networks a space builds: the parameters they are built from (NASNet: layout, N, F, ...),
/// which the sections of the stages and evaluators that train take beside their own, and presets
/// of them (the paper's models).
struct ModelFamily {
  Schema schema;
  Presets presets;
};

struct Entry {
  std::string key;   ///< "kind/name"
  std::string kind;
  std::string name;
  std::string doc;   ///< one line
  Schema schema;
  std::shared_ptr<const PluginFile> plugin;
  std::shared_ptr<const AnyFactory> factory;
  std::vector<std::string> capabilities;  ///< see nas::capability
  ModelFamily models;                      ///< a space's; empty for other kinds
  Presets presets;                         ///< of the plugin's own parameters (ABI 2.1)

  bool has(std::string_view capability) const {
    return std::find(capabilities.begin(), capabilities.end(), capability) != capabilities.end();
  }
};

/// Handed to a plugin's register function. Collects entries; the host commits them only if the
/// whole registration succeeded.
class NAS_API Registrar {
 public:
  template <class I>
  void add(std::string name, std::string doc, Schema schema, Factory<I> make, std::vector<std::string> capabilities = {},
           Presets presets = {}) {
    add_entry(std::string(KindOf<I>::name), std::move(name), std::move(doc), std::move(schema),
              std::make_shared<TypedFactory<I>>(std::move(make)), std::move(capabilities));
    if (!presets.empty()) set_presets(std::move(presets));
  }
  /// A space, and the family of networks it builds (its build() receives their parameters).
  template <class S>
  void add(std::string name, std::string doc, Schema schema, ModelFamily models, Factory<S> make) {
    static_assert(KindOf<S>::name == "space", "only spaces declare a model family");
    add<S>(std::move(name), std::move(doc), std::move(schema), std::move(make));
    set_models(std::move(models));
  }
  /// Reports that registration failed; the plugin's entries are then discarded.
  void fail(std::string message) noexcept;

  const std::vector<Entry>& entries() const { return entries_; }
  const std::string& failure() const { return failure_; }

 private:
  void add_entry(std::string kind, std::string name, std::string doc, Schema schema,
                 std::shared_ptr<const AnyFactory> factory, std::vector<std::string> capabilities);
  void set_models(ModelFamily models);  // of the entry added last
  void set_presets(Presets presets);    // of the entry added last
  std::vector<Entry> entries_;
  std::string failure_;
};

/// A plugin file that could not be loaded, with the reason.
struct BrokenPlugin {
  std::filesystem::path file;
  std::string error;
};

class NAS_API Registry {
 public:
  /// Adds a plugin's entries; throws UsageError naming both files if a key is already taken.
  void commit(const std::shared_ptr<const PluginFile>& plugin, std::vector<Entry> entries);
  void add_broken(BrokenPlugin broken) { broken_.push_back(std::move(broken)); }

  const Entry* find(std::string_view key) const;
  /// Entries of one kind, sorted by name.
  std::vector<const Entry*> of_kind(std::string_view kind) const;
  /// Entries of one kind that declare `capability`, sorted by name.
  std::vector<const Entry*> with_capability(std::string_view kind, std::string_view capability) const;
  /// All entries in load order.
  const std::vector<Entry>& entries() const { return entries_; }
  const std::vector<std::shared_ptr<const PluginFile>>& plugins() const { return plugins_; }
  const std::vector<BrokenPlugin>& broken() const { return broken_; }

  /// Creates an object of interface I from the factory registered as `<kind of I>/name`.
  template <class I>
  typename KindOf<I>::Ptr create(std::string_view name, const Params& params, const Context& context,
                                 const typename KindOf<I>::Args& args) const {
    const Entry& entry = require(KindOf<I>::name, name);
    // The kind check makes this cast safe: one kind, one interface (no RTTI across libraries).
    return static_cast<const TypedFactory<I>&>(*entry.factory).make(params, context, args);
  }

  /// The entry `kind/name`, or UsageError listing the known names of that kind.
  const Entry& require(std::string_view kind, std::string_view name) const;

 private:
  std::vector<Entry> entries_;
  std::vector<std::shared_ptr<const PluginFile>> plugins_;
  std::vector<BrokenPlugin> broken_;
};

}  // namespace nas
