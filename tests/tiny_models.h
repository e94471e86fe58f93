#pragma once
// Tiny model configs the model and trainer tests share: small enough to build, train and evaluate in
// well under a second on one core, large enough to have every part (two heads, a class token and
// several patches, padding to mask). As structs for the model tests, and as "key=value" overrides
// (nn::TrainOptions::overrides, or --set flags with set_flags) for the trainer tests.
#include <string>
#include <vector>

#include "models/captioner.h"
#include "models/clip.h"
#include "models/vqa.h"

namespace minivl::testing {

// A 16 px ViT of 4 px patches (1 + 16 tokens), width 32, one layer.
inline models::ClipTowerConfig tiny_vision_tower() {
  return {.hidden_size = 32, .intermediate_size = 64, .num_attention_heads = 2, .num_hidden_layers = 1,
          .image_size = 16, .patch_size = 4};
}

// CLIP with OpenAI's vocabulary (ids up to 49407), 16 positions; vision 16 px / 8 px patches, two layers.
inline models::ClipConfig tiny_clip() {
  models::ClipConfig c;
  c.vision = {.hidden_size = 32, .intermediate_size = 64, .num_attention_heads = 2, .num_hidden_layers = 2,
              .image_size = 16, .patch_size = 8};
  c.text = {.hidden_size = 24, .intermediate_size = 48, .num_attention_heads = 2, .num_hidden_layers = 2,
            .vocab_size = 49408, .max_position_embeddings = 16};
  c.projection_dim = 20;
  return c;
}

// The tiny tower, a joint encoder / decoder of width 32 (two layers of `heads` heads), `words` words.
template <typename Config>
Config tiny_vision_language(int64_t heads, int64_t words) {
  Config c;
  c.vision = tiny_vision_tower();
  c.joint = {.hidden = 32, .layers = 2, .heads = heads, .mlp = 64};
  c.vocab_size = words;
  return c;
}

// 10 question words (ids 0..3 the specials), questions of up to 8 tokens, 5 answers.
inline models::VqaConfig tiny_vqa() {
  auto c = tiny_vision_language<models::VqaConfig>(2, 10);
  c.max_question_len = 8;
  c.num_answers = 5;
  return c;
}

// 13 words, 12 positions, four heads (head size 8).
inline models::CaptionerConfig tiny_captioner() {
  auto c = tiny_vision_language<models::CaptionerConfig>(4, 13);
  c.max_length = 12;
  return c;
}

// ---- training configs: overrides of the model.* keys ----

// The vision tower's keys (every trainer): 16 px, 8 px patches, width 16, one layer of two heads.
inline std::vector<std::string> tiny_vision_keys() {
  return {"model.image_size=16", "model.patch_size=8", "model.vision_width=16",
          "model.vision_layers=1", "model.vision_heads=2", "model.vision_mlp=32"};
}

// vqa and the captioner: the tiny tower and a joint encoder / decoder of width 16 (one layer).
inline std::vector<std::string> tiny_vision_language_keys() {
  std::vector<std::string> k = tiny_vision_keys();
  k.insert(k.end(), {"model.hidden=16", "model.layers=1", "model.heads=2", "model.mlp=32"});
  return k;
}

// clip: the tiny tower and a text tower of width 16 (one layer), 8-d embeddings.
inline std::vector<std::string> tiny_clip_keys() {
  std::vector<std::string> k = tiny_vision_keys();
  k.insert(k.end(), {"model.text_width=16", "model.text_layers=1", "model.text_heads=2", "model.text_mlp=32",
                     "model.projection_dim=8"});
  return k;
}

// `base` with the value of each key of `changes` replaced (a key not in `base` is added), for a test
// that needs a larger tiny model: one definition, and the differences named where they are used.
inline std::vector<std::string> with_overrides(std::vector<std::string> base, const std::vector<std::string>& changes) {
  for (const std::string& kv : changes) {
    const std::string key = kv.substr(0, kv.find('=') + 1);
    bool replaced = false;
    for (std::string& b : base)
      if (b.rfind(key, 0) == 0) {
        b = kv;
        replaced = true;
      }
    if (!replaced) base.push_back(kv);
  }
  return base;
}

// " --set k=v" for each override, for the CLI.
inline std::string set_flags(const std::vector<std::string>& overrides) {
  std::string out;
  for (const std::string& kv : overrides) out += " --set " + kv;
  return out;
}

// The overrides under `section` ("model") as the lines of its TOML table: "image_size = 16".
inline std::string toml_lines(const std::vector<std::string>& overrides, const std::string& section) {
  std::string out;
  const std::string prefix = section + ".";
  for (const std::string& kv : overrides) {
    if (kv.rfind(prefix, 0) != 0) continue;
    const size_t eq = kv.find('=');
    out += kv.substr(prefix.size(), eq - prefix.size()) + " = " + kv.substr(eq + 1) + "\n";
  }
  return out;
}

}  // namespace minivl::testing
