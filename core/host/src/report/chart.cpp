#include "report/chart.hpp"

#include <sys/wait.h>

#include <array>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>

#include <fmt/format.h>

#include "nas/error.hpp"
#include "nas/files.hpp"

namespace fs = std::filesystem;

namespace nas::report {
namespace {

// Tableau's ten: distinct in color and in grey, the same in the page and the figures.
constexpr std::array<const char*, 10> kPalette{"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                               "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};

const char* color(std::size_t index) { return kPalette[index % kPalette.size()]; }

std::string_view style_name(Series::Style style) {
  switch (style) {
    case Series::Style::points: return "points";
    case Series::Style::line: return "line";
    case Series::Style::step: return "step";
    case Series::Style::band: return "band";
  }
  return "points";
}

// A gnuplot string literal: double quotes, backslash escapes.
std::string gnuplot_string(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') out += '\\';
    out += c == '\n' ? ' ' : c;
  }
  return out + "\"";
}

// One line of a comment: a newline would end it and the rest would run as commands.
std::string comment_text(std::string text) {
  for (char& c : text)
    if (c == '\n' || c == '\r') c = ' ';
  while (!text.empty() && text.back() == '\\') text.pop_back();  // would continue the comment onto the next line
  return text;
}

// A word for sh -c: single quotes, with any single quote closed, escaped and reopened.
std::string shell_word(std::string_view text) {
  std::string out = "'";
  for (char c : text) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

int point_type(std::string_view marker) {
  if (marker == "cross") return 2;
  if (marker == "triangle") return 9;
  if (marker == "rect" || marker == "dash") return 5;
  return 7;  // filled circle
}

std::string plot_clause(const Series& s, std::size_t block) {
  const std::string title = s.label.empty() ? "notitle" : "title " + gnuplot_string(s.label);
  const std::string lc = fmt::format("lc rgb \"{}\"", color(s.color));
  switch (s.style) {
    case Series::Style::points:
      return fmt::format("'' index {} using 1:2 with points pt {} ps 0.6 {} {}", block, point_type(s.marker), lc, title);
    case Series::Style::line: return fmt::format("'' index {} using 1:2 with lines lw 1.5 {} {}", block, lc, title);
    case Series::Style::step: return fmt::format("'' index {} using 1:2 with steps lw 1.5 {} {}", block, lc, title);
    case Series::Style::band:
      return fmt::format("'' index {} using 1:2:3 with filledcurves fs transparent solid 0.2 noborder {} {}", block, lc,
                         title);
  }
  return {};
}

}  // namespace

std::size_t Chart::points() const {
  std::size_t n = 0;
  for (const Series& s : series)
    if (s.style != Series::Style::band) n += s.x.size();
  return n;
}

nlohmann::ordered_json to_json(const Chart& chart) {
  nlohmann::ordered_json out{{"id", chart.id}, {"title", chart.title}, {"x", chart.x_label}, {"y", chart.y_label},
                             {"categories", chart.categories}, {"integer_x", chart.integer_x},
                             {"series", nlohmann::ordered_json::array()}};
  for (const Series& s : chart.series) {
    nlohmann::ordered_json data = nlohmann::ordered_json::array();
    for (std::size_t i = 0; i < s.x.size(); ++i)
      data.push_back(s.style == Series::Style::band ? nlohmann::ordered_json{s.x[i], s.y[i], s.upper[i]}
                                                    : nlohmann::ordered_json{s.x[i], s.y[i]});
    out["series"].push_back({{"label", s.label}, {"style", style_name(s.style)}, {"color", color(s.color)},
                             {"marker", s.marker}, {"data", data}, {"notes", s.notes}});
  }
  return out;
}

void write_figure(const Chart& chart, const fs::path& dir) {
  std::string data, plots;
  std::size_t block = 0;
  for (const Series& s : chart.series) {
    if (s.x.empty()) continue;  // gnuplot refuses an empty block
    data += fmt::format("# {}\n", comment_text(s.label));
    for (std::size_t i = 0; i < s.x.size(); ++i)
      data += s.style == Series::Style::band ? fmt::format("{} {} {}\n", s.x[i], s.y[i], s.upper[i])
                                             : fmt::format("{} {}\n", s.x[i], s.y[i]);
    data += "\n\n";
    plots += (plots.empty() ? "plot " + gnuplot_string(chart.id + ".dat") + plot_clause(s, block).substr(2)
                            : ", \\\n     " + plot_clause(s, block));
    ++block;
  }
  if (plots.empty()) return;
  std::string script = fmt::format(
      "# {}: written by nas-host report. Edit it and run `gnuplot {}.gp` again for another size or style.\n"
      "set title {} noenhanced\nset xlabel {} noenhanced\nset ylabel {} noenhanced\n"
      "set key below noenhanced\nset grid lc rgb \"#dddddd\"\nset border 3\nset tics nomirror\n",
      comment_text(chart.title), chart.id, gnuplot_string(chart.title), gnuplot_string(chart.x_label),
      gnuplot_string(chart.y_label));
  if (!chart.categories.empty()) {
    std::string tics;
    for (std::size_t i = 0; i < chart.categories.size(); ++i)
      tics += fmt::format("{}{} {}", i ? ", " : "", gnuplot_string(chart.categories[i]), i);
    script += fmt::format("set xtics ({}) noenhanced\nset xrange [-0.5:{}.5]\n", tics, chart.categories.size() - 1);
  }
  script += fmt::format("set terminal svg size 800,480 dynamic font \"sans,12\"\nset output {}\n{}\n"
                        "set terminal pdfcairo size 5in,3in font \"sans,8\"\nset output {}\nreplot\nset output\n",
                        gnuplot_string(chart.id + ".svg"), plots, gnuplot_string(chart.id + ".pdf"));
  write_file(dir / (chart.id + ".dat"), data);
  write_file(dir / (chart.id + ".gp"), script);

  if (std::system("command -v gnuplot >/dev/null 2>&1") != 0)
    throw Error(fmt::format("report: figures need gnuplot (Debian's gnuplot-nox; scripts/setup.sh installs it); "
                            "the scripts are in {}", dir.string()));
  const std::string command = fmt::format("cd {} && gnuplot {} 2>&1", shell_word(dir.string()), shell_word(chart.id + ".gp"));
  FILE* pipe = popen(command.c_str(), "r");
  if (!pipe) throw Error(fmt::format("report: cannot run gnuplot: {}", std::strerror(errno)));
  std::string output;
  std::array<char, 1024> buffer;
  while (std::size_t n = std::fread(buffer.data(), 1, buffer.size(), pipe)) output.append(buffer.data(), n);
  const int status = pclose(pipe);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    throw Error(fmt::format("report: gnuplot failed on '{}': {}", (dir / (chart.id + ".gp")).string(), output));
}

}  // namespace nas::report
