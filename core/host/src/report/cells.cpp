// Cell diagrams: the space's Graphviz graph (Space::to_dot, what `nas-host inspect --dot` writes)
// laid out by Graphviz's `dot` into SVG that goes inline into the page.
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <fstream>

#include <fmt/format.h>

#include "nas/space.hpp"
#include "report/sections.hpp"

namespace nas::report {
namespace {

struct Output {
  int status = -1;
  std::string text;
};

// `dot -Tsvg` of a graph, through a temporary file (the graph can be any size; no shell quoting of it).
Output run_dot(const std::string& graph) {
  char name[] = "/tmp/nas-report-XXXXXX";
  const int fd = mkstemp(name);
  if (fd < 0) return {-1, "cannot create a temporary file"};
  const bool written = ::write(fd, graph.data(), graph.size()) == static_cast<ssize_t>(graph.size());
  ::close(fd);
  Output out;
  if (written) {
    if (FILE* pipe = popen(fmt::format("dot -Tsvg '{}' 2>&1", name).c_str(), "r")) {  // the name is mkstemp's
      std::array<char, 4096> buffer;
      while (std::size_t n = std::fread(buffer.data(), 1, buffer.size(), pipe)) out.text.append(buffer.data(), n);
      const int status = pclose(pipe);
      out.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    } else {
      out.text = "cannot start dot";
    }
  }
  ::unlink(name);
  return out;
}

}  // namespace

std::string cell_diagram(const Space& space, const std::string& genotype) {
  std::string drawing;
  try {
    if (std::system("command -v dot >/dev/null 2>&1") != 0) {
      drawing = "<p class=\"note\">No diagram: Graphviz's <code>dot</code> is not installed (Debian's graphviz; "
                "scripts/setup.sh installs it).</p>";
    } else if (Output svg = run_dot(space.to_dot(genotype)); svg.status != 0 || svg.text.find("<svg") == std::string::npos) {
      drawing = fmt::format("<p class=\"note\">No diagram: dot failed: {}</p>", escape(svg.text.substr(0, 300)));
    } else {
      drawing = svg.text.substr(svg.text.find("<svg"));  // without the XML prolog and doctype
    }
  } catch (const std::exception& e) {
    drawing = fmt::format("<p class=\"note\">No diagram: {}</p>", escape(e.what()));
  }
  return drawing + "<details><summary>genotype</summary><pre>" + escape(genotype) + "</pre></details>";
}

}  // namespace nas::report
