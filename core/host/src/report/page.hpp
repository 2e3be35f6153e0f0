// The report's HTML page: sections, tables, charts and cell diagrams, rendered as one file that
// needs nothing else (Chart.js, styles, data and drawings inline; a Content-Security-Policy that
// forbids every request).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "report/chart.hpp"

namespace nas::report {

/// Text made safe inside HTML elements and attribute values.
std::string escape(std::string_view text);

/// Rows of HTML cells (escape text with escape(); a cell that starts with "<td" is taken whole). No
/// header: a table of key-value rows.
struct Table {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
  std::string id;  ///< optional element id
};

class Page {
 public:
  explicit Page(std::string title) : title_(std::move(title)) {}

  /// A new section, listed in the page's contents.
  void section(const std::string& title, const std::string& id);
  void paragraph(const std::string& html);
  void table(const Table& table);
  enum class Width { full, half };
  /// A chart and, below it, what it shows (HTML). Series without points are left out, and charts
  /// without any. Half-width charts sit two abreast (small multiples).
  void chart(Chart chart, const std::string& caption, Width width = Width::full);
  void html(std::string html) { body_ += std::move(html); }

  const std::vector<Chart>& charts() const { return charts_; }
  std::string render() const;

 private:
  std::string title_, body_;
  std::vector<std::pair<std::string, std::string>> contents_;  // id, title
  std::vector<Chart> charts_;
};

/// A number as the tables print it: up to 4 decimals below 10, 2 above; "-" for NaN.
std::string number(double x);
/// A count with thousands separators (88,757,183).
std::string count(double n);

}  // namespace nas::report
