// The subcommands of nas-host: run, plugins list, plugins describe.
#include "commands.hpp"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include <ATen/ops/zeros.h>
#include <boost/program_options.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "nas/files.hpp"
#include "nas/abi.h"
#include "nas/ablation.hpp"
#include "nas/config.hpp"
#include "nas/cost.hpp"
#include "nas/genotype_file.hpp"
#include "nas/loader.hpp"
#include "nas/log.hpp"
#include "nas/pipeline.hpp"
#include "nas/report.hpp"
#include "nas/space.hpp"

namespace po = boost::program_options;
namespace fs = std::filesystem;

namespace nas::host {
namespace {

constexpr const char* kUsage =
    "usage: nas-host <command> [options]\n"
    "\n"
    "commands:\n"
    "  run CONFIG [KEY.PATH=VALUE ...]   run the pipeline a YAML file describes\n"
    "  ablate FILE [KEY.PATH=VALUE ...]  run an ablation (arms x grid x seeds) and compare its arms\n"
    "  report DIR [-o FILE]              an HTML report of a run or an ablation, with its charts and cells\n"
    "  plugins list                      list the plugins found, and those that failed to load\n"
    "  plugins describe KEY              show a plugin's parameters, e.g. 'dataset/synthetic'\n"
    "  inspect GENOTYPE                  parameters, multiply-adds and stage shapes of a genotype's network\n"
    "  genotype FILE [--to|--from FMT]   a genotype's canonical form and hash, or converted (e.g. darts)\n"
    "\n"
    "options:\n"
    "  --version                         print the version and the plugin ABI\n"
    "  -h, --help                        show this help ('nas-host <command> --help' for a command's)\n"
    "\n"
    "exit codes: 0 ok, 1 runtime failure, 2 bad usage, config or plugin\n";

constexpr const char* kSelf = "/proc/self/exe";

// Options every command that loads plugins takes.
struct PluginOptions {
  std::vector<std::string> dirs;
  bool no_default = false;

  void add_to(po::options_description& desc) {
    desc.add_options()
        ("plugin-path", po::value(&dirs)->composing(), "load plugins from DIR (repeatable; searched before NAS_PLUGIN_PATH)")
        ("no-default-plugins", po::bool_switch(&no_default), "do not load the plugins installed next to nas-host");
  }

  /// The same options as arguments, for a worker process.
  std::vector<std::string> as_args() const {
    std::vector<std::string> args;
    for (const std::string& d : dirs) args.insert(args.end(), {"--plugin-path", fs::absolute(d).string()});
    if (no_default) args.push_back("--no-default-plugins");
    return args;
  }

  Registry load(Logger& log, const std::vector<fs::path>& config_dirs = {}) const {
    std::vector<fs::path> explicit_dirs(dirs.begin(), dirs.end());
    explicit_dirs.insert(explicit_dirs.end(), config_dirs.begin(), config_dirs.end());
    Registry registry;
    load_plugins(registry, plugin_search_path(explicit_dirs, !no_default, log));
    return registry;
  }
};

// How much the terminal shows (the run's log file always gets info and up).
struct LogOptions {
  std::string level = "info";
  bool verbose = false;

  void add_to(po::options_description& desc) {
    desc.add_options()
        ("log-level", po::value(&level), "what the terminal shows: debug, info (default), warn or error")
        ("verbose,v", po::bool_switch(&verbose), "the same as --log-level debug");
  }

  Logger::Level threshold() const {
    if (verbose || level == "debug") return Logger::Level::debug;
    if (level == "info") return Logger::Level::info;
    if (level == "warn") return Logger::Level::warn;
    if (level == "error") return Logger::Level::error;
    throw UsageError(fmt::format("--log-level {}: expected debug, info, warn or error", level));
  }

  /// The same option as arguments, for the processes this one starts.
  std::vector<std::string> as_args() const {
    return {"--log-level", verbose ? std::string("debug") : level};
  }
};

// Parses a subcommand's arguments into the variables bound in `desc`. With --help, prints `usage` and
// the options instead and returns true: the command then has nothing left to do.
bool parse_or_help(const std::vector<std::string>& args, const po::options_description& desc,
                   const po::positional_options_description& positional, std::string_view command,
                   std::string_view usage) {
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(args).options(desc).positional(positional).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    throw UsageError(fmt::format("{}: {}; see 'nas-host {} --help'", command, e.what(), command));
  }
  if (!vm.count("help")) return false;
  std::ostringstream out;
  out << usage << "\n" << desc;
  fmt::print("{}", out.str());
  return true;
}

int run_command(const std::vector<std::string>& args) {
  std::string config_file;
  std::vector<std::string> overrides;
  std::string run_dir, resume;
  std::int64_t nproc = 0, threads = 0;
  bool dry_run = false;
  PluginOptions plugins;
  LogOptions logging;
  po::options_description desc("options");
  desc.add_options()("help,h", "show this help")
      ("dry-run", po::bool_switch(&dry_run), "print the resolved config and the plan, then exit")
      ("resume", po::value(&resume), "continue the run in RUN_DIR (after a kill) with the config saved there")
      ("run-dir", po::value(&run_dir), "put the run in DIR (must not exist or be empty) instead of OUTPUT_DIR/NAME/TIMESTAMP")
      ("nproc", po::value(&nproc), "start N worker processes on this machine: they evaluate the search's architectures, share the retraining and train the final network data-parallel with this one")
      ("threads", po::value(&threads), "intra-op threads of this process, instead of experiment.threads (nas-host ablate sets them per run)")
      ("config", po::value(&config_file), "the pipeline's YAML file")
      ("override", po::value(&overrides), "KEY.PATH=VALUE, typed by the schema");
  plugins.add_to(desc);
  logging.add_to(desc);
  po::positional_options_description positional;
  positional.add("config", 1).add("override", -1);
  if (parse_or_help(args, desc, positional, "run",
                    "usage: nas-host run CONFIG [KEY.PATH=VALUE ...] [--dry-run] [--run-dir DIR] [--nproc N] [-v]\n"
                    "       nas-host run --resume RUN_DIR [--nproc N]\n\n"
                    "Runs the pipeline that CONFIG describes. Overrides set config values, e.g.\n"
                    "experiment.seed=3 or train.epochs=5. --resume continues a killed run where its\n"
                    "checkpoints left it, in the same folder. --nproc N starts N workers on this\n"
                    "machine (search evaluations, retraining, data-parallel final training); under\n"
                    "torchrun or SLURM every process runs this same command.\n"))
    return 0;
  if (!resume.empty()) {
    if (!config_file.empty() || !run_dir.empty())
      throw UsageError("run: --resume takes the config saved in RUN_DIR; give neither CONFIG nor --run-dir");
    config_file = (fs::path(resume) / "config.yaml").string();
    if (!fs::is_regular_file(config_file))
      throw UsageError(fmt::format("run: '{}' is not a run folder (it has no config.yaml)", resume));
  }
  if (config_file.empty()) throw UsageError("run: missing CONFIG; see 'nas-host run --help'");

  Logger log(logging.threshold());
  ConfigDocument doc = ConfigDocument::load(config_file, overrides);
  if (resume.empty()) doc.add_plugin_paths({plugins.dirs.begin(), plugins.dirs.end()});  // recorded for --resume
  Registry registry = plugins.load(log, doc.plugin_paths());
  for (const BrokenPlugin& broken : registry.broken())
    log.warn("plugin '{}' not loaded: {}", broken.file.string(), broken.error);
  PipelineConfig config = resolve(doc, registry);
  if (threads < 0) throw UsageError(fmt::format("run: --threads {}: expected 1 or more (0: experiment.threads)", threads));
  if (threads > 0) config.experiment.threads = threads;

  if (dry_run) {
    fmt::print("{}\n{}", config.resolved_yaml, plan_text(config));
    fmt::print("run directory: {}\n",
               run_dir.empty() ? (fs::path(config.experiment.output_dir) / config.experiment.name / "<UTC timestamp>").string()
                               : run_dir);
    return 0;
  }
  // Workers and evaluator processes are this executable again, with the same plugins.
  std::vector<std::string> child_args = plugins.as_args();
  for (std::string& arg : logging.as_args()) child_args.push_back(std::move(arg));
  const RunOptions options{!resume.empty(), nproc, kSelf, child_args};
  if (launcher_rank() > 0) {  // a worker (torchrun, SLURM, or started by --nproc): rank 0 owns the run
    serve_pipeline(config, registry, log, options);
    return 0;
  }
  if (nproc < 0) throw UsageError(fmt::format("run: --nproc {}: expected 0 or more worker processes", nproc));
  fs::path dir = !resume.empty() ? fs::path(resume)
                                 : make_run_dir(config.experiment, run_dir.empty() ? std::nullopt : std::optional<fs::path>(run_dir));
  run_pipeline(config, registry, log, dir, options);
  return 0;
}

int ablate_command(const std::vector<std::string>& args) {
  std::string file, resume;
  std::vector<std::string> overrides;
  AblationOptions options;
  PluginOptions plugins;
  LogOptions logging;
  po::options_description desc("options");
  desc.add_options()("help,h", "show this help")
      ("dry-run", po::bool_switch(&options.dry_run), "list the runs and validate every one, then exit")
      ("resume", po::value(&resume), "finish the ablation in DIR (after a kill): finished runs are kept, interrupted ones resume")
      ("jobs,j", po::value(&options.jobs), "runs at once in this process (default: one per core, as memory allows)")
      ("nproc", po::value(&options.nproc), "start N more ablate processes on this machine that share the runs (what torchrun or SLURM do across machines)")
      ("file", po::value(&file), "the ablation's YAML file")
      ("override", po::value(&overrides), "KEY.PATH=VALUE: a key of the ablation file (seeds=3) or of every run's config (search.evaluations=50)");
  plugins.add_to(desc);
  logging.add_to(desc);
  po::positional_options_description positional;
  positional.add("file", 1).add("override", -1);
  if (parse_or_help(args, desc, positional, "ablate",
                    "usage: nas-host ablate FILE [KEY.PATH=VALUE ...] [--jobs J] [--nproc W] [--dry-run] [-v]\n"
                    "       nas-host ablate --resume DIR [--jobs J] [--nproc W]\n\n"
                    "Runs every arm of an ablation file (a base config and overrides of its keys) for every grid\n"
                    "point and seed, each an ordinary run in ABLATIONS/NAME/TIMESTAMP/ARM/seed-K, and compares the\n"
                    "arms against the baseline: ablation.md, ablation.json, ablation.csv (docs/ablation.md).\n"))
    return 0;
  if (options.jobs < 0 || options.nproc < 0) throw UsageError("ablate: --jobs and --nproc take a count >= 0");
  Logger log(logging.threshold());
  options.executable = kSelf;
  options.plugin_dirs.assign(plugins.dirs.begin(), plugins.dirs.end());  // in each run's config, not its arguments
  if (plugins.no_default) options.child_args.push_back("--no-default-plugins");
  for (std::string& arg : logging.as_args()) options.child_args.push_back(std::move(arg));
  if (!resume.empty()) {
    if (!file.empty()) throw UsageError("ablate: --resume takes the plan saved in DIR; give no FILE");
    if (options.dry_run) throw UsageError("ablate: --dry-run checks an ablation file; give FILE, not --resume");
    return resume_ablation(resume, log, options);
  }
  if (file.empty()) throw UsageError("ablate: missing FILE; see 'nas-host ablate --help'");
  const RegistryLoader load = [&](const std::vector<fs::path>& config_dirs) {
    Registry registry = plugins.load(log, config_dirs);
    for (const BrokenPlugin& broken : registry.broken())
      log.warn("plugin '{}' not loaded: {}", broken.file.string(), broken.error);
    return registry;
  };
  return ablate(file, overrides, load, log, options);
}

int report_command(const std::vector<std::string>& args) {
  std::string dir, output, figures;
  PluginOptions plugins;
  LogOptions logging;
  po::options_description desc("options");
  desc.add_options()("help,h", "show this help")("dir", po::value(&dir), "a run folder or an ablation folder")
      ("output,o", po::value(&output), "write the report to FILE instead of DIR/report.html")
      ("figures", po::value(&figures), "also write every chart to FOLDER as SVG and PDF (gnuplot), with its data and "
                                       "script");
  plugins.add_to(desc);
  logging.add_to(desc);
  po::positional_options_description positional;
  positional.add("dir", 1);
  if (parse_or_help(args, desc, positional, "report",
                    "usage: nas-host report DIR [-o FILE] [--figures FOLDER]\n\n"
                    "Writes one HTML file that shows a run (summary, search progress, the controller's\n"
                    "learning signals, the best cells drawn, training curves, transfer results) or an\n"
                    "ablation (the comparison with intervals and significance, best-so-far curves with\n"
                    "bands, per-seed scores, links to every run's report), and prints its path. It opens\n"
                    "from disk, offline: everything is inline. A run still going or killed works too.\n"))
    return 0;
  if (dir.empty()) throw UsageError("report: missing DIR; see 'nas-host report --help'");
  Logger log(logging.threshold());
  // The run's cells are drawn by its space plugins, found as the run found them.
  std::vector<fs::path> config_dirs;
  if (fs::exists(fs::path(dir) / "config.yaml"))
    config_dirs = ConfigDocument::load(fs::path(dir) / "config.yaml", {}).plugin_paths();
  const Registry registry = plugins.load(log, config_dirs);
  const fs::path file = write_report(dir, &registry, log, {output, figures});
  fmt::print("{}\n", file.string());
  return 0;
}

// Internal: started by a search or retrain stage (see docs/search.md, "Isolation"), never by users.
int evaluator_command(const std::vector<std::string>& args) {
  std::string run_dir, stage, log_file;
  int threads = 1;
  PluginOptions plugins;
  LogOptions logging;
  po::options_description desc("options");
  desc.add_options()("help,h", "show this help")("run-dir", po::value(&run_dir), "the run's folder")
      ("stage", po::value(&stage), "the stage whose evaluator to serve")
      ("threads", po::value(&threads), "intra-op threads")
      ("log", po::value(&log_file), "append log lines to FILE too");
  plugins.add_to(desc);
  logging.add_to(desc);
  po::positional_options_description positional;
  positional.add("run-dir", 1).add("stage", 1);
  if (parse_or_help(args, desc, positional, "evaluator",
                    "usage: nas-host evaluator RUN_DIR STAGE [--threads T] [--log FILE]\n\n"
                    "Internal: the supervised process in which a search or retrain stage evaluates its\n"
                    "architectures. It talks to its parent over file descriptor 3.\n"))
    return 0;
  Logger log(logging.threshold());
  if (!log_file.empty()) log.tee_to(log_file);
  return serve_evaluator_process(run_dir, stage, {plugins.dirs.begin(), plugins.dirs.end()}, !plugins.no_default,
                                 threads, log, 3);
}

int plugins_list(const std::vector<std::string>& args) {
  bool json = false;
  PluginOptions plugins;
  LogOptions logging;
  po::options_description desc("options");
  desc.add_options()("help,h", "show this help")("json", po::bool_switch(&json), "print JSON");
  plugins.add_to(desc);
  logging.add_to(desc);
  if (parse_or_help(args, desc, {}, "plugins list",
                    "usage: nas-host plugins list [--json] [--plugin-path DIR ...]\n\n"
                    "Lists every factory the plugins register (key, kind, version, file) and every\n"
                    "plugin file that failed to load, with the reason.\n"))
    return 0;
  Logger log(logging.threshold());
  Registry registry = plugins.load(log);
  if (json) {
    nlohmann::ordered_json out{{"plugins", nlohmann::ordered_json::array()}, {"broken", nlohmann::ordered_json::array()}};
    for (const Entry& e : registry.entries())
      out["plugins"].push_back({{"key", e.key}, {"kind", e.kind}, {"name", e.name}, {"doc", e.doc},
                                {"plugin", e.plugin->name}, {"version", e.plugin->version},
                                {"file", e.plugin->file.string()}});
    for (const BrokenPlugin& b : registry.broken())
      out["broken"].push_back({{"file", b.file.string()}, {"error", b.error}});
    fmt::print("{}\n", out.dump(2));
    return 0;
  }
  std::size_t width = 3;
  for (const Entry& e : registry.entries()) width = std::max(width, e.key.size());
  fmt::print("{:<{}}  {:<11}  {:<8}  {}\n", "KEY", width, "KIND", "VERSION", "FILE");
  for (const KindInfo& kind : kinds)
    for (const Entry* e : registry.of_kind(kind.name))
      fmt::print("{:<{}}  {:<11}  {:<8}  {}\n", e->key, width, e->kind, e->plugin->version, e->plugin->file.string());
  if (registry.entries().empty()) fmt::print("(no plugins found)\n");
  if (!registry.broken().empty()) {
    fmt::print("\nplugins that failed to load:\n");
    for (const BrokenPlugin& b : registry.broken()) fmt::print("  {}: {}\n", b.file.string(), b.error);
  }
  return 0;
}

int plugins_describe(const std::vector<std::string>& args) {
  std::string key;
  PluginOptions plugins;
  LogOptions logging;
  po::options_description desc("options");
  desc.add_options()("help,h", "show this help")("key", po::value(&key), "KIND/NAME, e.g. dataset/synthetic");
  plugins.add_to(desc);
  logging.add_to(desc);
  po::positional_options_description positional;
  positional.add("key", 1);
  if (parse_or_help(args, desc, positional, "plugins describe",
                    "usage: nas-host plugins describe KIND/NAME\n\n"
                    "Shows a plugin's parameters: name, type, default, allowed values, doc.\n"))
    return 0;
  if (key.empty()) throw UsageError("plugins describe: missing KEY (KIND/NAME); see 'nas-host plugins list'");
  Logger log(logging.threshold());
  Registry registry = plugins.load(log);
  std::size_t slash = key.find('/');
  if (slash == std::string::npos)
    throw UsageError(fmt::format("plugins describe: '{}' is not a KIND/NAME key, e.g. 'dataset/synthetic'", key));
  const Entry& e = registry.require(key.substr(0, slash), key.substr(slash + 1));
  auto print_schema = [](const Schema& schema) {
    if (schema.empty()) fmt::print("  (none)\n");
    for (const ParamSpec& p : schema)
      fmt::print("  {:<16} {:<14} {:<16} {}\n      {}\n", p.name, type_name(p.type),
                 p.default_value ? "default " + to_string(*p.default_value) : "required", p.expected(), p.doc);
  };
  fmt::print("{}  (plugin '{}' {}, {})\n  {}\n", e.key, e.plugin->name, e.plugin->version, e.plugin->file.string(), e.doc);
  if (!e.capabilities.empty()) fmt::print("  capabilities: {}\n", fmt::join(e.capabilities, ", "));
  auto print_presets = [](const Presets& presets) {
    for (const auto& [name, values] : presets) {
      std::vector<std::string> settings;
      for (const auto& [param, value] : values) settings.push_back(fmt::format("{}={}", param, to_string(value)));
      fmt::print("  preset {}: {}\n", name, fmt::join(settings, " "));
    }
  };
  fmt::print("\nparameters:\n");
  print_schema(e.schema);
  print_presets(e.presets);
  if (!e.models.schema.empty()) {
    fmt::print("\nmodel parameters (in the sections of the stages and evaluators that train its networks):\n");
    print_schema(e.models.schema);
    print_presets(e.models.presets);
  }
  fmt::print("\nin a config:\n  {}:\n    plugin: {}\n", e.kind, e.name);
  for (const ParamSpec& p : e.schema)
    fmt::print("    {}: {}\n", p.name, p.default_value ? to_string(*p.default_value) : "...");
  return 0;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw UsageError(fmt::format("cannot read '{}'", path));
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::string with_thousands(std::int64_t n) {
  std::string digits = std::to_string(n), out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

// The search space plugin `name` with parameters from --space-param, able to build networks.
std::unique_ptr<Space> make_space(const Registry& registry, const std::string& name,
                                  const std::vector<std::string>& params, Logger& log) {
  const Entry& entry = registry.require("space", name);
  Context context{.log = log, .registry = &registry};
  return registry.create<Space>(name, parse_assignments(entry.schema, params), context, {});
}

// --space and --space-param, for every command that reads genotypes.
struct SpaceOptions {
  std::string name;
  std::vector<std::string> params;

  void add_to(po::options_description& desc) {
    desc.add_options()
        ("space", po::value(&name), "the search space plugin that reads the genotype (default: the one the file "
                                    "records, else nasnet)")
        ("space-param", po::value(&params)->composing(), "KEY=VALUE: a parameter of the space (repeatable), e.g. blocks=4");
  }
  /// The space given on the command line; without --space or --space-param, the one `genotype_file`
  /// records (its `# space:` line, written by runs), else nasnet with its defaults.
  SpaceRecord choose(const std::string& text, const std::string& genotype_file) const {
    if (name.empty() && params.empty())
      if (std::optional<SpaceRecord> recorded = recorded_space(text, genotype_file)) return *recorded;
    return {name.empty() ? "nasnet" : name, params};
  }
  std::unique_ptr<Space> make(const Registry& registry, Logger& log, const std::string& text,
                              const std::string& genotype_file) const {
    const SpaceRecord space = choose(text, genotype_file);
    return make_space(registry, space.plugin, space.assignments, log);
  }
};

int genotype_command(const std::vector<std::string>& args) {
  std::string file, to, from;
  PluginOptions plugins;
  LogOptions logging;
  SpaceOptions space_options;
  po::options_description desc("options");
  desc.add_options()("help,h", "show this help")("file", po::value(&file), "the genotype file")
      ("to", po::value(&to), "print the genotype in format FMT (e.g. darts)")
      ("from", po::value(&from), "read FILE in format FMT (e.g. darts) and print it as a genotype file");
  plugins.add_to(desc);
  logging.add_to(desc);
  space_options.add_to(desc);
  po::positional_options_description positional;
  positional.add("file", 1);
  if (parse_or_help(args, desc, positional, "genotype",
                    "usage: nas-host genotype FILE [--to FMT | --from FMT] [--space NAME]\n\n"
                    "Checks a genotype file and prints its canonical form and hash; with --to, prints it\n"
                    "in another format; with --from, converts FILE from that format to a genotype file.\n"))
    return 0;
  if (file.empty()) throw UsageError("genotype: missing FILE; see 'nas-host genotype --help'");
  if (!to.empty() && !from.empty()) throw UsageError("genotype: give --to or --from, not both");
  Logger log(logging.threshold());
  Registry registry = plugins.load(log);
  std::string text = read_file(file);
  auto space = space_options.make(registry, log, text, file);
  if (!from.empty()) {
    fmt::print("{}", space->import_from(text, from, file));
  } else if (!to.empty()) {
    space->canonical(text, file);  // checks the file, naming it
    fmt::print("{}\n", space->export_as(text, to));
  } else {
    fmt::print("# hash {}\n{}", architecture_hash(*space, text), space->canonical(text, file));
  }
  return 0;
}

int inspect_command(const std::vector<std::string>& args) {
  std::string genotype_file, dot_file, preset;
  std::vector<std::string> model_params;
  DataShape data{10, 3, 32, 32};
  std::int64_t input_size = 32;
  bool json = false;
  PluginOptions plugins;
  LogOptions logging;
  po::options_description desc("options");
  desc.add_options()("help,h", "show this help")
      ("genotype", po::value(&genotype_file), "the genotype file")
      ("model", po::value(&model_params)->composing(),
       "KEY=VALUE: a model parameter of the space (repeatable), e.g. N=4 F=1056 (NASNet; see 'nas-host plugins "
       "describe space/NAME')")
      ("preset", po::value(&preset), "a named model of the space, e.g. nasnet_a_mobile (--model values override it)")
      ("input", po::value(&input_size)->default_value(32), "input height and width")
      ("channels", po::value(&data.channels)->default_value(3), "input channels (1 for grayscale)")
      ("classes", po::value(&data.num_classes)->default_value(10), "number of classes")
      ("json", po::bool_switch(&json), "print JSON")
      ("dot", po::value(&dot_file), "write both cells as a Graphviz graph to FILE (and FILE.svg if 'dot' is installed)");
  plugins.add_to(desc);
  logging.add_to(desc);
  SpaceOptions space_options;
  space_options.add_to(desc);
  po::positional_options_description positional;
  positional.add("genotype", 1);
  if (parse_or_help(args, desc, positional, "inspect",
                    "usage: nas-host inspect GENOTYPE [--preset NAME] [--model KEY=VALUE ...] [--input SIZE]\n"
                    "                        [--classes K] [--json] [--dot FILE]\n\n"
                    "Builds the network of a genotype file and reports its parameter count (auxiliary\n"
                    "head excluded), the multiply-adds of one forward pass of one image, counted per\n"
                    "layer, and the output shape of every stage. The model's parameters are the space's\n"
                    "(NASNet: layout, N, F, stem_multiplier, ...), defaults unless --preset or --model set them.\n"))
    return 0;
  if (genotype_file.empty()) throw UsageError("inspect: missing GENOTYPE; see 'nas-host inspect --help'");
  std::string text = read_file(genotype_file);
  data.height = data.width = input_size;

  Logger log(logging.threshold());
  Registry registry = plugins.load(log);
  const SpaceRecord chosen = space_options.choose(text, genotype_file);
  auto space = make_space(registry, chosen.plugin, chosen.assignments, log);
  if (!preset.empty()) model_params.insert(model_params.begin(), "preset=" + preset);
  const Params model = parse_model_assignments(registry.require("space", chosen.plugin), model_params);
  space->canonical(text, genotype_file);  // checks the file, naming it
  std::string hash = architecture_hash(*space, text);
  std::shared_ptr<Network> network = space->build(text, model, data);
  network->eval();
  ModelCost cost = measure_cost(*network, {data.channels, data.height, data.width});
  auto shapes = network->stage_shapes(at::zeros({1, data.channels, data.height, data.width}));

  if (!dot_file.empty()) {
    write_file(dot_file, space->to_dot(text));
    if (std::system("command -v dot >/dev/null 2>&1") == 0) {
      std::string svg = fs::path(dot_file).replace_extension(".svg").string();
      if (std::system(fmt::format("dot -Tsvg '{}' -o '{}'", dot_file, svg).c_str()) != 0)
        throw Error(fmt::format("dot failed to render '{}'", dot_file));
    }
  }
  if (json) {
    nlohmann::ordered_json params = nlohmann::ordered_json::object();
    for (const auto& [key, value] : model.values()) std::visit([&](const auto& v) { params[key] = v; }, value);
    nlohmann::ordered_json out{{"genotype", genotype_file}, {"hash", hash}, {"space", chosen.plugin},
                               {"model", space->model_name(model)}, {"model_params", params},
                               {"input", {data.channels, data.height, data.width}}, {"classes", data.num_classes},
                               {"params", cost.params}, {"mult_adds", cost.mult_adds},
                               {"layers_counted", cost.layers.size()}, {"stages", nlohmann::ordered_json::array()}};
    for (const auto& [name, shape] : shapes) out["stages"].push_back({{"name", name}, {"shape", shape}});
    fmt::print("{}\n", out.dump(2));
    return 0;
  }
  std::vector<std::string> settings;
  for (const auto& [key, value] : model.values()) settings.push_back(fmt::format("{}={}", key, to_string(value)));
  fmt::print("genotype:      {} (hash {})\n", genotype_file, hash);
  fmt::print("model:         {} ({}), {}x{}x{} input, {} classes\n", space->model_name(model),
             fmt::join(settings, " "), data.channels, data.height, data.width, data.num_classes);
  fmt::print("parameters:    {} ({:.1f}M, auxiliary head excluded)\n", with_thousands(cost.params), cost.params / 1e6);
  fmt::print("multiply-adds: {} ({:.2f}B, {} layers counted)\n", with_thousands(cost.mult_adds), cost.mult_adds / 1e9,
             cost.layers.size());
  fmt::print("stages:\n");
  for (const auto& [name, shape] : shapes) fmt::print("  {:<22} [{}]\n", name, fmt::join(shape, ", "));
  return 0;
}

}  // namespace

int dispatch(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "-h" || args[0] == "--help") {
    fmt::print("{}", kUsage);
    return args.empty() ? 2 : 0;
  }
  if (args[0] == "--version") {
    fmt::print("nas-host {} (plugin ABI {}.{}, build {})\n", NAS_VERSION, NAS_ABI_MAJOR, NAS_ABI_MINOR, host_fingerprint());
    return 0;
  }
  std::string command = args[0];
  args.erase(args.begin());
  if (command == "run") return run_command(args);
  if (command == "ablate") return ablate_command(args);
  if (command == "report") return report_command(args);
  if (command == "inspect") return inspect_command(args);
  if (command == "genotype") return genotype_command(args);
  if (command == "evaluator") return evaluator_command(args);
  if (command == "plugins") {
    if (args.empty() || args[0] == "-h" || args[0] == "--help") {
      fmt::print("usage: nas-host plugins list [--json] | nas-host plugins describe KIND/NAME\n"
                 "('nas-host plugins list --help' for options)\n");
      return args.empty() ? 2 : 0;
    }
    std::string sub = args[0];
    args.erase(args.begin());
    if (sub == "list") return plugins_list(args);
    if (sub == "describe") return plugins_describe(args);
    throw UsageError(fmt::format("unknown command 'plugins {}'; expected 'plugins list' or 'plugins describe'", sub));
  }
  throw UsageError(fmt::format("unknown command '{}'; see 'nas-host --help'", command));
}

}  // namespace nas::host
