// The loader: the same batches with 1 and 4 workers (and none), per-epoch shuffles that cover
// the data, exact resume from (epoch, position), token ids, errors from workers, and a pass over
// the shapes world from disk.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <set>

#include "core/error.h"
#include "data/dataset.h"
#include "data/loader.h"
#include "data/shapes.h"

using namespace minivl;
using namespace minivl::data;

namespace {

// Images of varied sizes made from their index; index `bad` throws like a corrupt file.
class SyntheticDataset : public Dataset {
 public:
  explicit SyntheticDataset(int64_t n, int64_t bad = -1) : n_(n), bad_(bad) {}
  int64_t size() const override { return n_; }
  Image image(int64_t i) const override {
    if (i == bad_) MINIVL_FAIL("image 'synthetic/", i, ".png': corrupt png data");
    Image img(9 + int(i % 5) * 3, 7 + int(i % 3) * 4);
    for (size_t k = 0; k < img.pixels.size(); ++k) img.pixels[k] = uint8_t(k * 7 + i * 31);
    return img;
  }
  SampleInfo info(int64_t i, int64_t) const override {
    SampleInfo s;
    s.text = "item " + std::to_string(i);
    s.label = i % 3;
    s.image_id = i;
    return s;
  }

 private:
  int64_t n_, bad_;
};

std::vector<int32_t> char_tokens(const std::string& s) {
  std::vector<int32_t> ids = {1};
  for (char c : s) ids.push_back(int32_t(uint8_t(c)));
  return ids;
}

LoaderOptions options(int workers) {
  LoaderOptions o;
  o.batch_size = 4;
  o.seed = 42;
  o.num_workers = workers;
  o.preprocess.image_size = 8;
  o.augment.random_resized_crop = true;
  o.augment.horizontal_flip = true;
  o.tokenize = char_tokens;
  return o;
}

struct Fingerprint {
  std::vector<int64_t> indices;
  std::vector<float> pixels;
  std::vector<double> ids;
  int64_t epoch, position;
  bool operator==(const Fingerprint&) const = default;
};

Fingerprint fingerprint(const Batch& b) {
  Fingerprint f;
  f.indices = b.indices;
  f.pixels.assign(b.pixel_values.data<float>(), b.pixel_values.data<float>() + b.pixel_values.numel());
  f.ids = b.input_ids.to_vector();
  f.epoch = b.epoch;
  f.position = b.position;
  return f;
}

std::vector<Fingerprint> run(std::shared_ptr<const Dataset> ds, LoaderOptions o, int batches) {
  Loader loader(ds, o);
  std::vector<Fingerprint> out;
  for (int i = 0; i < batches; ++i) {
    auto b = loader.next();
    REQUIRE(b.has_value());
    out.push_back(fingerprint(*b));
  }
  return out;
}

}  // namespace

TEST_SUITE("data") {

TEST_CASE("loader: the same batches with 0, 1 and 4 workers, across epochs and with augmentation") {
  auto ds = std::make_shared<SyntheticDataset>(22);
  auto zero = run(ds, options(0), 12);  // 5 batches per epoch: 2.4 epochs
  auto one = run(ds, options(1), 12);
  auto four = run(ds, options(4), 12);
  CHECK(zero == one);
  CHECK(one == four);
  CHECK(one[5].epoch == 1);
  CHECK(one[5].position == 0);
}

TEST_CASE("loader: each epoch is a fresh shuffle of every index; shuffle off keeps order") {
  auto ds = std::make_shared<SyntheticDataset>(20);
  LoaderOptions o = options(2);
  Loader loader(ds, o);
  std::vector<int64_t> e0, e1;
  for (int i = 0; i < 10; ++i) {
    Batch b = *loader.next();
    CHECK(b.pixel_values.shape() == Shape{4, 3, 8, 8});
    CHECK(b.input_ids.shape()[0] == 4);
    auto& dst = i < 5 ? e0 : e1;
    dst.insert(dst.end(), b.indices.begin(), b.indices.end());
  }
  CHECK(e0 != e1);
  std::sort(e0.begin(), e0.end());
  std::sort(e1.begin(), e1.end());
  std::vector<int64_t> all(20);
  for (int i = 0; i < 20; ++i) all[i] = i;
  CHECK(e0 == all);
  CHECK(e1 == all);
  o.shuffle = false;
  CHECK(Loader(ds, o).epoch_order(3) == all);
}

TEST_CASE("loader: resuming from state() gives exactly the batches that would have come next") {
  auto ds = std::make_shared<SyntheticDataset>(22);
  auto reference = run(ds, options(3), 9);
  Loader a(ds, options(3));
  for (int i = 0; i < 6; ++i) a.next();
  LoaderState st = a.state();
  CHECK(st == LoaderState{1, 1});
  Loader b(ds, options(2));
  b.set_state(st);
  for (int i = 6; i < 9; ++i) CHECK(fingerprint(*b.next()) == reference[i]);
  // set_state on a running loader drops its prefetched batches.
  a.set_state({0, 2});
  CHECK(fingerprint(*a.next()) == reference[2]);
  CHECK_THROWS_AS(a.set_state({0, 5}), minivl::Error);
}

TEST_CASE("loader: max_epochs ends the stream; drop_last = false keeps the short batch") {
  auto ds = std::make_shared<SyntheticDataset>(10);
  LoaderOptions o = options(2);
  o.max_epochs = 2;
  o.drop_last = false;
  Loader loader(ds, o);
  CHECK(loader.batches_per_epoch() == 3);
  std::vector<int64_t> sizes;
  while (auto b = loader.next()) sizes.push_back(b->size());
  CHECK(sizes == std::vector<int64_t>{4, 4, 2, 4, 4, 2});
  CHECK(!loader.next().has_value());
}

TEST_CASE("loader: token ids are padded into input_ids; labels and texts ride along") {
  auto ds = std::make_shared<SyntheticDataset>(8);
  LoaderOptions o = options(0);
  o.shuffle = false;
  o.pad_id = -1;
  Batch b = *Loader(ds, o).next();
  CHECK(b.texts[0] == "item 0");
  CHECK(b.labels == std::vector<int64_t>{0, 1, 2, 0});
  CHECK(b.token_ids[0] == char_tokens("item 0"));
  CHECK(b.input_ids.shape() == Shape{4, 7});
  CHECK(b.input_ids.dtype() == DType::i64);
}

TEST_CASE("loader: a worker's error reaches next() for the batch that hit it") {
  auto ds = std::make_shared<SyntheticDataset>(8, 5);
  LoaderOptions o = options(2);
  o.shuffle = false;
  Loader loader(ds, o);
  CHECK(loader.next().has_value());  // 0..3
  CHECK_THROWS_WITH_AS(loader.next(), doctest::Contains("synthetic/5.png"), minivl::Error);
}

TEST_CASE("loader: the shapes world from disk, captions and VQA, with 1 and 4 workers") {
  namespace fs = std::filesystem;
  fs::path d = fs::temp_directory_path() / "minivl_test_loader_shapes";
  fs::remove_all(d);
  shapes::GenerateOptions g;
  g.out_dir = d.string();
  g.n = 12;
  g.seed = 9;
  shapes::generate_shapes(g);
  auto caps = std::make_shared<CaptionDataset>(read_coco_captions((d / "captions.json").string()), DecodeOptions{},
                                               /*one_per_image=*/true, 9);
  CHECK(caps->size() == 12);
  LoaderOptions o = options(1);
  o.augment = {};
  o.preprocess.image_size = 32;
  auto a = run(caps, o, 6);
  o.num_workers = 4;
  CHECK(a == run(caps, o, 6));

  auto vqa = std::make_shared<VqaDataset>(
      read_vqa((d / "vqa" / "questions.json").string(), (d / "vqa" / "annotations.json").string()));
  vqa->set_answer_vocab(vqa->frequent_answers(5));
  Batch b = *Loader(vqa, o).next();
  CHECK(b.answers.size() == 4);
  CHECK(b.answer_lists[0].size() == 10);
  for (int k = 0; k < 4; ++k) CHECK(b.texts[k].back() == '?');
}

}  // TEST_SUITE
