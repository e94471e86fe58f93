// Data pipeline throughput: images per second through decode + CLIP preprocessing at 224 px,
// single-threaded by stage, and through the Loader by worker count.
//
// Inputs: 64 JPEGs (quality 90) of COCO-like sizes (500 x 375, 640 x 480, 480 x 640, 375 x 500),
// written once into the temp folder: smooth gradients with texture and noise, so the decoder has
// real work. Decode is stb_image; the resize is the Pillow-exact bicubic (downscale by ~1.7-2.1x
// with the widened filter: ~7 taps per output pixel per pass).
//
//   build/bin/bench_data                          # all
//   build/bin/bench_data --benchmark_filter=Loader
#include <benchmark/benchmark.h>

#include <cmath>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "data/dataset.h"
#include "data/image.h"
#include "data/loader.h"
#include "data/preprocess.h"

using namespace minivl::data;

namespace {

constexpr int kImages = 64;

Image synthetic_photo(int w, int h, int seed) {
  Image img(w, h);
  uint32_t state = uint32_t(seed) * 2654435761u + 1;
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      state = state * 1664525u + 1013904223u;
      const int noise = int(state >> 28) - 8;
      const double t = std::sin(x * 0.02 + seed) * 60 + std::cos(y * 0.03 - seed) * 50;
      img.at(x, y, 0) = uint8_t(std::clamp(int(128 + t + noise + ((x / 16 + y / 16) % 2) * 20), 0, 255));
      img.at(x, y, 1) = uint8_t(std::clamp(int(100 + 0.8 * t + noise + x % 50), 0, 255));
      img.at(x, y, 2) = uint8_t(std::clamp(int(90 - 0.5 * t + noise + y % 70), 0, 255));
    }
  return img;
}

const ClassList& fixture() {
  static const ClassList list = [] {
    namespace fs = std::filesystem;
    const fs::path dir = fs::temp_directory_path() / "minivl_bench_data";
    fs::create_directories(dir);
    const int sizes[4][2] = {{500, 375}, {640, 480}, {480, 640}, {375, 500}};
    ClassList l;
    l.classes = {"photo"};
    for (int i = 0; i < kImages; ++i) {
      const fs::path p = dir / ("img" + std::to_string(i) + ".jpg");
      if (!fs::exists(p)) write_jpeg(p.string(), synthetic_photo(sizes[i % 4][0], sizes[i % 4][1], i), 90);
      l.image_paths.push_back(p.string());
      l.labels.push_back(0);
      l.image_ids.push_back(i);
    }
    return l;
  }();
  return list;
}

void BM_Decode(benchmark::State& state) {
  const ClassList& l = fixture();
  std::vector<std::vector<uint8_t>> bytes;
  for (const auto& p : l.image_paths) bytes.push_back(read_file_bytes(p));
  size_t i = 0;
  for (auto _ : state) {
    Image img = decode_image(bytes[i].data(), bytes[i].size(), "bench");
    benchmark::DoNotOptimize(img.pixels.data());
    i = (i + 1) % bytes.size();
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Decode)->Unit(benchmark::kMillisecond);

void BM_Preprocess224(benchmark::State& state) {
  const ClassList& l = fixture();
  std::vector<Image> images;
  for (int i = 0; i < 4; ++i) images.push_back(read_image(l.image_paths[i]));
  ClipPreprocessConfig cfg;
  std::vector<float> out(3 * 224 * 224);
  size_t i = 0;
  for (auto _ : state) {
    clip_preprocess_into(images[i], cfg, out.data());
    benchmark::DoNotOptimize(out.data());
    i = (i + 1) % images.size();
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Preprocess224)->Unit(benchmark::kMillisecond);

// One epoch of 64 images in batches of 8 per iteration, read from disk; arg = workers (0: caller thread).
void BM_Loader224(benchmark::State& state) {
  auto ds = std::make_shared<ClassificationDataset>(fixture());
  LoaderOptions o;
  o.batch_size = 8;
  o.num_workers = int(state.range(0));
  o.seed = 1;
  for (auto _ : state) {
    Loader loader(ds, o);
    for (int64_t b = 0; b < loader.batches_per_epoch(); ++b) benchmark::DoNotOptimize(loader.next()->pixel_values.data_ptr());
  }
  state.SetItemsProcessed(state.iterations() * kImages);
  state.counters["workers"] = double(o.num_workers);
  state.counters["cores"] = double(std::thread::hardware_concurrency());
}
BENCHMARK(BM_Loader224)->Arg(0)->Arg(1)->Arg(2)->Arg(4)->Arg(8)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
