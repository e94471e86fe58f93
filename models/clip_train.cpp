// The "clip" trainer. Data are small enough to keep in memory: every image is
// decoded and resized/cropped to the model's resolution once (u8), every
// caption tokenized once; a batch normalises its images and pads its token rows
// to the longest. Batch p of epoch e holds order(e)[p B, (p + 1) B), order(e) a
// shuffle seeded by (data.seed, e), and each image's caption for epoch e is
// drawn from a hash of (data.seed, e, image): the cursor {epoch, position} is
// the whole data state, so a resumed run sees exactly the batches it would have.
// Under data parallelism (mpirun -np R) rank r takes items [r B/R, (r + 1) B/R)
// of each of those global batches and the loss is the sharded CLIP loss over
// the whole batch (nn/distributed.h), so R ranks train as one process would.
#include "models/clip_train.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>

#include "core/autograd.h"
#include "core/error.h"
#include "core/ops.h"
#include "data/annotations.h"
#include "data/dataset.h"
#include "data/fashion_mnist.h"
#include "data/preprocess.h"
#include "models/epoch_cursor.h"
#include "models/image_store.h"
#include "models/metrics.h"
#include "models/model_folder.h"
#include "models/shapes_config.h"
#include "models/vision_tower.h"
#include "nn/distributed.h"
#include "nn/trainer.h"
#include "tokenizer/bpe_trainer.h"
#include "tokenizer/clip_tokenizer.h"

namespace minivl::models {
namespace fs = std::filesystem;
using tokenizer::ClipTokenizer;

void add_clip_model_keys(nn::ConfigSchema& s) {
  // A tower trained from scratch at 32 px: 64 patches of 4 px.
  add_vision_tower_keys(s, {.hidden_size = 128, .intermediate_size = 512, .num_attention_heads = 2,
                            .num_hidden_layers = 4, .image_size = 32, .patch_size = 4});
  s.add_int("model.vocab_size", 49408, "text vocabulary (49408: OpenAI's BPE; a learned vocabulary sets its own)", 2);
  s.add_int("model.context_length", 32, "text positions", 4);
  s.add_int("model.text_width", 128, "text hidden size", 8);
  s.add_int("model.text_layers", 4, "text encoder layers", 0);
  s.add_int("model.text_heads", 2, "text attention heads", 1);
  s.add_int("model.text_mlp", 512, "text MLP hidden size", 1);
  s.add_int("model.projection_dim", 128, "joint embedding size", 1);
  s.add_float("model.logit_scale_init", 2.6592, "initial log logit scale (ln(1/0.07))");
  s.add_string("model.init_from", "", "a CLIP model folder to start from instead of a fresh init");
}

namespace {
void add_clip_data_keys(nn::ConfigSchema& s) {
  s.add_string("data.dataset", "shapes", "image-text pairs", {"shapes", "fashion-mnist"});
  s.add_string("data.path", "",
               std::string("data folder (\"\": shapes: datasets/shapes; fashion-mnist: Debian's ") +
                   data::kFashionMnistDir + ")");
  s.add_string("data.vocab", "openai",
               "tokenizer: openai (OpenAI's BPE), learn (a BPE learned from the training captions), or a path");
  s.add_int("data.learned_vocab_size", 1024, "ids of a learned vocabulary (data.vocab = learn)", 514);
  s.add_int("data.captions_per_image", 0, "train on each image's first K captions only (0 = all)", 0);
  add_shapes_generate_keys(s);
  s.add_bool("data.labelled_only", false, "train only on images with a class label (shapes: single-shape images)");
  s.add_int("data.eval_images", 1000, "held-out images per evaluation (0 = all)", 0);
  s.add_int("data.seed", 1234, "seed of the data order and caption draws", 0);
  s.add_int("eval.batches", 0,
            "evaluate on at most this many batches of data.batch_size held-out images (0 = data.eval_images of them)", 0);
}
}  // namespace

namespace {
void add_clip_trainer_keys(nn::ConfigSchema& s) {
  add_clip_model_keys(s);
  add_clip_data_keys(s);
}
}  // namespace

nn::ConfigSchema clip_training_schema() {
  nn::ConfigSchema s = nn::ConfigSchema::training();
  add_clip_trainer_keys(s);
  return s;
}

ClipConfig clip_config_from_toml(const nn::Config& c) {
  ClipConfig m;
  m.vision = vision_tower_from_keys(c);
  m.text.vocab_size = c.get_int("model.vocab_size");
  m.text.max_position_embeddings = c.get_int("model.context_length");
  m.text.hidden_size = c.get_int("model.text_width");
  m.text.num_hidden_layers = c.get_int("model.text_layers");
  m.text.num_attention_heads = c.get_int("model.text_heads");
  m.text.intermediate_size = c.get_int("model.text_mlp");
  m.projection_dim = c.get_int("model.projection_dim");
  m.text.hidden_act = m.vision.hidden_act;  // model.hidden_act: both towers
  m.logit_scale_init_value = c.get_float("model.logit_scale_init");
  return ClipConfig::from_json(m.to_json());  // the same checks as a config.json
}

namespace {

// Images at the model's resolution with their captions and labels, by row.
struct PairSet {
  ImageStore images;
  std::vector<std::vector<std::string>> captions;  // per image
  std::vector<int64_t> labels;                     // per image, -1 when none
  int64_t size() const { return int64_t(captions.size()); }
  void add(const data::Image& img, std::vector<std::string> caps, int64_t label) {
    images.add(img);
    captions.push_back(std::move(caps));
    labels.push_back(label);
  }
};

struct ClipData {
  PairSet train, eval;
  std::vector<std::string> classes, templates;  // zero-shot
  bool retrieval = true;                        // captions of eval images are worth ranking
};

ClipData load_shapes(const nn::Config& c, int R, bool quiet) {
  const std::string dir = shapes_folder(c, /*need_questions=*/false, quiet);
  const fs::path d(dir);
  data::CaptionSet caps = data::read_coco_captions((d / "captions.json").string());
  data::ClassList classes = data::read_class_list((d / "classes.json").string());
  std::ifstream sf(d / "splits.json");
  nlohmann::json splits = nlohmann::json::parse(sf);
  std::map<int64_t, std::pair<std::string, std::vector<std::string>>> by_image;
  for (const auto& s : caps.samples) {
    auto& e = by_image[s.image_id];
    e.first = s.image_path;
    e.second.push_back(s.caption);
  }
  std::map<int64_t, int64_t> label_of;
  for (size_t i = 0; i < classes.image_ids.size(); ++i) label_of[classes.image_ids[i]] = classes.labels[i];
  ClipData out;
  out.train.images = out.eval.images = ImageStore(R);
  out.classes = classes.classes;
  out.templates = classes.templates;
  auto add = [&](PairSet& set, int64_t id) {
    auto it = by_image.find(id);
    MINIVL_CHECK(it != by_image.end(), dir, "/splits.json: image ", id, " has no captions");
    auto lab = label_of.find(id);
    set.add(data::read_image(it->second.first), it->second.second, lab == label_of.end() ? -1 : lab->second);
  };
  const bool labelled_only = c.get_bool("data.labelled_only");
  for (const auto& id : splits.at("train"))
    if (!labelled_only || label_of.count(id.get<int64_t>())) add(out.train, id.get<int64_t>());
  for (const char* split : {"val", "test"})
    for (const auto& id : splits.at(split)) add(out.eval, id.get<int64_t>());
  return out;
}

ClipData load_fashion(const nn::Config& c, int R) {
  const std::string dir = c.get_string("data.path").empty() ? data::kFashionMnistDir : c.get_string("data.path");
  ClipData out;
  out.train.images = out.eval.images = ImageStore(R);
  out.classes = data::fashion_mnist_prompt_names();
  out.templates = data::fashion_mnist_templates();
  out.retrieval = false;
  auto fill = [&](PairSet& set, const std::string& split) {
    data::FashionMnist fm = data::load_fashion_mnist(dir, split);
    for (int64_t i = 0; i < fm.count; ++i) {
      const int label = fm.labels[size_t(i)];
      std::vector<std::string> caps;
      for (size_t t = 0; t < out.templates.size(); ++t) caps.push_back(data::fashion_mnist_caption(label, int(t)));
      set.add(fm.image(i), std::move(caps), label);
    }
  };
  fill(out.train, "train");
  fill(out.eval, "test");
  return out;
}

class ClipTrainer : public nn::Trainer {
 public:
  ClipTrainer(const nn::Config& c, Device device)
      : device_(device),
        batch_(c.get_int("data.batch_size")),
        captions_per_image_(c.get_int("data.captions_per_image")),
        eval_images_(c.get_int("data.eval_images")) {
    cursor_.seed = uint64_t(c.get_int("data.seed"));
    ClipConfig mc = clip_config_from_toml(c);
    const int R = int(mc.vision.image_size);
    const auto t0 = std::chrono::steady_clock::now();
    data_ = c.get_string("data.dataset") == "shapes" ? load_shapes(c, R, false) : load_fashion(c, R);
    MINIVL_CHECK(data_.train.size() >= batch_, "clip: ", data_.train.size(), " training images, fewer than one batch of ",
                 batch_);
    // The tokenizer.
    const std::string vocab = c.get_string("data.vocab");
    if (vocab == "learn") {
      std::vector<std::string> texts;
      for (const auto& caps : data_.train.captions) texts.insert(texts.end(), caps.begin(), caps.end());
      for (const auto& cl : data_.classes)
        for (const auto& t : data_.templates) texts.push_back(data::fill_template(t, cl));
      learned_ = tokenizer::train_bpe(texts, size_t(c.get_int("data.learned_vocab_size")));
      tok_ = std::make_unique<ClipTokenizer>(learned_.vocab, learned_.merges, "learned from the training captions");
      mc.text.vocab_size = int64_t(tok_->vocab_size());
      mc.text.eos_token_id = tok_->eot_id();
    } else {
      vocab_path_ = vocab == "openai" ? default_clip_vocab_path() : vocab;
      MINIVL_CHECK(!vocab_path_.empty(), "clip: OpenAI's bpe_simple_vocab_16e6.txt.gz was not found (looked in "
                   "$MINIVL_CLIP_VOCAB, ../shared/data/clip, shared/data/clip); set data.vocab to its path, or to "
                   "\"learn\"");
      tok_ = std::make_unique<ClipTokenizer>(ClipTokenizer::load(vocab_path_));
      MINIVL_CHECK(int64_t(tok_->vocab_size()) <= mc.text.vocab_size, "clip: the tokenizer has ", tok_->vocab_size(),
                   " ids, more than model.vocab_size ", mc.text.vocab_size);
      mc.text.eos_token_id = tok_->eot_id();
    }
    // Token rows of every training caption, once.
    const int64_t ctx = mc.text.max_position_embeddings;
    for (const auto& caps : data_.train.captions) {
      std::vector<std::vector<int32_t>> rows;
      for (const auto& t : caps) rows.push_back(tokenize_row(*tok_, t, ctx));
      train_tokens_.push_back(std::move(rows));
    }
    const std::string init_from = c.get_string("model.init_from");
    if (!init_from.empty()) {
      model_ = ClipModel::load_folder(init_from);
      model_->train();
    } else {
      model_ = std::make_shared<ClipModel>(mc);
    }
    model_->to(device);
    std::printf("clip: %lld training images, %lld held out, vocabulary %zu ids, %.2fM parameters (data ready in %.1fs)\n",
                (long long)data_.train.size(), (long long)data_.eval.size(), tok_->vocab_size(),
                double(model_->num_parameters()) / 1e6,
                std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    std::fflush(stdout);
  }

  nn::Module& model() override { return *model_; }
  int64_t examples_per_batch() const override { return batch_; }
  void after_step() override { model_->clamp_logit_scale(); }

  bool set_process_group(const std::shared_ptr<nn::ProcessGroup>& group) override {
    MINIVL_CHECK(batch_ % group->size() == 0, "clip: data.batch_size ", batch_, " is not a multiple of the ",
                 group->size(), " ranks (each rank takes data.batch_size / ranks items of every global batch)");
    group_ = group;
    return true;
  }

  Tensor train_loss() override {
    // The global batch, then this rank's share of it.
    const std::vector<int64_t> global = cursor_.next(int64_t(data_.train.size()), batch_);
    const int64_t share = group_ ? batch_ / group_->size() : batch_;
    const int64_t first = group_ ? group_->rank() * share : 0;
    std::vector<int64_t> idx(global.begin() + first, global.begin() + first + share);
    std::vector<std::vector<int32_t>> rows;
    for (int64_t i : idx) {
      const auto& caps = train_tokens_[size_t(i)];
      int64_t n = int64_t(caps.size());
      if (captions_per_image_ > 0) n = std::min(n, captions_per_image_);
      rows.push_back(caps[size_t(mix(cursor_.seed, uint64_t(cursor_.epoch), uint64_t(i)) % uint64_t(n))]);
    }
    Tensor pixels = data_.train.images.batch_rows(idx).to(device_);
    Tensor ids = pad_rows(rows).to(device_);
    if (group_)
      return nn::sharded_clip_loss(model_->encode_image(pixels), model_->encode_text(ids), model_->logit_scale, *group_);
    return model_->loss(pixels, ids);
  }

  std::map<std::string, double> evaluate(int64_t batches) override { return run_eval(batches); }

  nlohmann::json data_cursor() const override { return cursor_.to_json(); }
  void set_data_cursor(const nlohmann::json& c) override { cursor_.from_json(c); }

  void finish(const std::string& run_dir, const std::map<std::string, double>& final_eval) override {
    const std::string dir = (fs::path(run_dir) / "model").string();
    model_->save_folder(dir);
    if (!vocab_path_.empty() && vocab_path_.ends_with(".gz")) {
      write_openai_vocab_as_hf(vocab_path_, dir);
    } else if (!vocab_path_.empty()) {
      const fs::path src = fs::is_directory(vocab_path_) ? fs::path(vocab_path_) : fs::path(vocab_path_).parent_path();
      for (const char* f : {"vocab.json", "merges.txt"})
        if (fs::exists(src / f)) fs::copy_file(src / f, fs::path(dir) / f, fs::copy_options::overwrite_existing);
    } else {
      tokenizer::write_hf_vocab(learned_, dir);
    }
    write_tokenizer_config(dir, model_->config.text.max_position_embeddings);
    write_run_summary(run_dir, dir, final_eval);
    std::printf("model folder: %s (config.json, model.safetensors, vocab.json, merges.txt)\n", dir.c_str());
  }

 private:
  // The first data.eval_images held-out images (0: all), at most `batches` batches of them (0: no limit).
  std::map<std::string, double> run_eval(int64_t batches) {
    NoGradGuard no_grad;
    const PairSet& ev = data_.eval;
    const int64_t n =
        nn::eval_example_limit(eval_images_ > 0 ? std::min(eval_images_, ev.size()) : ev.size(), batches, batch_);
    std::map<std::string, double> m;
    if (n == 0) return m;
    std::vector<Tensor> parts;
    for (int64_t i = 0; i < n; i += 256) {
      std::vector<int64_t> idx;
      for (int64_t j = i; j < std::min(n, i + 256); ++j) idx.push_back(j);
      parts.push_back(model_->encode_image(ev.images.batch_rows(idx).to(device_)).to(Device::cpu()));
    }
    Tensor img = parts.size() == 1 ? parts[0] : cat(parts, 0);  // (n, P)
    // zero-shot on the labelled images
    std::vector<int64_t> rows, labels;
    for (int64_t i = 0; i < n; ++i)
      if (ev.labels[size_t(i)] >= 0) {
        rows.push_back(i);
        labels.push_back(ev.labels[size_t(i)]);
      }
    if (!rows.empty() && !data_.classes.empty()) {
      Tensor w = zeroshot_classifier(*model_, *tok_, data_.classes, data_.templates);  // (C, P)
      Tensor sel = embedding(img, from_vector_i64(rows, {int64_t(rows.size())}));    // (L, P)
      auto acc = topk_accuracy(matmul(sel, w.t()), labels, {1, 5});
      m["zeroshot_top1"] = acc[0];
      m["zeroshot_top5"] = acc[1];
    }
    if (data_.retrieval) {
      std::vector<std::string> texts;
      std::vector<int64_t> owner;
      for (int64_t i = 0; i < n; ++i)
        for (const auto& t : ev.captions[size_t(i)]) {
          texts.push_back(t);
          owner.push_back(i);
        }
      Tensor txt = encode_texts(*model_, *tok_, texts);
      RetrievalRecall r = retrieval_recall(matmul(img, txt.t()), owner);
      const char* names[] = {"r1", "r5", "r10"};
      for (size_t k = 0; k < 3; ++k) {
        m[std::string("i2t_") + names[k]] = r.image_to_text[k];
        m[std::string("t2i_") + names[k]] = r.text_to_image[k];
      }
    }
    m["logit_scale"] = std::exp(model_->logit_scale_value());
    return m;
  }

  Device device_;
  int64_t batch_;
  int64_t captions_per_image_, eval_images_;
  ClipData data_;
  std::unique_ptr<ClipTokenizer> tok_;
  tokenizer::BpeTrainResult learned_;
  std::string vocab_path_;
  std::vector<std::vector<std::vector<int32_t>>> train_tokens_;
  std::shared_ptr<ClipModel> model_;
  std::shared_ptr<nn::ProcessGroup> group_;  // data parallelism: this rank's share of each batch
  EpochCursor cursor_;  // data order: cursor_.seed is data.seed
};

}  // namespace

void register_clip_trainers() {
  nn::TrainerInfo info;
  info.name = "clip";
  info.description = "CLIP (HF CLIPModel layout) on image-text pairs: shapes world or Fashion-MNIST";
  info.extend_schema = add_clip_trainer_keys;
  info.create = [](const nn::Config& c, Device device) -> std::unique_ptr<nn::Trainer> {
    return std::make_unique<ClipTrainer>(c, device);
  };
  nn::register_trainer(std::move(info));
}

}  // namespace minivl::models
