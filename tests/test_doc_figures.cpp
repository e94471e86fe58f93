// The figures the docs show: every image a Markdown file under docs/ (or README.md) links must be a
// committed, readable PNG/SVG/JPEG (make figures regenerates docs/figures/*.png), every kernel
// lesson (docs/kernels/*.md) shows at least one figure and ends with exercises that name the
// command checking them.
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

TEST_SUITE_BEGIN("doc_figures");

namespace fs = std::filesystem;

namespace {

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The text with fenced code blocks (``` ... ```) blanked: an image inside one is an example, not a link.
std::string without_code_blocks(const std::string& text) {
  std::string out;
  std::istringstream in(text);
  bool fenced = false;
  for (std::string line; std::getline(in, line);) {
    const size_t first = line.find_first_not_of(' ');
    const bool fence = first != std::string::npos && line.compare(first, 3, "```") == 0;
    if (fence) fenced = !fenced;
    out += fenced || fence ? "\n" : line + "\n";
  }
  return out;
}

// Image targets of ![alt](target "title") and <img src="target">, URLs left out.
std::vector<std::string> image_links(const std::string& markdown) {
  static const std::regex md(R"(!\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\))");
  static const std::regex html(R"(<img[^>]*\bsrc\s*=\s*["']([^"']+)["'])", std::regex::icase);
  const std::string text = without_code_blocks(markdown);
  std::vector<std::string> out;
  for (const std::regex* re : {&md, &html})
    for (auto it = std::sregex_iterator(text.begin(), text.end(), *re); it != std::sregex_iterator(); ++it) {
      const std::string target = (*it)[1];
      if (target.find("://") == std::string::npos && target.rfind("data:", 0) != 0) out.push_back(target);
    }
  return out;
}

// "" when the file at `path` is an image of its extension's kind; otherwise what is wrong.
std::string image_problem(const fs::path& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) return "missing";
  const std::string head = read_file(path).substr(0, 512);
  if (head.empty()) return "empty";
  const std::string ext = path.extension().string();
  if (ext == ".png" && head.rfind("\x89PNG\r\n\x1a\n", 0) != 0) return "not a PNG (wrong signature)";
  if (ext == ".svg" && head.find("<svg") == std::string::npos && head.find("<?xml") == std::string::npos)
    return "not an SVG";
  if ((ext == ".jpg" || ext == ".jpeg") && head.rfind("\xff\xd8", 0) != 0) return "not a JPEG";
  if (ext != ".png" && ext != ".svg" && ext != ".jpg" && ext != ".jpeg") return "not an image extension";
  return "";
}

// "doc: target (problem)" for every image link of `doc` that does not resolve to an image.
std::vector<std::string> broken_figures(const fs::path& doc, const std::string& markdown, const fs::path& root) {
  std::vector<std::string> out;
  for (const std::string& target : image_links(markdown)) {
    const std::string file = target.substr(0, target.find_first_of("?#"));
    const fs::path resolved = file.rfind('/', 0) == 0 ? root / file.substr(1) : doc.parent_path() / file;
    const std::string problem = image_problem(resolved);
    if (!problem.empty()) out.push_back(fs::relative(doc, root).string() + ": " + target + " (" + problem + ")");
  }
  return out;
}

std::vector<fs::path> docs_with_figures(const fs::path& root) {
  std::vector<fs::path> docs = {root / "README.md"};
  for (const auto& e : fs::recursive_directory_iterator(root / "docs"))
    if (e.is_regular_file() && e.path().extension() == ".md") docs.push_back(e.path());
  std::sort(docs.begin(), docs.end());
  return docs;
}

// List items ("1. " or "- " at the line start, continued by the lines after) that hold a command
// in backticks.
int exercises_with_commands(const std::string& section) {
  static const std::regex item_start(R"(^(\d+\.|-) )");
  std::vector<std::string> items;
  std::istringstream in(section);
  for (std::string line; std::getline(in, line);) {
    if (std::regex_search(line, item_start))
      items.push_back(line);
    else if (!items.empty())
      items.back() += "\n" + line;
  }
  return int(std::count_if(items.begin(), items.end(),
                           [](const std::string& item) { return item.find('`') != std::string::npos; }));
}

std::string join(const std::vector<std::string>& lines) {
  std::string out;
  for (const std::string& l : lines) out += "  " + l + "\n";
  return out;
}

}  // namespace

TEST_CASE("image links are found, URLs and code blocks skipped, and a missing or fake figure is reported") {
  const fs::path dir = fs::temp_directory_path() / "minivl_doc_figures_test";
  fs::remove_all(dir);
  fs::create_directories(dir / "figures");
  std::ofstream(dir / "figures" / "real.png", std::ios::binary) << std::string("\x89PNG\r\n\x1a\n", 8) << "data";
  std::ofstream(dir / "figures" / "fake.png", std::ios::binary) << "GIF89a";
  const std::string doc =
      "# t\n![a tile](figures/real.png)\ntext ![b](figures/missing.png \"title\")\n"
      "<img src=\"figures/fake.png\" width=300>\n![web](https://example.com/x.png)\n"
      "```\n![in code](figures/also_missing.png)\n```\n";
  const std::vector<std::string> links = image_links(doc);
  CHECK(links == std::vector<std::string>{"figures/real.png", "figures/missing.png", "figures/fake.png"});
  const std::vector<std::string> broken = broken_figures(dir / "lesson.md", doc, dir);
  REQUIRE(broken.size() == 2);
  CHECK(broken[0] == "lesson.md: figures/missing.png (missing)");
  CHECK(broken[1] == "lesson.md: figures/fake.png (not a PNG (wrong signature))");
  fs::remove_all(dir);
  CHECK(exercises_with_commands("## Exercises\n1. do x;\n   `make y` checks it\n2. no command\n- z: `cmd`\n") == 2);
}

TEST_CASE("every figure a doc links exists (make figures regenerates docs/figures)") {
  const fs::path root = MINIVL_SOURCE_DIR;
  std::vector<std::string> broken;
  int links = 0;
  for (const fs::path& doc : docs_with_figures(root)) {
    const std::string text = read_file(doc);
    links += int(image_links(text).size());
    for (const std::string& b : broken_figures(doc, text, root)) broken.push_back(b);
  }
  INFO("broken figure links:\n" << join(broken));
  CHECK(broken.empty());
  CHECK(links > 0);
}

TEST_CASE("every kernel lesson shows a figure and ends with exercises that name their checking command") {
  const fs::path root = MINIVL_SOURCE_DIR;
  int lessons = 0;
  for (const auto& e : fs::directory_iterator(root / "docs" / "kernels")) {
    if (e.path().extension() != ".md") continue;
    ++lessons;
    const std::string text = read_file(e.path());
    INFO(e.path().filename().string());
    CHECK(!image_links(text).empty());
    const size_t at = text.find("\n## Exercises");
    REQUIRE_MESSAGE(at != std::string::npos, "no '## Exercises' section");
    CHECK_MESSAGE(text.find("\n## ", at + 1) == std::string::npos, "'## Exercises' is not the last section");
    CHECK(exercises_with_commands(text.substr(at)) >= 2);
  }
  CHECK(lessons >= 4);
}

TEST_SUITE_END();
