// libFuzzer target: tokenizer/ on arbitrary text (clean, encode, decode, tokenize).
// The vocabulary is OpenAI's bpe_simple_vocab_16e6.txt.gz when MINIVL_FUZZ_VOCAB (or the
// shared data folder) has it, else a small vocabulary learned from a fixed corpus.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <memory>

#include "tokenizer/bpe_trainer.h"
#include "tokenizer/clip_tokenizer.h"

using minivl::tokenizer::ClipTokenizer;

static const ClipTokenizer& tokenizer() {
  static const std::unique_ptr<ClipTokenizer> tok = [] {
    const char* env = std::getenv("MINIVL_FUZZ_VOCAB");
    std::string path = env ? env : MINIVL_SHARED_DIR "/data/clip/bpe_simple_vocab_16e6.txt.gz";
    if (std::filesystem::exists(path)) return std::make_unique<ClipTokenizer>(ClipTokenizer::load(path));
    std::fprintf(stderr, "fuzz_tokenizer_text: no OpenAI vocabulary at %s: fuzzing with a small learned one\n",
                 path.c_str());
    const std::vector<std::string> corpus = {"a photo of a cat", "a photo of a dog on the grass",
                                             "two dogs and a cat", "l'été à Paris ça va", "日本語 テキスト"};
    minivl::tokenizer::BpeTrainResult bpe = minivl::tokenizer::train_bpe(corpus, 600, 1);
    return std::make_unique<ClipTokenizer>(std::move(bpe.vocab), bpe.merges, "fuzz-corpus");
  }();
  return *tok;
}

// Loading the 49k-merge vocabulary takes seconds under the sanitizers: do it before the
// per-input timeout starts.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  (void)tokenizer();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const ClipTokenizer& tok = tokenizer();
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    (void)ClipTokenizer::clean(text);
    std::vector<int32_t> ids = tok.encode(text);
    for (int32_t id : ids)
      if (id < 0 || size_t(id) >= tok.vocab_size()) std::abort();
    (void)tok.decode(ids);
    (void)tok.tokenize({text, text}, 77, true);
    // Arbitrary ids (in and out of range) must decode or throw, never crash.
    std::vector<int32_t> raw(size / 4);
    if (!raw.empty()) std::memcpy(raw.data(), data, raw.size() * 4);
    (void)tok.decode(raw);
  } catch (const std::exception&) {
  }
  return 0;
}
