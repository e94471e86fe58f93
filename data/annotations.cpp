#include "data/annotations.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "core/error.h"

namespace minivl::data {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

// Where errors come from: "<kind> '<file>': <entry>: <what>".
struct Source {
  const char* kind;
  std::string path;
};

[[noreturn]] void fail_entry(const Source& s, const std::string& entry, const std::string& what) {
  MINIVL_FAIL(s.kind, " '", s.path, "': ", entry, ": ", what);
}

const json& require(const Source& s, const json& obj, const std::string& entry, const char* key) {
  if (!obj.is_object()) fail_entry(s, entry, "is not an object");
  auto it = obj.find(key);
  if (it == obj.end()) fail_entry(s, entry, std::string("missing '") + key + "'");
  return *it;
}

int64_t require_int(const Source& s, const json& obj, const std::string& entry, const char* key) {
  const json& v = require(s, obj, entry, key);
  if (!v.is_number_integer()) fail_entry(s, entry, std::string("'") + key + "' is not an integer: " + v.dump());
  return v.get<int64_t>();
}

std::string require_string(const Source& s, const json& obj, const std::string& entry, const char* key) {
  const json& v = require(s, obj, entry, key);
  if (!v.is_string()) fail_entry(s, entry, std::string("'") + key + "' is not a string: " + v.dump());
  return v.get<std::string>();
}

std::string optional_string(const json& obj, const char* key) {
  auto it = obj.find(key);
  return it != obj.end() && it->is_string() ? it->get<std::string>() : std::string();
}

const json& require_array(const Source& s, const json& root, const char* key) {
  if (!root.is_object()) MINIVL_FAIL(s.kind, " '", s.path, "': the top level is not an object");
  auto it = root.find(key);
  if (it == root.end() || !it->is_array()) MINIVL_FAIL(s.kind, " '", s.path, "': no '", key, "' list");
  return *it;
}

std::string entry_name(const char* list, size_t i) { return std::string(list) + "[" + std::to_string(i) + "]"; }

std::string resolve(const std::string& root, const std::string& relative) {
  fs::path p(relative);
  if (p.is_relative()) p = fs::path(root) / p;
  return p.lexically_normal().string();
}

std::string root_for(const std::string& file, const AnnotationOptions& options) {
  if (!options.image_root.empty()) return options.image_root;
  fs::path parent = fs::path(file).parent_path();
  return parent.empty() ? std::string(".") : parent.string();
}

// Whether a sample whose image is `image` is kept; with skipping off, a missing image is an error.
class ImageChecker {
 public:
  ImageChecker(const Source& s, const AnnotationOptions& o) : source_(s), options_(o) {}
  bool keep(const std::string& image, const std::string& entry) {
    if (!options_.check_images_exist) return true;
    auto it = exists_.find(image);
    if (it == exists_.end()) it = exists_.emplace(image, fs::is_regular_file(image)).first;
    if (it->second) return true;
    if (!options_.skip_missing_images)
      fail_entry(source_, entry, "image file '" + image + "' does not exist (set skip_missing_images to skip it)");
    ++skipped_;
    return false;
  }
  int64_t finish() const {
    if (skipped_ > 0 && !options_.quiet)
      std::fprintf(stderr, "warning: %s '%s': skipped %lld sample(s) whose image file is missing\n", source_.kind,
                   source_.path.c_str(), static_cast<long long>(skipped_));
    return skipped_;
  }

 private:
  const Source& source_;
  const AnnotationOptions& options_;
  std::unordered_map<std::string, bool> exists_;
  int64_t skipped_ = 0;
};

}  // namespace

json read_json_file(const std::string& path, const std::string& kind) {
  std::ifstream in(path, std::ios::binary);
  MINIVL_CHECK(in.good(), kind, " '", path, "': cannot open it (", fs::exists(path) ? "not readable" : "no such file", ")");
  try {
    return json::parse(in);
  } catch (const json::exception& e) {
    MINIVL_FAIL(kind, " '", path, "': invalid JSON: ", e.what());
  }
}

ScoringFiles read_scoring_files(const std::string& refs_path, const std::string& cands_path,
                                const std::string& refs_what, const std::string& cands_what) {
  ScoringFiles f{read_json_file(refs_path, "score"), read_json_file(cands_path, "score")};
  MINIVL_CHECK(f.refs.is_object() && f.refs.contains("annotations") && f.refs["annotations"].is_array(), "score: ",
               refs_path, " is not ", refs_what, " (no 'annotations' list)");
  MINIVL_CHECK(f.cands.is_array(), "score: ", cands_path, " is not ", cands_what);
  return f;
}

std::string expand_image_pattern(const std::string& pattern, int64_t id, const std::string& subtype) {
  std::string out;
  for (size_t i = 0; i < pattern.size();) {
    if (pattern[i] != '{') {
      out += pattern[i++];
      continue;
    }
    size_t close = pattern.find('}', i);
    MINIVL_CHECK(close != std::string::npos, "image pattern '", pattern, "': unclosed '{'");
    std::string field = pattern.substr(i + 1, close - i - 1);
    if (field == "subtype") {
      out += subtype;
    } else if (field == "id") {
      out += std::to_string(id);
    } else if (field.rfind("id:0", 0) == 0 && field.size() > 4) {
      int width = 0;
      try {
        width = std::stoi(field.substr(4));
      } catch (const std::exception&) {
        MINIVL_FAIL("image pattern '", pattern, "': bad width in '{", field, "}'");
      }
      MINIVL_CHECK(width > 0 && width <= 32, "image pattern '", pattern, "': width ", width, " outside 1..32");
      char buf[64];
      std::snprintf(buf, sizeof buf, "%0*lld", width, static_cast<long long>(id));
      out += buf;
    } else {
      MINIVL_FAIL("image pattern '", pattern, "': unknown field '{", field, "}' (use {id}, {id:0N} or {subtype})");
    }
    i = close + 1;
  }
  return out;
}

CaptionSet read_coco_captions(const std::string& path, const AnnotationOptions& options) {
  const Source src{"COCO captions", path};
  const json root = read_json_file(src.path, src.kind);
  const json& images = require_array(src, root, "images");
  const json& annotations = require_array(src, root, "annotations");
  const std::string image_root = root_for(path, options);

  std::unordered_map<int64_t, std::string> files;  // image id -> resolved path
  for (size_t i = 0; i < images.size(); ++i) {
    const std::string entry = entry_name("images", i);
    const int64_t id = require_int(src, images[i], entry, "id");
    const std::string file = require_string(src, images[i], entry, "file_name");
    if (!files.emplace(id, resolve(image_root, file)).second)
      fail_entry(src, entry, "duplicate image id " + std::to_string(id));
  }
  CaptionSet set;
  ImageChecker checker(src, options);
  set.samples.reserve(annotations.size());
  for (size_t i = 0; i < annotations.size(); ++i) {
    const std::string entry = entry_name("annotations", i);
    const int64_t id = require_int(src, annotations[i], entry, "image_id");
    std::string caption = require_string(src, annotations[i], entry, "caption");
    auto it = files.find(id);
    if (it == files.end()) fail_entry(src, entry, "image_id " + std::to_string(id) + " is not in 'images'");
    if (!checker.keep(it->second, entry)) continue;
    set.samples.push_back({it->second, id, std::move(caption)});
  }
  set.skipped_missing = checker.finish();
  return set;
}

VqaSet read_vqa(const std::string& questions_path, const std::string& annotations_path,
                const AnnotationOptions& options) {
  const Source qsrc{"VQA questions", questions_path};
  const json qroot = read_json_file(qsrc.path, qsrc.kind);
  const json& questions = require_array(qsrc, qroot, "questions");
  const std::string subtype = qroot.is_object() ? optional_string(qroot, "data_subtype") : "";
  std::string pattern = options.image_pattern;
  if (pattern.empty()) pattern = optional_string(qroot, "image_pattern");
  if (pattern.empty()) pattern = "COCO_{subtype}_{id:012}.jpg";
  const std::string image_root = root_for(questions_path, options);

  // question_id -> its annotation, when there are annotations.
  std::unordered_map<int64_t, size_t> by_question;
  json aroot;
  const Source asrc{"VQA annotations", annotations_path};
  if (!annotations_path.empty()) {
    aroot = read_json_file(asrc.path, asrc.kind);
    const json& anns = require_array(asrc, aroot, "annotations");
    for (size_t i = 0; i < anns.size(); ++i) {
      const int64_t qid = require_int(asrc, anns[i], entry_name("annotations", i), "question_id");
      if (!by_question.emplace(qid, i).second)
        fail_entry(asrc, entry_name("annotations", i), "duplicate question_id " + std::to_string(qid));
    }
  }

  VqaSet set;
  ImageChecker checker(qsrc, options);
  set.samples.reserve(questions.size());
  for (size_t i = 0; i < questions.size(); ++i) {
    const std::string entry = entry_name("questions", i);
    VqaSample s;
    s.image_id = require_int(qsrc, questions[i], entry, "image_id");
    s.question_id = require_int(qsrc, questions[i], entry, "question_id");
    s.question = require_string(qsrc, questions[i], entry, "question");
    s.image_path = resolve(image_root, expand_image_pattern(pattern, s.image_id, subtype));
    if (!annotations_path.empty()) {
      auto it = by_question.find(s.question_id);
      if (it == by_question.end())
        fail_entry(qsrc, entry, "question_id " + std::to_string(s.question_id) + " has no annotation in '" +
                                    annotations_path + "'");
      const json& a = aroot["annotations"][it->second];
      const std::string aentry = entry_name("annotations", it->second);
      if (require_int(asrc, a, aentry, "image_id") != s.image_id)
        fail_entry(asrc, aentry, "image_id differs from question " + std::to_string(s.question_id) + "'s");
      s.multiple_choice_answer = require_string(asrc, a, aentry, "multiple_choice_answer");
      s.answer_type = optional_string(a, "answer_type");
      s.question_type = optional_string(a, "question_type");
      const json& answers = require(asrc, a, aentry, "answers");
      if (!answers.is_array()) fail_entry(asrc, aentry, "'answers' is not a list");
      for (size_t k = 0; k < answers.size(); ++k)
        s.answers.push_back(require_string(asrc, answers[k], aentry + ".answers[" + std::to_string(k) + "]", "answer"));
    }
    if (!checker.keep(s.image_path, entry)) continue;
    set.samples.push_back(std::move(s));
  }
  set.skipped_missing = checker.finish();
  return set;
}

CaptionSet read_jsonl_captions(const std::string& path, const AnnotationOptions& options) {
  const Source src{"JSONL captions", path};
  std::ifstream in(path, std::ios::binary);
  MINIVL_CHECK(in.good(), src.kind, " '", path, "': cannot open it (",
               fs::exists(path) ? "not readable" : "no such file", ")");
  const std::string image_root = root_for(path, options);
  CaptionSet set;
  ImageChecker checker(src, options);
  std::unordered_map<std::string, int64_t> ids;  // image path -> id, in order of first appearance
  std::string line;
  for (int64_t number = 1; std::getline(in, line); ++number) {
    const std::string entry = "line " + std::to_string(number);
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    json j;
    try {
      j = json::parse(line);
    } catch (const json::exception& e) {
      fail_entry(src, entry, std::string("invalid JSON: ") + e.what());
    }
    const std::string image = resolve(image_root, require_string(src, j, entry, "image"));
    std::string caption = require_string(src, j, entry, "caption");
    if (!checker.keep(image, entry)) continue;
    const int64_t id = ids.emplace(image, int64_t(ids.size())).first->second;
    set.samples.push_back({image, id, std::move(caption)});
  }
  set.skipped_missing = checker.finish();
  return set;
}

}  // namespace minivl::data
