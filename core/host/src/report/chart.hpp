// A chart of a report: the data that the page draws with Chart.js and that gnuplot draws as SVG and
// PDF figures, so that both show the same numbers.
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace nas::report {

struct Series {
  enum class Style {
    points,  ///< markers only
    line,    ///< a line through the points
    step,    ///< a line that holds each value until the next point (best so far)
    band,    ///< the area between y (lower) and upper: an interval around another series
  };
  std::string label;
  Style style = Style::points;
  std::vector<double> x, y;
  std::vector<double> upper;       ///< band only, one per point
  std::vector<std::string> notes;  ///< hover text per point; empty: the values
  std::string marker = "circle";   ///< points: circle, cross, triangle, rect or dash (a level, e.g. a mean)
  std::size_t color = 0;           ///< palette index; a band shares its series' color

  void add(double px, double py, std::string note = {}) {
    x.push_back(px);
    y.push_back(py);
    if (!note.empty()) {
      notes.resize(x.size() - 1);
      notes.push_back(std::move(note));
    }
  }
};

struct Chart {
  std::string id;  ///< unique in the page; the figures' file names (Page::chart keeps [A-Za-z0-9_-] of it)
  std::string title, x_label, y_label;
  std::vector<std::string> categories;  ///< when set, x is 0..n-1 and names these (strip plots)
  std::vector<Series> series;
  bool integer_x = false;  ///< x counts something (evaluations, steps, epochs): ticks at whole numbers

  /// Points drawn by every series but bands: what the page reports as rendered.
  std::size_t points() const;
  bool empty() const { return points() == 0; }
};

/// The chart as the page's script reads it (colors resolved, points as [x, y] or [x, lower, upper]).
nlohmann::ordered_json to_json(const Chart& chart);

/// Writes DIR/ID.dat and DIR/ID.gp (a gnuplot script one can edit and run again), then runs gnuplot
/// for DIR/ID.svg and DIR/ID.pdf. Throws Error when gnuplot is missing or fails.
void write_figure(const Chart& chart, const std::filesystem::path& dir);

}  // namespace nas::report
