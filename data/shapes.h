#pragma once
// The synthetic shapes world: small images of 1-3 non-overlapping shapes
// (circle, square, triangle, star, hexagon) in 8 colours and two sizes, on a
// plain or lightly textured light background, antialiased, with captions (COCO
// format), questions (VQA v2 format), colour x shape classes and splits.
//
//   minivl gen-shapes --out DIR --n 1000 --seed 1 [--size 64]
//
// Everything about image i is a pure function of (seed, i, size): its Philox
// stream is positions [i * 2^20, (i + 1) * 2^20) of `seed`, split into fixed
// sub-ranges for the scene, captions, questions and texture. So output is
// byte-identical from run to run and independent of the thread count.
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "data/image.h"

namespace minivl::data::shapes {

inline constexpr int kNumKinds = 5;
inline constexpr int kNumColors = 8;
inline constexpr int kNumClasses = kNumKinds * kNumColors;

const char* kind_name(int kind);      // "circle", "square", "triangle", "star", "hexagon"
const char* kind_plural(int kind);    // "circles", ...
struct NamedColor {
  const char* name;
  uint8_t rgb[3];
};
const std::array<NamedColor, kNumColors>& colors();  // red, orange, yellow, green, cyan, blue, purple, brown

// Zero-shot classes "colour shape", class id = color * kNumKinds + kind.
std::string class_name(int color, int kind);
std::vector<std::string> class_names();
// Prompt templates for zero-shot classification; "{}" is the class name.
const std::vector<std::string>& class_templates();

struct ShapeObject {
  int kind = 0;
  int color = 0;
  bool large = false;
  float cx = 0, cy = 0;    // centre, pixels (y down)
  float radius = 0;        // nominal radius, pixels (circle radius; polygons scale from it)
  float rotation = 0;      // radians (small: squares stay squares, not diamonds)
};

struct Scene {
  int64_t id = 0;
  int size = 64;
  std::vector<ShapeObject> objects;  // 1-3, no two with the same colour and shape
  bool textured = false;
  std::array<uint8_t, 3> background{};
};

// Everything below is deterministic in (seed, scene id).
Scene sample_scene(uint64_t seed, int64_t id, int size);
Image render_scene(const Scene& scene, uint64_t seed);
std::vector<std::string> scene_captions(const Scene& scene, uint64_t seed);  // 5

struct QaItem {
  std::string question;
  std::string answer;
  std::string answer_type;    // "yes/no", "number", "other"
  std::string question_type;  // "how many", "what color is the", ...
};
std::vector<QaItem> scene_questions(const Scene& scene, uint64_t seed);

struct GenerateOptions {
  std::string out_dir;
  int64_t n = 1000;
  uint64_t seed = 0;
  int size = 64;
  int threads = 0;                 // 0: OpenMP's default
  double val_fraction = 0.1, test_fraction = 0.1;
};
struct GenerateSummary {
  int64_t images = 0, captions = 0, questions = 0, single_shape = 0;
};
// Writes DIR/images/NNNNNN.png, captions.json, vqa/{questions,annotations}.json, classes.json, splits.json.
GenerateSummary generate_shapes(const GenerateOptions& options);

// The folder a training config names: generated with `want` when captions.json or splits.json is
// missing (or vqa/questions.json, with `need_questions`). An existing folder is used as it is; when
// its captions.json says it was generated with another n, seed or size than `want`, a note on
// stderr says so, since results then differ from the config's. Returns true when it generated.
bool ensure_generated(const GenerateOptions& want, bool need_questions, bool quiet);
// That note: empty when want.out_dir's captions.json records the same n, seed and size as `want`,
// or records none (a folder written by another program).
std::string generated_mismatch(const GenerateOptions& want);
// captions.json and splits.json are there (and vqa/questions.json, with need_questions).
bool holds_files(const std::string& dir, bool need_questions);
// want.out_dir is a complete folder whose captions.json records exactly want's n, seed and size
// (`minivl gen-shapes --unless-current` then has nothing to do).
bool holds_version(const GenerateOptions& want);

}  // namespace minivl::data::shapes
