#pragma once
// Readers for the annotation formats users already have:
//   - COCO captions JSON: {"images": [{"id", "file_name"}], "annotations": [{"image_id", "caption"}]}
//   - VQA v2: questions JSON {"questions": [{"image_id", "question", "question_id"}]} and
//     annotations JSON {"annotations": [{"question_id", "image_id", "answers": [{"answer"}],
//     "multiple_choice_answer", "answer_type"}]}
//   - JSONL image-text pairs: one {"image": "path", "caption": "..."} per line, paths relative to the file.
// Malformed files give an error naming the file and the entry ("annotations[12]: 'caption' is not a
// string", "line 7: ..."). A missing image file is an error naming it, or, with
// skip_missing_images, the sample is dropped, counted, and one warning is printed per file.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/error.h"

namespace minivl::data {

struct AnnotationOptions {
  // Folder image paths are relative to; empty = the annotation file's folder.
  std::string image_root;
  // VQA only: the file of an image id, relative to image_root, with "{id}" or "{id:0N}" (zero-padded to N)
  // and "{subtype}" placeholders. Empty: the questions file's "image_pattern" (minivl's extension), else
  // COCO's "COCO_{subtype}_{id:012}.jpg".
  std::string image_pattern;
  bool check_images_exist = true;    // stat every image file while reading
  bool skip_missing_images = false;  // drop samples whose image is missing instead of failing
  bool quiet = false;                // no warning line for skipped images
};

struct CaptionSample {
  std::string image_path;
  int64_t image_id = -1;
  std::string caption;
};

struct VqaSample {
  std::string image_path;
  int64_t image_id = -1;
  int64_t question_id = -1;
  std::string question;
  std::string multiple_choice_answer;  // empty when no annotations file was given
  std::string answer_type;
  std::string question_type;
  std::vector<std::string> answers;    // usually 10
};

struct CaptionSet {
  std::vector<CaptionSample> samples;  // in file order
  int64_t skipped_missing = 0;
};
struct VqaSet {
  std::vector<VqaSample> samples;      // in the questions file's order
  int64_t skipped_missing = 0;
};

CaptionSet read_coco_captions(const std::string& path, const AnnotationOptions& options = {});
// annotations_path may be empty (test questions come without answers).
VqaSet read_vqa(const std::string& questions_path, const std::string& annotations_path,
                const AnnotationOptions& options = {});
CaptionSet read_jsonl_captions(const std::string& path, const AnnotationOptions& options = {});

// A whole JSON file. Errors say `kind` and the path: "KIND 'PATH': cannot open it (no such file)",
// "KIND 'PATH': invalid JSON: ...".
nlohmann::json read_json_file(const std::string& path, const std::string& kind);
// read_json_file, then `convert(json)`; a json::exception from convert (a missing key, a value of
// the wrong type) becomes "KIND 'PATH': <what>" too, instead of a bare parser message.
template <typename Convert>
auto read_json_file_as(const std::string& path, const std::string& kind, Convert&& convert) {
  const nlohmann::json j = read_json_file(path, kind);
  try {
    return convert(j);
  } catch (const nlohmann::json::exception& e) {
    MINIVL_FAIL(kind, " '", path, "': ", e.what());
  }
}

// The two files `minivl score` compares, each read with read_json_file(path, "score"): refs, an
// object with an "annotations" list (else "score: REFS is not REFS_WHAT (no 'annotations' list)"),
// and cands, a list of results (else "score: CANDS is not CANDS_WHAT").
struct ScoringFiles {
  nlohmann::json refs, cands;
};
ScoringFiles read_scoring_files(const std::string& refs_path, const std::string& cands_path,
                                const std::string& refs_what, const std::string& cands_what);

// "{id:06}" with id 42 -> "000042"; "{subtype}" -> subtype. Errors name `pattern`.
std::string expand_image_pattern(const std::string& pattern, int64_t id, const std::string& subtype);

}  // namespace minivl::data
