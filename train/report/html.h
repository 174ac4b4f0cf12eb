// Small HTML helpers for `infini report`: escaping text from files, and tables built row by row.
// Not a template engine and not a parser.
#pragma once
#include <string>
#include <vector>

namespace infini {

// &, <, >, " and ' as entities: safe in text and in quoted attribute values.
std::string html_escape(const std::string& text);

// A <table> with a header row; cells are escaped (numbers formatted by the caller).
class HtmlTable {
 public:
  explicit HtmlTable(std::vector<std::string> header, std::string css_class = "");
  void row(std::vector<std::string> cells);
  bool empty() const { return rows_.empty(); }
  std::string str() const;

 private:
  std::vector<std::string> header_;
  std::vector<std::vector<std::string>> rows_;
  std::string css_class_;
};

}  // namespace infini
