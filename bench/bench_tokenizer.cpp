// CLIP tokenizer throughput: tokens per second encoding a caption corpus, cold (no word cache:
// every word goes through BPE) and warm (cache filled). Goal: >= 2M tokens/s warm on one core.
//
// Vocabulary: ../shared/data/clip/bpe_simple_vocab_16e6.txt.gz when present, otherwise a
// vocabulary trained here on the same corpus (printed in the label).
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "tokenizer/bpe_trainer.h"
#include "tokenizer/clip_tokenizer.h"

using minivl::tokenizer::ClipTokenizer;

namespace {

// Captions in the style of the synthetic shapes dataset, plus some varied text.
const std::vector<std::string>& corpus() {
  static const std::vector<std::string> texts = [] {
    const char* sizes[] = {"small", "large", "tiny", "big", "medium-sized"};
    const char* colors[] = {"red", "green", "blue", "yellow", "purple", "orange", "cyan", "magenta"};
    const char* shapes[] = {"circle", "square", "triangle", "star", "hexagon", "ellipse"};
    const char* places[] = {"in the top left corner", "at the center", "near the bottom edge",
                            "on a white background", "next to a black line"};
    const char* extra[] = {"A photo of a cat sitting on a sofa.", "Two dogs playing in the snow!",
                           "What color is the triangle?", "Café crème on a wooden table",
                           "東京タワーの写真", "I ❤️ this 🐱 picture", "It's 3:45 pm on 2023-10-05."};
    std::mt19937 rng(42);
    std::vector<std::string> out;
    for (int i = 0; i < 2000; ++i) {
      if (i % 10 == 9) {
        out.emplace_back(extra[rng() % 7]);
        continue;
      }
      out.push_back(std::string("a ") + sizes[rng() % 5] + " " + colors[rng() % 8] + " " +
                    shapes[rng() % 6] + " " + places[rng() % 5]);
    }
    return out;
  }();
  return texts;
}

// <repo>/../shared, found from this file's path; MINIVL_CLIP_VOCAB overrides it.
const std::string kVocab = [] {
  if (const char* env = std::getenv("MINIVL_CLIP_VOCAB")) return std::string(env);
  return (std::filesystem::path(__FILE__).parent_path().parent_path().parent_path() / "shared" /
          "data" / "clip" / "bpe_simple_vocab_16e6.txt.gz").string();
}();

ClipTokenizer& tokenizer() {
  static std::unique_ptr<ClipTokenizer> tok = [] {
    if (std::filesystem::exists(kVocab)) return std::make_unique<ClipTokenizer>(ClipTokenizer::load(kVocab));
    const auto trained = minivl::tokenizer::train_bpe(corpus(), 2000);
    const auto dir = std::filesystem::temp_directory_path() / "minivl_bench_tokenizer";
    minivl::tokenizer::write_hf_vocab(trained, dir.string());
    return std::make_unique<ClipTokenizer>(ClipTokenizer::load(dir.string()));
  }();
  return *tok;
}

void run(benchmark::State& state, bool cache) {
  ClipTokenizer& tok = tokenizer();
  tok.set_cache_enabled(cache);
  if (cache) {
    for (const auto& t : corpus()) benchmark::DoNotOptimize(tok.encode(t));   // warm up
  }
  int64_t tokens = 0;
  for (auto _ : state) {
    for (const auto& t : corpus()) {
      const auto ids = tok.encode(t);
      tokens += static_cast<int64_t>(ids.size());
      benchmark::DoNotOptimize(ids.data());
    }
  }
  state.counters["tokens/s"] = benchmark::Counter(static_cast<double>(tokens), benchmark::Counter::kIsRate);
  state.SetLabel(std::filesystem::exists(kVocab) ? "CLIP vocab" : "trained 2000-id vocab");
  tok.set_cache_enabled(true);
}

void BM_EncodeCold(benchmark::State& state) { run(state, false); }
void BM_EncodeWarmCache(benchmark::State& state) { run(state, true); }

}  // namespace

BENCHMARK(BM_EncodeCold)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_EncodeWarmCache)->Unit(benchmark::kMillisecond);
BENCHMARK_MAIN();
