#include "report/page.hpp"

#include <cctype>
#include <cmath>

#include <fmt/format.h>

namespace nas::report {

extern const char kChartJs[];  // Chart.js, from Debian's libjs-chart.js (generated at build time)

namespace {

constexpr const char* kStyle = R"css(
body { font: 14px/1.45 system-ui, sans-serif; color: #222; margin: 0 auto; max-width: 1100px; padding: 0 24px 48px; }
h1 { font-size: 24px; margin: 24px 0 4px; } h2 { font-size: 19px; margin: 36px 0 8px; border-bottom: 1px solid #ddd; }
h3 { font-size: 15px; margin: 20px 0 6px; }
nav { font-size: 13px; color: #555; } nav a { margin-right: 14px; color: #1f5fa8; text-decoration: none; }
table { border-collapse: collapse; margin: 8px 0 16px; font-size: 13px; }
th, td { border-bottom: 1px solid #e4e4e4; padding: 4px 10px; text-align: left; vertical-align: top; }
th { background: #f6f6f6; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
figure { margin: 12px 0 24px; } .plot { position: relative; height: 340px; }
figure.half { display: inline-block; width: calc(50% - 20px); margin-right: 16px; vertical-align: top; }
figure.half .plot { height: 250px; }
figcaption { font-size: 13px; color: #555; margin-top: 4px; } figcaption a { margin-left: 8px; }
.cells { display: flex; flex-wrap: wrap; gap: 16px; } .cells svg { max-width: 100%; height: auto; }
.better { color: #1a7f37; font-weight: 600; } .worse { color: #c62828; font-weight: 600; }
.note { color: #8a5a00; } code, pre { font-size: 12px; background: #f6f6f6; } pre { padding: 8px; overflow-x: auto; }
)css";

// Draws every chart from the embedded data, then marks each figure rendered with its point count
// (what tests read from the DOM).
constexpr const char* kScript = R"js(
(function () {
  const charts = JSON.parse(document.getElementById('nas-charts').textContent);
  const markers = {circle: 'circle', cross: 'crossRot', triangle: 'triangle', rect: 'rect', dash: 'line'};
  const fmt = v => (Math.abs(v) >= 1000 || Number.isInteger(v)) ? String(Math.round(v * 100) / 100) : v.toPrecision(4);
  let rendered = 0;
  for (const c of charts) {
    const figure = document.getElementById('chart-' + c.id);
    const canvas = figure.querySelector('canvas');
    const datasets = [];
    for (const s of c.series) {
      const xy = i => s.data.map(p => ({x: p[0], y: p[i]}));
      if (s.style === 'band') {
        datasets.push({label: s.label, band: 'lower', data: xy(1), showLine: true, pointRadius: 0, borderWidth: 0,
                       borderColor: 'transparent', backgroundColor: 'transparent', fill: false});
        datasets.push({label: s.label, band: 'upper', data: xy(2), showLine: true, pointRadius: 0, borderWidth: 0,
                       borderColor: s.color + '40', backgroundColor: s.color + '33', fill: '-1'});
      } else {
        datasets.push({label: s.label, notes: s.notes, data: xy(1), showLine: s.style !== 'points',
                       stepped: s.style === 'step' ? 'after' : false,
                       pointRadius: s.marker === 'dash' ? 14 : s.style === 'points' ? 3 : s.style === 'line' ? 2 : 0,
                       pointHoverRadius: 5, pointStyle: markers[s.marker] || 'circle', borderColor: s.color,
                       backgroundColor: s.color, borderWidth: s.style === 'points' && s.marker !== 'dash' ? 1 : 2});
      }
    }
    const x = {type: 'linear', title: {display: true, text: c.x}, ticks: c.integer_x ? {precision: 0} : {}};
    if (c.categories.length)
      Object.assign(x, {min: -0.5, max: c.categories.length - 0.5, grid: {display: false},
                        afterBuildTicks: axis => { axis.ticks = c.categories.map((_, i) => ({value: i})); },
                        ticks: {callback: v => c.categories[v]}});
    const chart = new Chart(canvas, {type: 'scatter', data: {datasets}, options: {
      animation: false, responsive: true, maintainAspectRatio: false,
      plugins: {
        title: {display: true, text: c.title, font: {size: 14}},
        legend: {display: c.series.length > 1, labels: {filter: item => datasets[item.datasetIndex].band !== 'lower'}},
        tooltip: {callbacks: {label: ctx => {
          const d = ctx.dataset, note = d.notes && d.notes[ctx.dataIndex];
          return note || (d.label + ': ' + fmt(ctx.parsed.x) + ', ' + fmt(ctx.parsed.y));
        }}}},
      scales: {x, y: {title: {display: true, text: c.y}}}}});
    canvas.dataset.points = datasets.filter(d => !d.band).reduce((n, d) => n + d.data.length, 0);
    figure.dataset.rendered = 'true';
    figure.querySelector('a.png').addEventListener('click', e => { e.currentTarget.href = chart.toBase64Image(); });
    ++rendered;
  }
  document.body.dataset.chartsRendered = rendered;
})();
)js";

// JSON inside <script>: "</script>" or "<!--" in a string would end or confuse the element; '<'
// only occurs inside JSON strings, where \u003c means the same.
std::string json_in_script(const nlohmann::ordered_json& json) {
  const std::string text = json.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
  std::string out;
  out.reserve(text.size());
  for (char c : text) out += c == '<' ? std::string("\\u003c") : std::string(1, c);
  return out;
}

}  // namespace

std::string escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string number(double x) {
  if (std::isnan(x)) return "-";
  return std::abs(x) < 10 ? fmt::format("{:.4f}", x) : fmt::format("{:.2f}", x);
}

std::string count(double n) {
  std::string digits = fmt::format("{:.0f}", std::abs(n)), out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return (n < 0 ? "-" : "") + out;
}

void Page::section(const std::string& title, const std::string& id) {
  contents_.emplace_back(id, title);
  body_ += fmt::format("<h2 id=\"{}\">{}</h2>\n", escape(id), escape(title));
}

void Page::paragraph(const std::string& html) { body_ += "<p>" + html + "</p>\n"; }

void Page::table(const Table& table) {
  body_ += table.id.empty() ? "<table>" : fmt::format("<table id=\"{}\">", escape(table.id));
  if (!table.header.empty()) {
    body_ += "<thead><tr>";
    for (const std::string& h : table.header) body_ += "<th>" + h + "</th>";
    body_ += "</tr></thead>";
  }
  body_ += "<tbody>\n";
  for (const auto& row : table.rows) {
    body_ += "<tr>";
    for (const std::string& cell : row) body_ += cell.rfind("<td", 0) == 0 ? cell : "<td>" + cell + "</td>";
    body_ += "</tr>\n";
  }
  body_ += "</tbody></table>\n";
}

void Page::chart(Chart chart, const std::string& caption, Width width) {
  for (char& c : chart.id)  // an element id and a file name (a plugin names its signals)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') c = '_';
  std::erase_if(chart.series, [](const Series& s) { return s.x.empty(); });
  if (chart.empty()) return;
  body_ += fmt::format("<figure id=\"chart-{0}\" class=\"chart{2}\"><div class=\"plot\"><canvas></canvas></div>"
                       "<figcaption>{1} <a class=\"png\" download=\"{0}.png\" href=\"#\">PNG</a></figcaption></figure>\n",
                       escape(chart.id), caption, width == Width::half ? " half" : "");
  charts_.push_back(std::move(chart));
}

std::string Page::render() const {
  nlohmann::ordered_json data = nlohmann::ordered_json::array();
  for (const Chart& c : charts_) data.push_back(to_json(c));
  std::string nav;
  for (const auto& [id, title] : contents_) nav += fmt::format("<a href=\"#{}\">{}</a>", escape(id), escape(title));
  // The policy forbids every request: whatever a browser would fetch, it refuses (and says so in its console).
  return fmt::format(
      "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
      "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; script-src 'unsafe-inline'; "
      "style-src 'unsafe-inline'; img-src data:\">\n"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{0}</title>\n<style>{1}</style>\n"
      "</head><body>\n<h1>{0}</h1>\n<nav>{2}</nav>\n{3}\n"
      "<script type=\"application/json\" id=\"nas-charts\">{4}</script>\n<script>{5}</script>\n<script>{6}</script>\n"
      "</body></html>\n",
      escape(title_), kStyle, nav, body_, json_in_script(data), kChartJs, kScript);
}

}  // namespace nas::report
