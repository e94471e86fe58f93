// The synthetic shapes world: byte-identical output for the same arguments (whatever the thread
// count), valid COCO / VQA v2 / class-list JSON that the readers accept, and images that show
// what the annotations say.
#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <cmath>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>

#include "core/tensor_io.h"
#include "data/annotations.h"
#include "data/dataset.h"
#include "data/image.h"
#include "data/shapes.h"

namespace fs = std::filesystem;
using namespace minivl::data;
using nlohmann::json;

namespace {

fs::path fresh_dir(const std::string& name) {
  fs::path d = fs::temp_directory_path() / ("minivl_test_shapes_" + name);
  fs::remove_all(d);
  return d;
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

json load(const fs::path& p) { return json::parse(slurp(p)); }

// Every regular file under `dir`, relative path -> bytes.
std::map<std::string, std::string> tree(const fs::path& dir) {
  std::map<std::string, std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file()) out[fs::relative(e.path(), dir).string()] = slurp(e.path());
  return out;
}

}  // namespace

TEST_SUITE("data") {

TEST_CASE("shapes: same arguments give byte-identical output, with 1 thread or several") {
  shapes::GenerateOptions o;
  o.n = 24;
  o.seed = 11;
  o.out_dir = fresh_dir("a").string();
  o.threads = 1;
  shapes::generate_shapes(o);
  o.out_dir = fresh_dir("b").string();
  o.threads = 3;
  shapes::generate_shapes(o);
  auto a = tree(fs::temp_directory_path() / "minivl_test_shapes_a");
  auto b = tree(fs::temp_directory_path() / "minivl_test_shapes_b");
  CHECK(a.size() == 24 + 5);
  CHECK(a == b);
  // A different seed gives different images.
  o.out_dir = fresh_dir("c").string();
  o.seed = 12;
  shapes::generate_shapes(o);
  auto c = tree(o.out_dir);
  CHECK(c["images/000000.png"] != a["images/000000.png"]);
}

TEST_CASE("shapes: COCO captions, VQA v2 and class files are valid and consistent") {
  shapes::GenerateOptions o;
  o.n = 40;
  o.seed = 5;
  o.out_dir = fresh_dir("formats").string();
  shapes::GenerateSummary s = shapes::generate_shapes(o);
  const fs::path d = o.out_dir;

  json caps = load(d / "captions.json");
  REQUIRE(caps["images"].size() == 40);
  REQUIRE(caps["annotations"].size() == 200);  // 5 per image
  std::map<int64_t, std::set<std::string>> per_image;
  std::set<std::string> distinct;
  for (const auto& a : caps["annotations"]) {
    CHECK(a["caption"].is_string());
    per_image[a["image_id"].get<int64_t>()].insert(a["caption"].get<std::string>());
    distinct.insert(a["caption"].get<std::string>());
  }
  CHECK(per_image.size() == 40);
  for (const auto& [id, set] : per_image) CHECK(set.size() == 5);  // 5 different captions per image
  CHECK(distinct.size() > 150);                                    // and varied across images
  for (const auto& img : caps["images"]) {
    CHECK(img["objects"].size() >= 1);
    CHECK(img["objects"].size() <= 3);
    CHECK(fs::exists(d / img["file_name"].get<std::string>()));
  }

  json q = load(d / "vqa" / "questions.json"), a = load(d / "vqa" / "annotations.json");
  REQUIRE(q["questions"].size() == a["annotations"].size());
  CHECK(int64_t(q["questions"].size()) == s.questions);
  std::set<std::string> types;
  for (const auto& ann : a["annotations"]) {
    CHECK(ann["answers"].size() == 10);
    CHECK(ann["multiple_choice_answer"] == ann["answers"][0]["answer"]);
    types.insert(ann["answer_type"].get<std::string>());
  }
  CHECK(types == std::set<std::string>{"number", "other", "yes/no"});

  // The readers accept all of it.
  CaptionSet cs = read_coco_captions((d / "captions.json").string());
  CHECK(cs.samples.size() == 200);
  CHECK(cs.samples[0].image_path == (d / "images" / "000000.png").lexically_normal().string());
  VqaSet vs = read_vqa((d / "vqa" / "questions.json").string(), (d / "vqa" / "annotations.json").string());
  CHECK(int64_t(vs.samples.size()) == s.questions);
  CHECK(vs.samples[0].image_path == (d / "images" / "000000.png").lexically_normal().string());
  CHECK(vs.samples[0].answers.size() == 10);

  ClassList cl = read_class_list((d / "classes.json").string());
  CHECK(cl.classes.size() == 40);
  CHECK(int64_t(cl.labels.size()) == s.single_shape);
  for (size_t i = 0; i < cl.labels.size(); ++i) {
    const auto& objs = caps["images"][size_t(cl.image_ids[i])]["objects"];
    REQUIRE(objs.size() == 1);
    CHECK(cl.classes[cl.labels[i]] == objs[0]["color"].get<std::string>() + " " + objs[0]["shape"].get<std::string>());
  }

  json splits = load(d / "splits.json");
  std::set<int64_t> all;
  size_t total = 0;
  for (const char* k : {"train", "val", "test"})
    for (const auto& id : splits[k]) all.insert(id.get<int64_t>()), ++total;
  CHECK(total == 40);
  CHECK(all.size() == 40);
  CHECK(splits["val"].size() == 4);
  CHECK(splits["test"].size() == 4);
}

TEST_CASE("shapes: a scene's pixels show its shapes in their colours, on a light background") {
  for (int64_t id = 0; id < 20; ++id) {
    shapes::Scene scene = shapes::sample_scene(3, id, 64);
    Image img = shapes::render_scene(scene, 3);
    REQUIRE(!scene.objects.empty());
    for (const auto& o : scene.objects) {
      const uint8_t* want = shapes::colors()[o.color].rgb;
      // The centre of every kind lies well inside its outline.
      const int x = int(o.cx), y = int(o.cy);
      for (int c = 0; c < 3; ++c) CHECK(std::abs(int(img.at(x, y, c)) - int(want[c])) <= 1);
      CHECK(o.cx - o.radius >= 0);
      CHECK(o.cx + o.radius <= 64);
    }
    // Shapes keep apart: no two centres closer than their radii.
    for (size_t i = 0; i < scene.objects.size(); ++i)
      for (size_t j = i + 1; j < scene.objects.size(); ++j) {
        const auto &p = scene.objects[i], &q = scene.objects[j];
        CHECK(std::hypot(p.cx - q.cx, p.cy - q.cy) > p.radius + q.radius);
      }
  }
  CHECK(shapes::class_names().size() == 40);
  CHECK(shapes::class_names()[0] == "red circle");
}

TEST_CASE("shapes: a config's folder is generated when missing and a different one is noted, not replaced") {
  const fs::path d = fresh_dir("ensure");
  shapes::GenerateOptions want;
  want.out_dir = d.string();
  want.n = 12;
  want.seed = 3;
  want.size = 16;
  CHECK(shapes::ensure_generated(want, /*need_questions=*/true, /*quiet=*/true));
  CHECK(load(d / "captions.json")["images"].size() == 12);
  CHECK(shapes::generated_mismatch(want).empty());
  CHECK(shapes::holds_version(want));
  CHECK_FALSE(shapes::ensure_generated(want, true, true));

  // Another n, seed or size: the folder is kept and the note names both versions.
  const std::string before = slurp(d / "captions.json");
  shapes::GenerateOptions other = want;
  other.n = 20;
  const std::string note = shapes::generated_mismatch(other);
  CHECK(note.find("holds 12 images of 16 px (seed 3)") != std::string::npos);
  CHECK(note.find("not the 20 of 16 px (seed 3)") != std::string::npos);
  other = want;
  other.seed = 4;
  CHECK_FALSE(shapes::generated_mismatch(other).empty());
  other = want;
  other.size = 32;
  CHECK_FALSE(shapes::generated_mismatch(other).empty());
  CHECK_FALSE(shapes::ensure_generated(other, true, true));
  CHECK(slurp(d / "captions.json") == before);
  CHECK_FALSE(shapes::holds_version(other));

  // A missing questions file regenerates only when the caller needs questions.
  fs::remove(d / "vqa" / "questions.json");
  CHECK_FALSE(shapes::ensure_generated(want, /*need_questions=*/false, true));
  CHECK_FALSE(fs::exists(d / "vqa" / "questions.json"));
  CHECK_FALSE(shapes::holds_version(want));
  CHECK(shapes::ensure_generated(want, /*need_questions=*/true, true));
  CHECK(fs::exists(d / "vqa" / "questions.json"));

  // A captions file written by another program (no "info") gets no note.
  std::ofstream(d / "captions.json", std::ios::trunc) << R"({"images": [], "annotations": []})";
  CHECK(shapes::generated_mismatch(other).empty());
  fs::remove_all(d);
}

TEST_CASE("shapes: the CLI writes the data set and `preprocess` writes pixel_values") {
  const fs::path d = fresh_dir("cli");
  std::string cmd = std::string(MINIVL_CLI_PATH) + " gen-shapes --out " + d.string() + " --n 6 --seed 2 --size 48 > " +
                    (d.string() + ".log") + " 2>&1";
  REQUIRE(std::system(cmd.c_str()) == 0);
  CHECK(fs::exists(d / "images" / "000005.png"));
  CHECK(read_image((d / "images" / "000005.png").string()).width == 48);
  // --unless-current: the same version is left alone; another n is written.
  auto gen_log = [&](const std::string& n) {
    const std::string c = std::string(MINIVL_CLI_PATH) + " gen-shapes --out " + d.string() + " --n " + n +
                          " --seed 2 --size 48 --unless-current > " + (d.string() + ".log") + " 2>&1";
    REQUIRE(std::system(c.c_str()) == 0);
    return slurp(d.string() + ".log");
  };
  CHECK(gen_log("6").find("nothing to do") != std::string::npos);
  CHECK_FALSE(fs::exists(d / "images" / "000006.png"));
  CHECK(gen_log("7").find("gen-shapes: 7 images") != std::string::npos);
  CHECK(fs::exists(d / "images" / "000006.png"));
  const fs::path out = d / "x.safetensors";
  cmd = std::string(MINIVL_CLI_PATH) + " preprocess --image " + (d / "images" / "000000.png").string() +
        " --size 32 --out " + out.string() + " > " + (d.string() + ".log") + " 2>&1";
  REQUIRE(std::system(cmd.c_str()) == 0);
  auto tensors = minivl::load_safetensors(out.string());
  REQUIRE(tensors.size() == 1);
  CHECK(tensors[0].first == "pixel_values");
  CHECK(tensors[0].second.shape() == minivl::Shape{3, 32, 32});
}

}  // TEST_SUITE
