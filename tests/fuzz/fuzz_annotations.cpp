// libFuzzer target: data/annotations.* (COCO captions, VQA v2 questions + annotations, JSONL).
// The first byte picks the reader; for VQA the rest is split at "\n@@@\n" into the two files.
// Images are not checked (check_images_exist = false): the parsers are the target.
#include <exception>

#include "data/annotations.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace fz = minivl::fuzz;
  using namespace minivl::data;
  if (size < 1) return 0;
  const int mode = data[0] % 3;
  const std::string_view body(reinterpret_cast<const char*>(data + 1), size - 1);
  AnnotationOptions options;
  options.image_root = "/nonexistent";
  options.check_images_exist = false;
  options.quiet = true;
  try {
    if (mode == 0) {
      (void)read_coco_captions(fz::write_scratch("captions.json", body), options);
    } else if (mode == 1) {
      auto [questions, annotations] = fz::split_at(body, "\n@@@\n");
      const std::string q = fz::write_scratch("questions.json", questions);
      const std::string a = annotations.empty() ? std::string() : fz::write_scratch("annotations.json", annotations);
      (void)read_vqa(q, a, options);
    } else {
      (void)read_jsonl_captions(fz::write_scratch("pairs.jsonl", body), options);
    }
  } catch (const std::exception&) {
  }
  return 0;
}
