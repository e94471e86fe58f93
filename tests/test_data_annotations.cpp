// COCO captions, VQA v2 and JSONL readers: what they read, and errors that name the file and the
// entry for malformed files and missing images (or a skip with a count when asked).
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <string>

#include "core/error.h"
#include "data/annotations.h"
#include "data/image.h"
#include "tests/core_test_util.h"
#include "tests/nn_test_util.h"

namespace fs = std::filesystem;
using namespace minivl::data;
using minivl::testing::error_of;

namespace {

fs::path setup(const std::string& name) {
  const fs::path d = minivl::testing::fresh_temp_dir("annotations_" + name);
  fs::create_directories(d / "img");
  write_png((d / "img" / "a.png").string(), Image(4, 4, 10));
  write_png((d / "img" / "b.png").string(), Image(4, 4, 20));
  return d;
}

void write(const fs::path& p, const std::string& text) { std::ofstream(p) << text; }

bool has(const std::string& s, const std::string& part) {
  if (s.find(part) != std::string::npos) return true;
  MESSAGE("'" << s << "' lacks '" << part << "'");
  return false;
}

}  // namespace

TEST_SUITE("data") {

TEST_CASE("annotations: COCO captions map image ids to files under the json's folder") {
  fs::path d = setup("coco");
  write(d / "caps.json", R"({"images": [{"id": 1, "file_name": "img/a.png"}, {"id": 2, "file_name": "img/b.png"}],
    "annotations": [{"id": 9, "image_id": 2, "caption": "b one"}, {"id": 10, "image_id": 1, "caption": "a one"},
                    {"id": 11, "image_id": 2, "caption": "b two"}]})");
  CaptionSet s = read_coco_captions((d / "caps.json").string());
  REQUIRE(s.samples.size() == 3);
  CHECK(s.samples[0].image_path == (d / "img" / "b.png").string());
  CHECK(s.samples[0].image_id == 2);
  CHECK(s.samples[1].caption == "a one");
  // image_root overrides the folder
  AnnotationOptions o;
  o.image_root = d.string();
  CHECK(read_coco_captions((d / "caps.json").string(), o).samples.size() == 3);
}

TEST_CASE("annotations: malformed COCO files name the file and the entry") {
  fs::path d = setup("coco_bad");
  write(d / "nocap.json", R"({"images": [{"id": 1, "file_name": "img/a.png"}],
    "annotations": [{"image_id": 1, "caption": "ok"}, {"image_id": 1}]})");
  std::string e = error_of([&] { read_coco_captions((d / "nocap.json").string()); });
  CHECK(has(e, "nocap.json"));
  CHECK(has(e, "annotations[1]: missing 'caption'"));

  write(d / "badid.json", R"({"images": [{"id": 1, "file_name": "img/a.png"}],
    "annotations": [{"image_id": 7, "caption": "x"}]})");
  e = error_of([&] { read_coco_captions((d / "badid.json").string()); });
  CHECK(has(e, "annotations[0]: image_id 7 is not in 'images'"));

  write(d / "type.json", R"({"images": [{"id": "1", "file_name": "img/a.png"}], "annotations": []})");
  CHECK(has(error_of([&] { read_coco_captions((d / "type.json").string()); }), "images[0]: 'id' is not an integer"));

  write(d / "syntax.json", R"({"images": [)");
  e = error_of([&] { read_coco_captions((d / "syntax.json").string()); });
  CHECK(has(e, "syntax.json"));
  CHECK(has(e, "invalid JSON"));

  write(d / "nolist.json", R"({"images": []})");
  CHECK(has(error_of([&] { read_coco_captions((d / "nolist.json").string()); }), "no 'annotations' list"));
  CHECK(has(error_of([&] { read_coco_captions((d / "absent.json").string()); }), "absent.json"));
}

TEST_CASE("annotations: a missing image is an error naming it, or skipped and counted") {
  fs::path d = setup("missing");
  write(d / "caps.json", R"({"images": [{"id": 1, "file_name": "img/a.png"}, {"id": 2, "file_name": "img/gone.png"}],
    "annotations": [{"image_id": 1, "caption": "a"}, {"image_id": 2, "caption": "x"}, {"image_id": 2, "caption": "y"}]})");
  std::string e = error_of([&] { read_coco_captions((d / "caps.json").string()); });
  CHECK(has(e, "annotations[1]"));
  CHECK(has(e, "gone.png' does not exist"));
  AnnotationOptions o;
  o.skip_missing_images = true;
  o.quiet = true;
  CaptionSet s = read_coco_captions((d / "caps.json").string(), o);
  CHECK(s.samples.size() == 1);
  CHECK(s.skipped_missing == 2);
}

TEST_CASE("annotations: VQA v2 questions join their annotations; image files follow the pattern") {
  fs::path d = setup("vqa");
  fs::copy_file(d / "img" / "a.png", d / "img" / "COCO_val2014_000000000001.jpg");
  write(d / "q.json", R"({"data_subtype": "val2014", "questions": [
      {"image_id": 1, "question": "what color?", "question_id": 10},
      {"image_id": 1, "question": "how many?", "question_id": 11}]})");
  std::string ten_yes = R"([{"answer": "yes", "answer_confidence": "yes", "answer_id": 1}])";
  write(d / "a.json", R"({"annotations": [
      {"question_id": 11, "image_id": 1, "multiple_choice_answer": "2", "answer_type": "number",
       "answers": [{"answer": "2"}, {"answer": "3"}]},
      {"question_id": 10, "image_id": 1, "multiple_choice_answer": "red", "answers": [{"answer": "red"}]}]})");
  AnnotationOptions o;
  o.image_root = (d / "img").string();
  VqaSet v = read_vqa((d / "q.json").string(), (d / "a.json").string(), o);
  REQUIRE(v.samples.size() == 2);
  CHECK(v.samples[0].image_path == (d / "img" / "COCO_val2014_000000000001.jpg").string());
  CHECK(v.samples[0].multiple_choice_answer == "red");
  CHECK(v.samples[1].answers == std::vector<std::string>{"2", "3"});
  CHECK(v.samples[1].answer_type == "number");
  // Questions alone (a test split) read without answers.
  CHECK(read_vqa((d / "q.json").string(), "", o).samples[0].answers.empty());
  // A question without an annotation, and a bad answer entry, name the files and entries.
  write(d / "a2.json", R"({"annotations": [{"question_id": 10, "image_id": 1, "multiple_choice_answer": "red",
      "answers": [{"answer": "red"}, {"answer": 5}]}]})");
  std::string e = error_of([&] { read_vqa((d / "q.json").string(), (d / "a2.json").string(), o); });
  CHECK(has(e, "a2.json"));
  CHECK(has(e, "annotations[0].answers[1]: 'answer' is not a string"));
  write(d / "a3.json", R"({"annotations": [{"question_id": 10, "image_id": 1, "multiple_choice_answer": "red",
      "answers": []}]})");
  e = error_of([&] { read_vqa((d / "q.json").string(), (d / "a3.json").string(), o); });
  CHECK(has(e, "questions[1]: question_id 11 has no annotation"));
  // The pattern
  CHECK(expand_image_pattern("COCO_{subtype}_{id:012}.jpg", 42, "train2014") == "COCO_train2014_000000000042.jpg");
  CHECK(expand_image_pattern("{id}.png", 7, "") == "7.png");
  CHECK_THROWS_AS(expand_image_pattern("{name}.png", 7, ""), minivl::Error);
}

TEST_CASE("annotations: JSONL pairs resolve paths relative to the file and name bad lines") {
  fs::path d = setup("jsonl");
  write(d / "pairs.jsonl", "{\"image\": \"img/a.png\", \"caption\": \"first\"}\n\n"
                           "{\"image\": \"img/b.png\", \"caption\": \"second\"}\n"
                           "{\"image\": \"img/a.png\", \"caption\": \"third\"}\n");
  CaptionSet s = read_jsonl_captions((d / "pairs.jsonl").string());
  REQUIRE(s.samples.size() == 3);
  CHECK(s.samples[1].image_path == (d / "img" / "b.png").string());
  CHECK(s.samples[2].image_id == s.samples[0].image_id);  // same file, same id
  CHECK(s.samples[1].image_id != s.samples[0].image_id);

  write(d / "bad.jsonl", "{\"image\": \"img/a.png\", \"caption\": \"ok\"}\n{\"image\": \"img/a.png\"}\n");
  std::string e = error_of([&] { read_jsonl_captions((d / "bad.jsonl").string()); });
  CHECK(has(e, "bad.jsonl"));
  CHECK(has(e, "line 2: missing 'caption'"));
  write(d / "bad2.jsonl", "{\"image\": \"img/a.png\", \"caption\": \"ok\"}\nnot json\n");
  CHECK(has(error_of([&] { read_jsonl_captions((d / "bad2.jsonl").string()); }), "line 2: invalid JSON"));
  write(d / "gone.jsonl", "{\"image\": \"img/none.png\", \"caption\": \"x\"}\n");
  CHECK(has(error_of([&] { read_jsonl_captions((d / "gone.jsonl").string()); }), "none.png' does not exist"));
}

}  // TEST_SUITE
