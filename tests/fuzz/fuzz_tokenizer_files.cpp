// libFuzzer target: tokenizer/vocab_loaders.cpp (arbitrary vocabulary files).
// The first byte picks the format, the rest is the file(s):
//   0: OpenAI merges text (gzipped here, so the fuzzer mutates the text, not the deflate stream)
//   1: Hugging Face vocab.json + merges.txt, split at "\n@@@\n"
//   2: tokenizer.json
// A tokenizer that loads must then encode and decode a fixed text without crashing.
#include <zlib.h>

#include <exception>

#include "tests/fuzz/fuzz_util.h"
#include "tokenizer/clip_tokenizer.h"

using minivl::tokenizer::ClipTokenizer;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace fz = minivl::fuzz;
  if (size < 1) return 0;
  const int mode = data[0] % 3;
  const std::string_view body(reinterpret_cast<const char*>(data + 1), size - 1);
  try {
    std::string path;
    if (mode == 0) {
      path = (fz::scratch_dir() / "vocab.txt.gz").string();
      gzFile gz = gzopen(path.c_str(), "wb1");
      if (!gz) std::abort();
      if (!body.empty()) gzwrite(gz, body.data(), unsigned(body.size()));
      gzclose(gz);
    } else if (mode == 1) {
      auto [vocab, merges] = fz::split_at(body, "\n@@@\n");
      fz::write_scratch("hf/vocab.json", vocab);
      fz::write_scratch("hf/merges.txt", merges);
      path = (fz::scratch_dir() / "hf").string();
    } else {
      path = fz::write_scratch("tokenizer.json", body);
    }
    ClipTokenizer tok = ClipTokenizer::load(path);
    std::vector<int32_t> ids = tok.encode("a photo of a cat, l'été 日本 123!!");
    for (int32_t id : ids)
      if (id < 0 || size_t(id) >= tok.vocab_size()) std::abort();
    (void)tok.decode(ids);
    (void)tok.tokenize({"a dog"}, 8, true);
  } catch (const std::exception&) {
  }
  return 0;
}
