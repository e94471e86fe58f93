#include "data/shapes.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numeric>
#include <sstream>

#include "core/error.h"
#include "kernels/philox.h"

#include <omp.h>

namespace minivl::data::shapes {
namespace {

constexpr double kPi = 3.14159265358979323846;

// Sub-ranges of image i's stream [i << 20, (i + 1) << 20).
constexpr uint64_t kStreamBits = 20;
constexpr uint64_t kSceneOffset = 0, kCaptionOffset = 4096, kQuestionOffset = 8192, kStyleOffset = 12288,
                   kTextureOffset = 16384;  // texture: one position per pixel, up to 1000 x 1000
constexpr uint64_t kSubRange = 4096;

// Sequential draws from one sub-range of the Philox stream.
class Draws {
 public:
  Draws(uint64_t seed, uint64_t offset, uint64_t limit) : seed_(seed), offset_(offset), limit_(limit) {}
  uint32_t u32() {
    MINIVL_CHECK(i_ < limit_, "gen-shapes: internal error, a scene used more than ", limit_, " random draws");
    return philox_uint32(seed_, offset_, i_++);
  }
  double uniform() { return (u32() >> 8) * (1.0 / 16777216.0); }           // [0, 1)
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  int below(int n) { return int((uint64_t(u32()) * uint64_t(n)) >> 32); }   // [0, n)
  bool chance(double p) { return uniform() < p; }
  template <typename T> const T& pick(const std::vector<T>& v) { return v[below(int(v.size()))]; }

 private:
  uint64_t seed_, offset_, limit_, i_ = 0;
};

Draws draws_for(uint64_t seed, int64_t id, uint64_t sub) {
  return Draws(seed, (uint64_t(id) << kStreamBits) + sub, kSubRange);
}

const char* kKinds[kNumKinds] = {"circle", "square", "triangle", "star", "hexagon"};
const char* kKindsPlural[kNumKinds] = {"circles", "squares", "triangles", "stars", "hexagons"};
// Circumradius of each kind's outline as a multiple of the nominal radius, so
// the kinds look about equally big; also the radius used to keep shapes apart.
const float kExtent[kNumKinds] = {1.0f, 1.2f, 1.35f, 1.3f, 1.05f};

// ---- geometry ----

struct Pt {
  float x, y;
};

std::vector<Pt> outline(const ShapeObject& o) {
  const float R = o.radius * kExtent[o.kind];
  std::vector<Pt> v;
  auto at = [&](double angle, double r) {
    v.push_back({float(o.cx + r * std::cos(angle + o.rotation)), float(o.cy + r * std::sin(angle + o.rotation))});
  };
  const double up = -kPi / 2;  // y points down
  switch (o.kind) {
    case 1: for (int k = 0; k < 4; ++k) at(kPi / 4 + k * kPi / 2, R); break;
    case 2: for (int k = 0; k < 3; ++k) at(up + k * 2 * kPi / 3, R); break;
    case 3: for (int k = 0; k < 10; ++k) at(up + k * kPi / 5, k % 2 ? 0.5 * R : R); break;
    case 4: for (int k = 0; k < 6; ++k) at(up + k * kPi / 3, R); break;
    default: break;
  }
  return v;
}

// Signed distance in pixels from p to the shape's edge (negative inside).
float signed_distance(const ShapeObject& o, const std::vector<Pt>& poly, Pt p) {
  if (o.kind == 0) return std::hypot(p.x - o.cx, p.y - o.cy) - o.radius;
  float best = 1e30f;
  bool inside = false;
  for (size_t i = 0, j = poly.size() - 1; i < poly.size(); j = i++) {
    const Pt a = poly[j], b = poly[i];
    const float ex = b.x - a.x, ey = b.y - a.y, px = p.x - a.x, py = p.y - a.y;
    const float t = std::clamp((px * ex + py * ey) / (ex * ex + ey * ey), 0.0f, 1.0f);
    const float dx = px - t * ex, dy = py - t * ey;
    best = std::min(best, dx * dx + dy * dy);
    if ((a.y > p.y) != (b.y > p.y) && p.x < a.x + (p.y - a.y) * ex / ey) inside = !inside;  // crossing number
  }
  const float d = std::sqrt(best);
  return inside ? -d : d;
}

// ---- language helpers ----

std::string size_word(Draws& d, bool large) {
  static const std::vector<std::string> big = {"large", "big"}, small = {"small", "little"};
  return d.pick(large ? big : small);
}

std::string colour_shape(const ShapeObject& o) {
  return std::string(colors()[o.color].name) + " " + kKinds[o.kind];
}

std::string with_article(const std::string& phrase) {
  static const std::string vowels = "aeiou";
  return (vowels.find(phrase[0]) != std::string::npos ? "an " : "a ") + phrase;
}

std::string join_list(const std::vector<std::string>& items) {
  std::string s;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) s += (i + 1 == items.size()) ? " and " : ", ";
    s += items[i];
  }
  return s;
}

const char* count_word(int n) {
  static const char* w[] = {"zero", "one", "two", "three", "four"};
  return n >= 0 && n <= 4 ? w[n] : "many";
}

// "to the left of", "above", ...: where a is relative to b, by the dominant axis.
std::string relation(const ShapeObject& a, const ShapeObject& b) {
  const float dx = a.cx - b.cx, dy = a.cy - b.cy;
  if (std::fabs(dx) >= std::fabs(dy)) return dx < 0 ? "to the left of" : "to the right of";
  return dy < 0 ? "above" : "below";
}

// "in the top left corner", "at the top", ...: where o is, by thirds of the image.
std::string region(const ShapeObject& o, int size) {
  const float third = size / 3.0f;
  const int col = std::min(2, int(o.cx / third)), row = std::min(2, int(o.cy / third));
  static const char* names[3][3] = {{"in the top left corner", "at the top", "in the top right corner"},
                                    {"on the left", "in the center", "on the right"},
                                    {"in the bottom left corner", "at the bottom", "in the bottom right corner"}};
  return names[row][col];
}

}  // namespace

const char* kind_name(int kind) { return kKinds[kind]; }
const char* kind_plural(int kind) { return kKindsPlural[kind]; }

const std::array<NamedColor, kNumColors>& colors() {
  // Far apart in hue or lightness, and all clearly off the light grey backgrounds.
  static const std::array<NamedColor, kNumColors> c = {{
      {"red", {220, 30, 30}},    {"orange", {245, 140, 0}}, {"yellow", {235, 205, 0}},
      {"green", {30, 150, 50}},  {"cyan", {0, 185, 205}},   {"blue", {30, 70, 220}},
      {"purple", {130, 50, 190}}, {"brown", {120, 70, 30}},
  }};
  return c;
}

std::string class_name(int color, int kind) { return std::string(colors()[color].name) + " " + kKinds[kind]; }

std::vector<std::string> class_names() {
  std::vector<std::string> names;
  for (int c = 0; c < kNumColors; ++c)
    for (int k = 0; k < kNumKinds; ++k) names.push_back(class_name(c, k));
  return names;
}

const std::vector<std::string>& class_templates() {
  static const std::vector<std::string> t = {"a {}.", "a picture of a {}.", "a drawing of a {}.",
                                             "an image of a {}.", "a {} on a grey background."};
  return t;
}

Scene sample_scene(uint64_t seed, int64_t id, int size) {
  MINIVL_CHECK(size >= 16 && size <= 1000, "gen-shapes: image size ", size, " is outside 16..1000");
  Draws d = draws_for(seed, id, kSceneOffset);
  Scene s;
  s.id = id;
  s.size = size;
  const double u = d.uniform();
  const int count = u < 0.4 ? 1 : u < 0.7 ? 2 : 3;
  s.textured = d.chance(0.5);
  const int grey = 200 + d.below(46);
  for (int c = 0; c < 3; ++c) s.background[c] = uint8_t(std::clamp(grey + d.below(13) - 6, 0, 255));

  std::vector<ShapeObject> wanted;
  for (int k = 0; k < count; ++k) {
    ShapeObject o;
    do {
      o.kind = d.below(kNumKinds);
      o.color = d.below(kNumColors);
    } while (std::any_of(wanted.begin(), wanted.end(),
                         [&](const ShapeObject& w) { return w.kind == o.kind && w.color == o.color; }));
    o.large = d.chance(0.5);
    o.rotation = float(d.uniform(-0.3, 0.3));  // about +-17 degrees
    wanted.push_back(o);
  }
  // Place the biggest first; a shape that finds no room after 200 tries shrinks, then is dropped.
  std::stable_sort(wanted.begin(), wanted.end(), [](const ShapeObject& a, const ShapeObject& b) {
    return (a.large ? 1.7f : 1.0f) * kExtent[a.kind] > (b.large ? 1.7f : 1.0f) * kExtent[b.kind];
  });
  const float gap = 0.04f * size;
  for (ShapeObject o : wanted) {
    bool placed = false;
    for (int pass = 0; pass < 2 && !placed; ++pass) {
      if (pass == 1) {
        if (!o.large) break;
        o.large = false;
      }
      o.radius = float(size * (o.large ? 0.17 : 0.10) * d.uniform(0.95, 1.05));
      const float extent = o.radius * kExtent[o.kind];
      for (int attempt = 0; attempt < 200 && !placed; ++attempt) {
        o.cx = float(d.uniform(extent + 1, size - extent - 1));
        o.cy = float(d.uniform(extent + 1, size - extent - 1));
        placed = std::all_of(s.objects.begin(), s.objects.end(), [&](const ShapeObject& p) {
          return std::hypot(o.cx - p.cx, o.cy - p.cy) >= extent + p.radius * kExtent[p.kind] + gap;
        });
      }
    }
    if (placed) s.objects.push_back(o);
  }
  // Reading order: left to right, so object order does not depend on placement order.
  std::stable_sort(s.objects.begin(), s.objects.end(),
                   [](const ShapeObject& a, const ShapeObject& b) { return a.cx < b.cx; });
  return s;
}

Image render_scene(const Scene& scene, uint64_t seed) {
  const int n = scene.size;
  Image img(n, n);
  // Background: plain, or a gentle gradient (+-8 levels across the image) plus per-pixel noise (+-6).
  Draws d = draws_for(seed, scene.id, kStyleOffset);
  const double angle = d.uniform(0, 2 * kPi), amp = scene.textured ? 8.0 : 0.0;
  const double gx = std::cos(angle) * amp / n, gy = std::sin(angle) * amp / n;
  // Noise word for pixel i is stream position tex + i; tex is a multiple of 4, so one Philox block serves 4 pixels.
  const uint64_t tex = (uint64_t(scene.id) << kStreamBits) + kTextureOffset;
  const PhiloxKey key = philox_key(seed);
  for (int64_t i = 0; i < int64_t(n) * n; i += 4) {
    uint32_t words[4] = {0, 0, 0, 0};
    if (scene.textured) {
      const uint64_t block = (tex + uint64_t(i)) >> 2;
      PhiloxCounter w = philox4x32_10({uint32_t(block), uint32_t(block >> 32), 0u, 0u}, key);
      words[0] = w.c0, words[1] = w.c1, words[2] = w.c2, words[3] = w.c3;
    }
    for (int64_t j = i; j < std::min<int64_t>(i + 4, int64_t(n) * n); ++j) {
      const int x = int(j % n), y = int(j / n);
      const int noise = scene.textured ? int(words[j - i] % 13) - 6 : 0;
      const double g = (x - n / 2.0) * gx + (y - n / 2.0) * gy;
      for (int c = 0; c < 3; ++c)
        img.pixels[size_t(j) * 3 + c] = uint8_t(std::clamp(int(std::lround(scene.background[c] + g)) + noise, 0, 255));
    }
  }
  // Shapes: coverage = clamp(0.5 - signed distance, 0, 1), blended over the background.
  for (const ShapeObject& o : scene.objects) {
    const std::vector<Pt> poly = outline(o);
    const float extent = o.radius * kExtent[o.kind] + 1.5f;
    const int x0 = std::max(0, int(std::floor(o.cx - extent))), x1 = std::min(n - 1, int(std::ceil(o.cx + extent)));
    const int y0 = std::max(0, int(std::floor(o.cy - extent))), y1 = std::min(n - 1, int(std::ceil(o.cy + extent)));
    const uint8_t* col = colors()[o.color].rgb;
    for (int y = y0; y <= y1; ++y) {
      for (int x = x0; x <= x1; ++x) {
        const float a = std::clamp(0.5f - signed_distance(o, poly, {x + 0.5f, y + 0.5f}), 0.0f, 1.0f);
        if (a <= 0.0f) continue;
        uint8_t* p = &img.at(x, y, 0);
        for (int c = 0; c < 3; ++c) p[c] = uint8_t(std::lround(p[c] * (1.0f - a) + col[c] * a));
      }
    }
  }
  return img;
}

std::vector<std::string> scene_captions(const Scene& scene, uint64_t seed) {
  Draws d = draws_for(seed, scene.id, kCaptionOffset);
  const auto& objs = scene.objects;
  const int n = int(objs.size());
  auto full = [&](const ShapeObject& o) { return with_article(size_word(d, o.large) + " " + colour_shape(o)); };
  auto plain = [&](const ShapeObject& o) { return with_article(colour_shape(o)); };
  const std::string bg = scene.textured ? "textured" : "plain";
  std::vector<std::string> caps;

  // 1. the list of shapes.
  {
    std::vector<std::string> items;
    for (const auto& o : objs) items.push_back(full(o));
    static const std::vector<std::string> frames = {"{}.", "a picture of {}.", "an image with {}.",
                                                    "{} on a {bg} background."};
    std::string f = d.pick(frames), list = join_list(items);
    f.replace(f.find("{}"), 2, list);
    if (size_t p = f.find("{bg}"); p != std::string::npos) f.replace(p, 4, bg);
    caps.push_back(f);
  }
  // 2. counts: of shapes, and of each kind.
  if (n == 1) {
    caps.push_back(d.chance(0.5) ? "a single " + colour_shape(objs[0]) + "." : "one shape: " + full(objs[0]) + ".");
  } else {
    std::vector<std::string> groups;
    for (int k = 0; k < kNumKinds; ++k) {
      int c = int(std::count_if(objs.begin(), objs.end(), [&](const ShapeObject& o) { return o.kind == k; }));
      if (c > 0) groups.push_back(std::string(count_word(c)) + " " + (c > 1 ? kKindsPlural[k] : kKinds[k]));
    }
    caps.push_back(d.chance(0.5) ? std::string(count_word(n)) + " shapes: " + join_list(groups) + "."
                                 : "there are " + std::string(count_word(n)) + " shapes, " + join_list(groups) + ".");
  }
  // 3. a relation (or, alone, where it is).
  auto relation_caption = [&]() {
    int a = d.below(n), b = (a + 1 + d.below(n - 1)) % n;
    return full(objs[a]) + " " + relation(objs[a], objs[b]) + " " + plain(objs[b]) + ".";
  };
  if (n == 1) caps.push_back(full(objs[0]) + " " + region(objs[0], scene.size) + " of the image.");
  else caps.push_back(relation_caption());
  // 4. colours named shape by shape.
  if (n == 1) {
    caps.push_back("a " + std::string(kKinds[objs[0].kind]) + " colored " + colors()[objs[0].color].name +
                   " on a " + bg + " background.");
  } else {
    std::vector<std::string> items;
    for (const auto& o : objs) items.push_back(std::string("a ") + kKinds[o.kind] + " in " + colors()[o.color].name);
    caps.push_back(join_list(items) + ".");
  }
  // 5. sizes compared (or, alone, its size spelled out).
  if (n == 1) {
    caps.push_back("the " + colour_shape(objs[0]) + " is " + (objs[0].large ? "large." : "small."));
  } else {
    int a = d.below(n), b = (a + 1 + d.below(n - 1)) % n;
    const auto &A = objs[a], &B = objs[b];
    std::string cmp = A.large == B.large ? "the same size as" : A.large ? "bigger than" : "smaller than";
    caps.push_back("the " + colour_shape(A) + " is " + cmp + " the " + colour_shape(B) + ".");
  }
  return caps;
}

std::vector<QaItem> scene_questions(const Scene& scene, uint64_t seed) {
  Draws d = draws_for(seed, scene.id, kQuestionOffset);
  const auto& objs = scene.objects;
  const int n = int(objs.size());
  std::vector<QaItem> qs;
  auto yes_no = [](bool b) { return std::string(b ? "yes" : "no"); };
  auto count_kind = [&](int k) {
    return int(std::count_if(objs.begin(), objs.end(), [&](const ShapeObject& o) { return o.kind == k; }));
  };
  auto count_colour = [&](int c) {
    return int(std::count_if(objs.begin(), objs.end(), [&](const ShapeObject& o) { return o.color == c; }));
  };

  qs.push_back({"how many shapes are there?", std::to_string(n), "number", "how many"});
  {
    int k = d.chance(0.5) ? objs[d.below(n)].kind : d.below(kNumKinds);
    qs.push_back({std::string("how many ") + kKindsPlural[k] + " are there?", std::to_string(count_kind(k)),
                  "number", "how many"});
  }
  {  // colour of a shape named by its kind (or by size and kind) alone
    const ShapeObject& o = objs[d.below(n)];
    std::string name = kKinds[o.kind];
    if (count_kind(o.kind) > 1) name = std::string(o.large ? "large " : "small ") + name;
    bool unique = std::count_if(objs.begin(), objs.end(), [&](const ShapeObject& p) {
                    return p.kind == o.kind && (count_kind(o.kind) == 1 || p.large == o.large);
                  }) == 1;
    if (unique) qs.push_back({"what color is the " + name + "?", colors()[o.color].name, "other", "what color is the"});
  }
  {  // shape of the object named by its colour
    const ShapeObject& o = objs[d.below(n)];
    if (count_colour(o.color) == 1)
      qs.push_back({std::string("what shape is the ") + colors()[o.color].name + " object?", kKinds[o.kind], "other",
                    "what shape is the"});
  }
  {  // existence, half present, half absent
    int c, k;
    if (d.chance(0.5)) {
      const ShapeObject& o = objs[d.below(n)];
      c = o.color, k = o.kind;
    } else {
      do {
        c = d.below(kNumColors), k = d.below(kNumKinds);
      } while (std::any_of(objs.begin(), objs.end(), [&](const ShapeObject& o) { return o.kind == k && o.color == c; }));
    }
    bool present = std::any_of(objs.begin(), objs.end(), [&](const ShapeObject& o) { return o.kind == k && o.color == c; });
    qs.push_back({"is there " + with_article(class_name(c, k)) + "?", yes_no(present), "yes/no", "is there a"});
  }
  if (n >= 2) {  // a relation on an axis where the two centres are clearly apart
    int a = d.below(n), b = (a + 1 + d.below(n - 1)) % n;
    const auto &A = objs[a], &B = objs[b];
    const float dx = A.cx - B.cx, dy = A.cy - B.cy, clear = 0.1f * scene.size;
    const bool horizontal = std::fabs(dx) >= std::fabs(dy);
    if (std::fabs(horizontal ? dx : dy) >= clear) {
      const bool ask_first = d.chance(0.5);  // "left of" / "above", or the opposite word
      std::string rel = horizontal ? (ask_first ? "to the left of" : "to the right of") : (ask_first ? "above" : "below");
      const bool truth = (horizontal ? dx < 0 : dy < 0) == ask_first;
      qs.push_back({"is the " + colour_shape(A) + " " + rel + " the " + colour_shape(B) + "?", yes_no(truth), "yes/no",
                    "is the"});
    }
  } else {
    const ShapeObject& o = objs[0];
    qs.push_back({"is the " + colour_shape(o) + " large or small?", o.large ? "large" : "small", "other", "is the"});
  }
  return qs;
}

// ---- the data set on disk ----

namespace {

using ojson = nlohmann::ordered_json;

void write_json(const std::filesystem::path& path, const ojson& j) {
  const std::filesystem::path tmp = path.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    MINIVL_CHECK(out.good(), "gen-shapes: cannot write '", tmp.string(), "'");
    out << j.dump() << "\n";  // compact: the VQA files are large
    MINIVL_CHECK(out.good(), "gen-shapes: error writing '", tmp.string(), "'");
  }
  std::filesystem::rename(tmp, path);
}

double round2(double v) { return std::round(v * 100.0) / 100.0; }

std::string image_file(int64_t id) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%06lld.png", static_cast<long long>(id));
  return buf;
}

}  // namespace

GenerateSummary generate_shapes(const GenerateOptions& opt) {
  namespace fs = std::filesystem;
  MINIVL_CHECK(!opt.out_dir.empty(), "gen-shapes: --out is empty");
  MINIVL_CHECK(opt.n > 0 && opt.n < (int64_t(1) << 40), "gen-shapes: --n ", opt.n, " must be in 1..2^40");
  MINIVL_CHECK(opt.size >= 16 && opt.size <= 1000, "gen-shapes: --size ", opt.size, " is outside 16..1000");
  MINIVL_CHECK(opt.val_fraction >= 0 && opt.test_fraction >= 0 && opt.val_fraction + opt.test_fraction <= 1,
               "gen-shapes: val and test fractions must be >= 0 and sum to at most 1");
  const fs::path dir(opt.out_dir);
  fs::create_directories(dir / "images");
  fs::create_directories(dir / "vqa");

  const int64_t n = opt.n;
  std::vector<Scene> scenes(n);
  std::vector<std::vector<std::string>> captions(n);
  std::vector<std::vector<QaItem>> questions(n);
  std::vector<std::string> errors(n);
  // Each image is independent and writes its own file; results go to their own slots.
  const int threads = opt.threads > 0 ? opt.threads : 0;
#pragma omp parallel for schedule(dynamic, 16) if (threads != 1) num_threads(threads > 0 ? threads : omp_get_max_threads())
  for (int64_t i = 0; i < n; ++i) {
    try {
      scenes[i] = sample_scene(opt.seed, i, opt.size);
      write_png((dir / "images" / image_file(i)).string(), render_scene(scenes[i], opt.seed));
      captions[i] = scene_captions(scenes[i], opt.seed);
      questions[i] = scene_questions(scenes[i], opt.seed);
    } catch (const std::exception& e) {
      errors[i] = e.what();
    }
  }
  for (const std::string& e : errors) MINIVL_CHECK(e.empty(), e);

  GenerateSummary summary;
  summary.images = n;
  const ojson info = {{"description", "minivl synthetic shapes world"}, {"version", "1"},
                      {"seed", opt.seed}, {"size", opt.size}, {"n", n}};

  // COCO captions.
  ojson images = ojson::array(), annotations = ojson::array();
  for (int64_t i = 0; i < n; ++i) {
    ojson objects = ojson::array();
    for (const ShapeObject& o : scenes[i].objects) {
      const double e = o.radius * kExtent[o.kind];
      objects.push_back({{"shape", kKinds[o.kind]}, {"color", colors()[o.color].name},
                         {"size", o.large ? "large" : "small"}, {"center", {round2(o.cx), round2(o.cy)}},
                         {"bbox", {round2(o.cx - e), round2(o.cy - e), round2(2 * e), round2(2 * e)}}});
    }
    images.push_back({{"id", i}, {"file_name", "images/" + image_file(i)}, {"width", opt.size},
                      {"height", opt.size}, {"background", scenes[i].textured ? "textured" : "plain"},
                      {"objects", objects}});
    for (size_t k = 0; k < captions[i].size(); ++k)
      annotations.push_back({{"id", i * 5 + int64_t(k)}, {"image_id", i}, {"caption", captions[i][k]}});
    summary.captions += int64_t(captions[i].size());
  }
  write_json(dir / "captions.json",
             {{"info", info}, {"licenses", ojson::array()}, {"images", images}, {"annotations", annotations}});

  // VQA v2: questions and annotations; question_id = image_id * 10 + k.
  ojson qlist = ojson::array(), alist = ojson::array();
  for (int64_t i = 0; i < n; ++i) {
    for (size_t k = 0; k < questions[i].size(); ++k) {
      const QaItem& q = questions[i][k];
      const int64_t qid = i * 10 + int64_t(k);
      qlist.push_back({{"image_id", i}, {"question", q.question}, {"question_id", qid}});
      ojson answers = ojson::array();
      for (int a = 1; a <= 10; ++a)
        answers.push_back({{"answer", q.answer}, {"answer_confidence", "yes"}, {"answer_id", a}});
      alist.push_back({{"question_type", q.question_type}, {"multiple_choice_answer", q.answer},
                       {"answers", answers}, {"image_id", i}, {"answer_type", q.answer_type},
                       {"question_id", qid}});
    }
    summary.questions += int64_t(questions[i].size());
  }
  // image_pattern is minivl's extension: where an image_id's file is, relative to this file.
  write_json(dir / "vqa" / "questions.json",
             {{"info", info}, {"task_type", "Open-Ended"}, {"data_type", "shapes"}, {"data_subtype", "shapes"},
              {"license", ojson::object()}, {"image_pattern", "../images/{id:06}.png"}, {"questions", qlist}});
  write_json(dir / "vqa" / "annotations.json",
             {{"info", info}, {"license", ojson::object()}, {"data_subtype", "shapes"}, {"annotations", alist}});

  // Zero-shot classes: single-shape images only.
  ojson labelled = ojson::array();
  for (int64_t i = 0; i < n; ++i) {
    if (scenes[i].objects.size() != 1) continue;
    const ShapeObject& o = scenes[i].objects[0];
    const int label = o.color * kNumKinds + o.kind;
    labelled.push_back({{"image_id", i}, {"file_name", "images/" + image_file(i)}, {"label", label},
                        {"class", class_name(o.color, o.kind)}});
    ++summary.single_shape;
  }
  write_json(dir / "classes.json",
             {{"classes", class_names()}, {"templates", class_templates()}, {"images", labelled}});

  // Splits: ids ordered by a Philox key from a range no image uses, then cut.
  std::vector<int64_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  auto key = [&](int64_t id) { return philox_uint32(opt.seed, uint64_t(1) << 62, uint64_t(id)); };
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
    uint32_t ka = key(a), kb = key(b);
    return ka != kb ? ka < kb : a < b;
  });
  const int64_t n_val = int64_t(std::llround(n * opt.val_fraction)), n_test = int64_t(std::llround(n * opt.test_fraction));
  std::vector<int64_t> train(order.begin(), order.end() - n_val - n_test), val(order.end() - n_val - n_test, order.end() - n_test),
      test(order.end() - n_test, order.end());
  for (auto* v : {&train, &val, &test}) std::sort(v->begin(), v->end());
  write_json(dir / "splits.json", {{"train", train}, {"val", val}, {"test", test}});
  return summary;
}

namespace {

// The "info" object at the head of a generated captions.json ({"info":{...},"licenses":...), read
// without parsing the whole file; null when the file does not start that way.
ojson generated_info(const std::filesystem::path& captions) {
  std::ifstream in(captions, std::ios::binary);
  std::string head(4096, '\0');
  in.read(head.data(), std::streamsize(head.size()));
  head.resize(size_t(in.gcount()));
  constexpr size_t npos = std::string::npos;
  const size_t key = head.find("\"info\"");
  const size_t begin = key == npos ? npos : head.find('{', key);
  const size_t end = begin == npos ? npos : head.find('}', begin);  // info holds no nested objects
  if (end == npos) return nullptr;
  const ojson info = ojson::parse(head.substr(begin, end - begin + 1), nullptr, /*allow_exceptions=*/false);
  return info.is_object() ? info : ojson(nullptr);
}

// The note of generated_mismatch for a recorded `info`: empty when no key it records differs from want.
std::string mismatch_note(const ojson& info, const GenerateOptions& want) {
  if (!info.is_object()) return "";
  const auto differs = [&](const char* key, int64_t v) { return info.contains(key) && info[key] != v; };
  if (!differs("n", want.n) && !differs("seed", int64_t(want.seed)) && !differs("size", want.size)) return "";
  std::ostringstream s;
  s << want.out_dir << " holds " << info.value("n", ojson()).dump() << " images of " << info.value("size", ojson()).dump()
    << " px (seed " << info.value("seed", ojson()).dump() << "), not the " << want.n << " of " << want.size
    << " px (seed " << want.seed << ") that data.generate_* ask for; using it as it is (delete the folder to regenerate it)";
  return s.str();
}

}  // namespace

std::string generated_mismatch(const GenerateOptions& want) {
  return mismatch_note(generated_info(std::filesystem::path(want.out_dir) / "captions.json"), want);
}

bool holds_files(const std::string& dir, bool need_questions) {
  namespace fs = std::filesystem;
  const fs::path d(dir);
  return fs::exists(d / "captions.json") && fs::exists(d / "splits.json") &&
         (!need_questions || fs::exists(d / "vqa" / "questions.json"));
}

bool holds_version(const GenerateOptions& want) {
  const ojson info = generated_info(std::filesystem::path(want.out_dir) / "captions.json");
  const bool records_all = info.is_object() && info.contains("n") && info.contains("seed") && info.contains("size");
  return holds_files(want.out_dir, /*need_questions=*/true) && records_all && mismatch_note(info, want).empty();
}

bool ensure_generated(const GenerateOptions& want, bool need_questions, bool quiet) {
  if (!holds_files(want.out_dir, need_questions)) {
    if (!quiet) std::printf("generating the shapes world: %lld images of %d px into %s\n", (long long)want.n, want.size,
                            want.out_dir.c_str());
    const auto t0 = std::chrono::steady_clock::now();
    generate_shapes(want);
    if (!quiet)
      std::printf("  done in %.1fs\n", std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    return true;
  }
  const std::string note = generated_mismatch(want);
  if (!note.empty()) std::fprintf(stderr, "note: %s\n", note.c_str());
  return false;
}

}  // namespace minivl::data::shapes
