// `minivl preprocess` (one image through CLIP's preprocessing, written as a
// safetensors tensor anyone can compare with another pipeline) and
// `minivl gen-shapes` (the synthetic shapes world).
#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>
#include <memory>

#include "core/error.h"
#include "core/ops.h"
#include "core/tensor_io.h"
#include "data/image.h"
#include "data/preprocess.h"
#include "data/shapes.h"
#include "tools/commands.h"
#include "tools/numeric_option.h"

namespace minivl::tools {
namespace {

struct PreprocessOptions {
  std::string image, out, config, save_resized;
  int size = 0;
  int64_t max_pixels = data::DecodeOptions{}.max_pixels;
};

void run_preprocess(const PreprocessOptions& o) {
  data::ClipPreprocessConfig cfg;
  if (!o.config.empty()) cfg = data::ClipPreprocessConfig::from_json_file(o.config);
  if (o.size > 0) cfg.image_size = o.size;
  data::Image image = data::read_image(o.image, {o.max_pixels});
  const int r = cfg.image_size;
  data::Image cropped = data::resize_and_center_crop(image, r);
  if (!o.save_resized.empty()) data::write_png(o.save_resized, cropped);
  Tensor x = empty({3, r, r}, DType::f32);  // (3, R, R)
  data::normalize_to_chw(cropped, cfg, x.data<float>());
  save_safetensors(o.out, {{"pixel_values", x}},
                   {{"source", o.image}, {"image_size", std::to_string(r)}, {"pipeline", "clip _transform"}});
  std::printf("preprocess: %s (%d x %d) -> pixel_values (3, %d, %d) in %s\n", o.image.c_str(), image.width,
              image.height, r, r, o.out.c_str());
}

void run_gen_shapes(const data::shapes::GenerateOptions& o, bool unless_current) {
  if (unless_current && data::shapes::holds_version(o)) {
    std::printf("gen-shapes: %s already holds %lld images of %d px (seed %llu); nothing to do\n", o.out_dir.c_str(),
                static_cast<long long>(o.n), o.size, static_cast<unsigned long long>(o.seed));
    return;
  }
  auto t0 = std::chrono::steady_clock::now();
  data::shapes::GenerateSummary s = data::shapes::generate_shapes(o);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("gen-shapes: %lld images (%lld single-shape), %lld captions, %lld questions in %s (%.2f s, %.0f images/s)\n",
              static_cast<long long>(s.images), static_cast<long long>(s.single_shape),
              static_cast<long long>(s.captions), static_cast<long long>(s.questions), o.out_dir.c_str(), secs,
              s.images / std::max(secs, 1e-9));
}

}  // namespace

void register_data_commands(CLI::App& app) {
  auto p = std::make_shared<PreprocessOptions>();
  CLI::App* pre = app.add_subcommand("preprocess", "CLIP-preprocess one image into a (3, R, R) safetensors tensor");
  pre->add_option("--image", p->image, "Input image (PNG, JPEG, BMP, GIF, TGA)")->required();
  pre->add_option("--out", p->out, "Output safetensors file (tensor 'pixel_values')")->required();
  add_numeric_option(pre, "--size", p->size, Bounds<int>{1, 8192}, "Resolution R (default: the config's, else 224)");
  pre->add_option("--config", p->config, "Model config with image size / image_mean / image_std (JSON)");
  add_numeric_option(pre, "--max-pixels", p->max_pixels, Bounds<int64_t>{1, int64_t(1) << 32},
                     "Refuse images with more pixels (width x height) than this (default 64000000)");
  pre->add_option("--save-resized", p->save_resized, "Also write the resized, cropped u8 image (PNG)");
  pre->callback([p] { run_preprocess(*p); });

  auto g = std::make_shared<data::shapes::GenerateOptions>();
  CLI::App* gen = app.add_subcommand("gen-shapes", "Generate the synthetic shapes world (images, captions, VQA)");
  gen->add_option("--out", g->out_dir, "Output folder")->required();
  add_numeric_option(gen, "--n", g->n, Bounds<int64_t>{1, 1'000'000'000}, "Number of images")->required();
  add_numeric_option(gen, "--seed", g->seed, Bounds<uint64_t>{0, UINT64_MAX}, "Seed (same arguments, same bytes)")
      ->required();
  add_numeric_option(gen, "--size", g->size, Bounds<int>{16, 1000}, "Image side in pixels (default 64)");
  add_numeric_option(gen, "--threads", g->threads, Bounds<int>{0, 1024},
                     "Worker threads (default 0: all; output does not depend on it)");
  auto unless_current = std::make_shared<bool>(false);
  gen->add_flag("--unless-current", *unless_current,
                "Do nothing when --out already holds this version (same n, seed and size, all files there)");
  gen->callback([g, unless_current] { run_gen_shapes(*g, *unless_current); });
}

}  // namespace minivl::tools
