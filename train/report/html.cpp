// HTML escaping and tables (see html.h).
#include "train/report/html.h"

namespace infini {

std::string html_escape(const std::string& text) {
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

HtmlTable::HtmlTable(std::vector<std::string> header, std::string css_class)
    : header_(std::move(header)), css_class_(std::move(css_class)) {}

void HtmlTable::row(std::vector<std::string> cells) { rows_.push_back(std::move(cells)); }

std::string HtmlTable::str() const {
  std::string s = css_class_.empty() ? "<table>\n" : "<table class=\"" + html_escape(css_class_) + "\">\n";
  s += "<tr>";
  for (const auto& h : header_) s += "<th>" + html_escape(h) + "</th>";
  s += "</tr>\n";
  for (const auto& r : rows_) {
    s += "<tr>";
    for (const auto& c : r) s += "<td>" + html_escape(c) + "</td>";
    s += "</tr>\n";
  }
  return s + "</table>\n";
}

}  // namespace infini
