// nas-host report as a user sees it: the page of a small real run (a search with training, select,
// retrain, final) and of a small ablation, rendered in headless Chromium (no console message, no
// request, every chart drawn with its points, a screenshot that is not blank), cell diagrams that
// hold exactly the genotype's ops and edges, and reports of a killed run and of a run still going.
#include <png.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <sstream>
#include <regex>
#include <set>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

#include "nas/store.hpp"
#include "support.hpp"

namespace fs = std::filesystem;
using ::testing::HasSubstr;

namespace {

// What headless Chromium made of a page.
struct Rendered {
  std::string dom;                    ///< after the page's scripts ran
  std::vector<std::string> console;   ///< every console message the page produced
  std::vector<std::string> requests;  ///< every URL the page asked the network for
  fs::path screenshot;
};

std::string shell_output(const std::string& command) {
  FILE* pipe = popen(command.c_str(), "r");
  std::string out;
  std::array<char, 4096> buffer;
  while (std::size_t n = fread(buffer.data(), 1, buffer.size(), pipe)) out.append(buffer.data(), n);
  pclose(pipe);
  return out;
}

// Opens `page` from disk twice (the DOM with the browser's console and network logs; a screenshot),
// with a profile of its own, and names resolving nowhere: nothing could leave the machine anyway.
Rendered render(const fs::path& page, const fs::path& work) {
  if (std::system("command -v chromium >/dev/null 2>&1") != 0)
    throw std::runtime_error("chromium is not installed (scripts/setup.sh installs it)");
  const std::string flags = fmt::format(
      "--headless --no-sandbox --disable-gpu --no-first-run --disable-sync --disable-background-networking "
      "--disable-component-update --host-resolver-rules='MAP * ~NOTFOUND' --user-data-dir='{}' --window-size=1200,2400",
      (work / "profile").string());
  const fs::path net = work / "net.json", log = work / "chromium.log";
  Rendered r;
  r.dom = shell_output(fmt::format("timeout 120 chromium {} --enable-logging=stderr --v=0 --log-net-log='{}' --dump-dom "
                                   "'file://{}' 2>'{}'", flags, net.string(), fs::absolute(page).string(), log.string()));
  std::istringstream lines(nas::test::read_text(log));
  for (std::string line; std::getline(lines, line);)
    if (line.find(":CONSOLE") != std::string::npos) r.console.push_back(line);
  // The page's requests are those whose network isolation key is the file:// page's; the browser's
  // own (update checks and the like) have keys of their own sites.
  // Without a complete log, "no request" would prove nothing: an unreadable one fails the test.
  const nlohmann::json events = nlohmann::json::parse(nas::test::read_text(net), nullptr, false);
  if (!events.is_object() || !events.contains("events")) throw std::runtime_error("no network log from chromium: " + net.string());
  const int start_job = events.at("constants").at("logEventTypes").at("URL_REQUEST_START_JOB").get<int>();
  for (const nlohmann::json& e : events.at("events"))
    if (e.value("type", -1) == start_job && e.contains("params") &&
        e.at("params").value("network_isolation_key", "").find("file://") != std::string::npos)
      r.requests.push_back(e.at("params").value("url", ""));
  r.screenshot = work / "screenshot.png";
  shell_output(fmt::format("timeout 120 chromium {} --screenshot='{}' 'file://{}' 2>/dev/null", flags,
                           r.screenshot.string(), fs::absolute(page).string()));
  return r;
}

// The share of pixels that are not (near) white, and how many distinct colors there are.
std::pair<double, std::size_t> ink(const fs::path& png_file) {
  png_image image{};
  image.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_file(&image, png_file.c_str())) return {0, 0};
  image.format = PNG_FORMAT_RGB;
  std::vector<png_byte> pixels(PNG_IMAGE_SIZE(image));
  if (!png_image_finish_read(&image, nullptr, pixels.data(), 0, nullptr)) return {0, 0};
  std::size_t inked = 0;
  std::set<std::uint32_t> colors;
  for (std::size_t i = 0; i + 2 < pixels.size(); i += 3) {
    inked += pixels[i] < 240 || pixels[i + 1] < 240 || pixels[i + 2] < 240;
    colors.insert(static_cast<std::uint32_t>(pixels[i]) << 16 | static_cast<std::uint32_t>(pixels[i + 1]) << 8 | pixels[i + 2]);
  }
  return {static_cast<double>(inked) / static_cast<double>(pixels.size() / 3), colors.size()};
}

// chart id -> the points Chart.js drew, as the page's script recorded them after rendering.
std::map<std::string, int> drawn_points(const std::string& dom) {
  std::map<std::string, int> out;
  const std::regex figure(R"re(<figure id="chart-([^"]+)" class="chart[^"]*" data-rendered="true"><div class="plot"><canvas [^>]*data-points="(\d+)")re");
  for (auto it = std::sregex_iterator(dom.begin(), dom.end(), figure); it != std::sregex_iterator(); ++it)
    out[(*it)[1]] = std::stoi((*it)[2]);
  return out;
}

// chart id -> points in the data embedded in the page (bands are intervals, not points).
std::map<std::string, int> embedded_points(const std::string& html) {
  const std::string open = "<script type=\"application/json\" id=\"nas-charts\">";
  const std::size_t begin = html.find(open) + open.size();
  const nlohmann::json charts = nlohmann::json::parse(html.substr(begin, html.find("</script>", begin) - begin));
  std::map<std::string, int> out;
  for (const nlohmann::json& c : charts) {
    int n = 0;
    for (const nlohmann::json& s : c["series"])
      if (s["style"] != "band") n += static_cast<int>(s["data"].size());
    out[c["id"].get<std::string>()] = n;
  }
  return out;
}

// What every page must be: drawn without a console message or a request, every embedded chart
// rendered with its points, and a screenshot with something on it.
void expect_a_clean_page(const Rendered& r, const std::string& html) {
  EXPECT_THAT(r.console, ::testing::IsEmpty());
  EXPECT_THAT(r.requests, ::testing::IsEmpty());
  EXPECT_EQ(drawn_points(r.dom), embedded_points(html)) << "every chart in the data is drawn, with all its points";
  const auto [share, colors] = ink(r.screenshot);
  EXPECT_GT(share, 0.03) << "the screenshot is (nearly) blank";
  EXPECT_GT(colors, 20u);
}

// (from, to, label) of every edge in an SVG that Graphviz drew, and the node labels.
struct Drawing {
  std::multiset<std::tuple<std::string, std::string, std::string>> edges;
  std::multiset<std::string> labels;
};

std::string unescape(std::string text) {
  for (const auto& [entity, c] : std::vector<std::pair<std::string, std::string>>{
           {"&#45;", "-"}, {"&gt;", ">"}, {"&lt;", "<"}, {"&amp;", "&"}, {"&#123;", "{"}, {"&#125;", "}"}})
    for (std::size_t at = text.find(entity); at != std::string::npos; at = text.find(entity, at + c.size()))
      text.replace(at, entity.size(), c);
  return text;
}

Drawing drawing(const std::string& svg) {
  Drawing d;
  const std::regex group(R"re(<g id="[^"]*" class="(node|edge)">\s*<title>([^<]*)</title>([\s\S]*?)</g>)re");
  const std::regex text(R"re(<text[^>]*>([^<]*)</text>)re");
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), group); it != std::sregex_iterator(); ++it) {
    const std::string body = (*it)[3];
    std::smatch label;
    const std::string shown = std::regex_search(body, label, text) ? unescape(label[1]) : "";
    if ((*it)[1] == "node") {
      d.labels.insert(shown);
      continue;
    }
    const std::string title = unescape((*it)[2]);
    const std::size_t arrow = title.find("->");
    d.edges.emplace(title.substr(0, arrow), title.substr(arrow + 2), shown);
  }
  return d;
}

// The diagram (the SVG) inside the element with `attribute` in a page.
std::string diagram(const std::string& html, const std::string& attribute) {
  const std::size_t at = html.find(attribute);
  if (at == std::string::npos) return "";
  const std::size_t begin = html.find("<svg", at), end = html.find("</svg>", at);
  return begin < end && end != std::string::npos ? html.substr(begin, end - begin) : "";
}

// What Graphviz should draw for a NASNet genotype: per cell, each block's two inputs with their ops,
// each block's combine op, and the concatenated states.
Drawing expected_nasnet(const std::string& genotype) {
  const YAML::Node g = YAML::Load(genotype);
  Drawing d;
  for (const std::string cell : {"normal", "reduction"}) {
    d.labels.insert("h_i");
    d.labels.insert("h_{i-1}");
    d.labels.insert("concat");
    const YAML::Node blocks = g[cell]["blocks"];
    for (std::size_t b = 0; b < blocks.size(); ++b) {
      const std::string node = fmt::format("{}_{}", cell, b + 2);
      d.labels.insert(fmt::format("{} ({})", b + 2, blocks[b][4].as<std::string>()));
      for (int operand : {0, 2})
        d.edges.emplace(fmt::format("{}_{}", cell, blocks[b][operand].as<int>()), node, blocks[b][operand + 1].as<std::string>());
    }
    for (const YAML::Node& s : g[cell]["concat"]) d.edges.emplace(fmt::format("{}_{}", cell, s.as<int>()), cell + "_out", "");
  }
  return d;
}

class ReportTest : public ::testing::Test {
 protected:
  nas::test::HostResult host(const std::string& args) { return nas::test::run_host(dir_, args); }
  static std::string config(const std::string& name) { return fmt::format("'{}/{}.yaml'", nas::test::paths::configs, name); }

  nas::test::ScratchDir scratch_;
  const fs::path& dir_ = scratch_.path();
};

TEST_F(ReportTest, TheBrowserCheckCatchesConsoleMessagesAndRequests) {
  // A page that does what a report must never do: without this, an empty log proves nothing.
  std::ofstream(dir_ / "bad.html") << "<!doctype html><html><body><script>console.error('broken');"
                                      "fetch('http://example.invalid/data.json').catch(() => {});</script></body></html>";
  const Rendered r = render(dir_ / "bad.html", dir_);
  ASSERT_EQ(r.console.size(), 1u);
  EXPECT_THAT(r.console[0], HasSubstr("broken"));
  EXPECT_THAT(r.requests, ::testing::ElementsAre("http://example.invalid/data.json"));
}

TEST_F(ReportTest, ARunsReportShowsItsSearchCellsAndTrainings) {
  auto r = host(fmt::format("run {} --run-dir run", config("pipeline_small")));
  ASSERT_EQ(r.code, 0) << r.output;
  const fs::path page = dir_ / "run" / "report.html";
  EXPECT_THAT(r.output, HasSubstr("report: " + page.string().substr(dir_.string().size() + 1))) << "the last line names it";
  ASSERT_TRUE(fs::exists(page));
  const std::string html = nas::test::read_text(page);
  const Rendered rendered = render(page, dir_);
  expect_a_clean_page(rendered, html);

  // The charts a user looks for, each with the points the run's files hold: every finished evaluation,
  // and the best so far from the first reward on, in proposal order and in the order results came.
  const nas::SearchStore store(dir_ / "run" / "search.sqlite", nas::SearchStore::Access::read);
  std::vector<nas::StoredEvaluation> done;
  for (const auto& e : store.evaluations())
    if (e.status != nas::EvaluationStatus::pending && e.status != nas::EvaluationStatus::cancelled) done.push_back(e);
  auto expected_points = [&] {
    int best = 0;
    bool any = false;
    for (const auto& e : done) best += (any = any || e.reward.has_value());
    return static_cast<int>(done.size()) + best;
  };
  const std::map<std::string, int> points = drawn_points(rendered.dom);
  EXPECT_EQ(points.at("reward-by-evaluation"), expected_points());
  std::stable_sort(done.begin(), done.end(), [](const auto& a, const auto& b) { return a.finished_at < b.finished_at; });
  EXPECT_EQ(points.at("reward-by-time"), expected_points());
  std::map<std::string, int> signal_steps;
  for (const auto& s : store.signals()) ++signal_steps[s.name];
  ASSERT_THAT(signal_steps, ::testing::Contains(::testing::Key("population_best_reward"))) << "evolution's signals";
  for (const auto& [name, steps] : signal_steps) EXPECT_EQ(points.at("signal-" + name), steps) << name;
  // final: 2 epochs, train and validation per epoch; retrain: 2 architectures, validation per epoch.
  EXPECT_EQ(points.at("final-accuracy"), 4);
  EXPECT_EQ(points.at("final-loss"), 4);
  EXPECT_EQ(points.at("retrain-accuracy"), 4);
  EXPECT_TRUE(points.count("top-accuracy")) << "the best children's own learning curves";
  EXPECT_THAT(html, HasSubstr("pipeline_small"));
  EXPECT_THAT(html, HasSubstr("controller/evolution"));
  EXPECT_THAT(html, HasSubstr("test top-1"));
}

TEST_F(ReportTest, CellDiagramsHoldExactlyTheGenotypesOpsAndEdges) {
  auto r = host(fmt::format("run {} --run-dir run search.evaluations=12 search.top_k=3", config("search_synthetic")));
  ASSERT_EQ(r.code, 0) << r.output;
  const std::string html = nas::test::read_text(dir_ / "run" / "report.html");
  const nas::SearchStore store(dir_ / "run" / "search.sqlite", nas::SearchStore::Access::read);
  const auto best = store.best(3);
  ASSERT_EQ(best.size(), 3u);
  for (const auto& e : best) {
    const Drawing drawn = drawing(diagram(html, fmt::format("data-evaluation=\"{}\"", e.index)));
    const Drawing expected = expected_nasnet(e.genotype);
    EXPECT_EQ(drawn.edges, expected.edges) << "#" << e.index << "\n" << e.genotype;
    EXPECT_EQ(drawn.labels, expected.labels) << "#" << e.index;
  }
}

TEST_F(ReportTest, NasBench201CellsAreDrawnByTheirOwnSpace) {
  auto r = host(fmt::format("run {} --run-dir run search.evaluations=10 search.space.plugin=nasbench201", config("search_synthetic")));
  ASSERT_EQ(r.code, 0) << r.output;
  const std::string html = nas::test::read_text(dir_ / "run" / "report.html");
  for (const auto& e : nas::SearchStore(dir_ / "run" / "search.sqlite", nas::SearchStore::Access::read).best(3)) {
    // |op~0|+|op~0|op~1|+|op~0|op~1|op~2|: node j's edges from nodes i < j, "none" drawn as no edge.
    Drawing expected;
    const std::regex edge(R"re(([a-z0-9_]+)~(\d))re");
    std::istringstream nodes(e.genotype);
    int to = 1;
    for (std::string node; std::getline(nodes, node, '+'); ++to)
      for (auto it = std::sregex_iterator(node.begin(), node.end(), edge); it != std::sregex_iterator(); ++it)
        if ((*it)[1] != "none") expected.edges.emplace((*it)[2], std::to_string(to), (*it)[1]);
    ASSERT_EQ(to, 4) << e.genotype;
    const Drawing drawn = drawing(diagram(html, fmt::format("data-evaluation=\"{}\"", e.index)));
    EXPECT_EQ(drawn.edges, expected.edges) << e.genotype;
  }
}

TEST_F(ReportTest, AnAblationsReportComparesItsArmsAndLinksEveryRun) {
  std::ofstream(dir_ / "ablation.yaml") << fmt::format(
      "name: small\nbase: {}/search_synthetic.yaml\nseeds: 3\n"
      "set: {{experiment.threads: 1, search.evaluations: 15, search.batch: 5}}\n"
      "arms:\n  - {{name: random, search.controller: {{plugin: random}}}}\n"
      "  - {{name: evolution, search.controller: {{plugin: evolution, population: 5, sample: 3}}}}\n",
      nas::test::paths::configs);
  auto r = host("ablate ablation.yaml");
  ASSERT_EQ(r.code, 0) << r.output;
  std::vector<fs::path> found;
  for (const auto& entry : fs::directory_iterator(dir_ / "ablations" / "small")) found.push_back(entry.path());
  ASSERT_EQ(found.size(), 1u);
  const fs::path page = found[0] / "report.html";
  EXPECT_THAT(r.output, HasSubstr("report: ")) << "the last line names it";
  const std::string html = nas::test::read_text(page);
  const Rendered rendered = render(page, dir_);
  expect_a_clean_page(rendered, html);

  const std::map<std::string, int> points = drawn_points(rendered.dom);
  EXPECT_EQ(points.at("best-by-evaluations-0"), 2 * 15) << "each arm's mean after every evaluation";
  EXPECT_GT(points.at("best-by-time-0"), 0);
  // best_reward and final_score at the end: every seed of both arms, and the two means.
  EXPECT_EQ(points.at("scores-0"), 2 * 3 + 2);
  EXPECT_EQ(points.at("scores-1"), 2 * 3 + 2);
  EXPECT_THAT(html, HasSubstr("Wilcoxon signed-rank"));
  EXPECT_THAT(html, HasSubstr("A12"));
  for (const std::string arm : {"random", "evolution"})
    for (int seed = 0; seed < 3; ++seed) {
      const std::string link = fmt::format("href=\"{}/seed-{}/report.html\"", arm, seed);
      EXPECT_THAT(html, HasSubstr(link));
      EXPECT_TRUE(fs::exists(found[0] / arm / fmt::format("seed-{}", seed) / "report.html")) << link;
    }
}

TEST_F(ReportTest, AKilledRunAndARunStillGoingHaveReports) {
  const std::string search = fmt::format("run {} search.evaluations=400 search.evaluator.seconds=0.05", config("search_synthetic"));
  const fs::path store_file = dir_ / "going" / "search.sqlite";
  auto finished = [](const fs::path& file) {
    std::size_t n = 0;
    try {
      for (const auto& e : nas::SearchStore(file, nas::SearchStore::Access::read).evaluations())
        n += e.status != nas::EvaluationStatus::pending;
    } catch (const nas::Error&) {  // not there yet, or its tables not yet created
    }
    return n;
  };
  // While the search writes, reports read its store: each works and the search goes on to the end.
  const pid_t going = nas::test::start_host(dir_, search + " --run-dir going", "going.log");
  while (finished(store_file) < 20 && nas::test::running(going)) usleep(20000);
  for (int i = 0; i < 3; ++i) {
    auto r = host("report going -o going.html");
    ASSERT_EQ(r.code, 0) << r.output;
    EXPECT_THAT(nas::test::read_text(dir_ / "going.html"), HasSubstr("not finished"));
  }
  ASSERT_TRUE(nas::test::running(going)) << "the search was still running while the reports were written";
  nas::test::wait_until_gone(going);
  EXPECT_THAT(nas::test::read_text(dir_ / "going.log"), HasSubstr("run finished"));
  EXPECT_EQ(finished(store_file), 400u);

  // A run killed mid-search: its report shows what was stored and says how to continue.
  const pid_t killed = nas::test::start_host(dir_, search + " --run-dir killed", "killed.log");
  while (finished(dir_ / "killed" / "search.sqlite") < 10 && nas::test::running(killed)) usleep(20000);
  kill(killed, SIGKILL);
  nas::test::wait_until_gone(killed);
  auto r = host("report killed");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("killed/report.html"));
  const std::string html = nas::test::read_text(dir_ / "killed" / "report.html");
  EXPECT_THAT(html, HasSubstr("nas-host run --resume killed"));
  int stored = 0;
  for (const auto& e : nas::SearchStore(dir_ / "killed" / "search.sqlite", nas::SearchStore::Access::read).evaluations())
    stored += e.status != nas::EvaluationStatus::pending && e.status != nas::EvaluationStatus::cancelled;
  EXPECT_GE(stored, 10);
  const std::map<std::string, int> points = embedded_points(html);
  EXPECT_GE(points.at("reward-by-evaluation"), stored);
}

TEST_F(ReportTest, ReportsChartsAsFiguresAndRefusesWhatIsNotARun) {
  ASSERT_EQ(host(fmt::format("run {} --run-dir run search.evaluations=10", config("search_synthetic"))).code, 0);
  auto r = host("report run -o other.html --figures figures");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("other.html"));
  for (const std::string ext : {".svg", ".pdf", ".gp", ".dat"})
    EXPECT_TRUE(fs::exists(dir_ / "figures" / ("reward-by-evaluation" + ext))) << ext;
  EXPECT_THAT(nas::test::read_text(dir_ / "figures" / "reward-by-evaluation.svg"), HasSubstr("<svg"));

  fs::create_directories(dir_ / "empty");
  r = host("report empty");
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.output, HasSubstr("'empty' is neither a run folder (it has no config.yaml) nor an ablation folder"));
}

}  // namespace
