// minivl tokenize / detokenize / train-bpe: the CLIP tokenizer from the command line.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "core/error.h"
#include "tokenizer/bpe_trainer.h"
#include "tokenizer/clip_tokenizer.h"
#include "tools/numeric_option.h"

namespace minivl::tools {

namespace {

void print_ids(const std::vector<int32_t>& ids) {
  std::string line;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (i) line.push_back(' ');
    line += std::to_string(ids[i]);
  }
  line.push_back('\n');
  std::fwrite(line.data(), 1, line.size(), stdout);
}

}  // namespace

void register_tokenize_commands(CLI::App& app) {
  struct TokenizeOptions {
    std::string vocab;
    int context = 0;
    bool no_truncate = false;
    std::vector<std::string> texts;
  };
  auto tok_opts = std::make_shared<TokenizeOptions>();
  CLI::App* tok = app.add_subcommand(
      "tokenize", "CLIP BPE token ids, one line per TEXT (no SOT/EOT unless --context is given)");
  tok->add_option("--vocab", tok_opts->vocab,
                  "bpe_simple_vocab_16e6.txt.gz, vocab.json (merges.txt beside it), "
                  "tokenizer.json or a model folder")
      ->required();
  add_numeric_option(tok, "--context", tok_opts->context, Bounds<int>{2, 1 << 20},
                     "print clip.tokenize rows: SOT + ids + EOT padded with 0 to this length (CLIP: 77)");
  tok->add_flag("--no-truncate", tok_opts->no_truncate,
                "with --context: fail on a text that does not fit instead of truncating it");
  // TEXT... are taken as extras, so that texts such as "-_-" or "--- wow" are not read as options.
  tok->allow_extras();
  tok->prefix_command();
  tok->footer("TEXT...: one or more texts; each prints one line of ids.");
  tok->callback([tok, tok_opts] {
    tok_opts->texts = tok->remaining();
    MINIVL_CHECK(!tok_opts->texts.empty(), "tokenize: no TEXT given");
    const auto tokenizer = tokenizer::ClipTokenizer::load(tok_opts->vocab);
    for (const std::string& text : tok_opts->texts) {
      if (tok_opts->context > 0) {
        print_ids(tokenizer.tokenize({text}, tok_opts->context, !tok_opts->no_truncate)[0]);
      } else {
        print_ids(tokenizer.encode(text));
      }
    }
  });

  struct DetokenizeOptions {
    std::string vocab;
    std::vector<int32_t> ids;
  };
  auto detok_opts = std::make_shared<DetokenizeOptions>();
  CLI::App* detok = app.add_subcommand("detokenize", "text of CLIP BPE token ids (</w> -> space)");
  detok->add_option("--vocab", detok_opts->vocab, "vocabulary, as for tokenize")->required();
  add_numeric_list(detok, "ids", detok_opts->ids, Bounds<int32_t>{0, INT32_MAX},
                   "token ids (each must be in the vocabulary)")
      ->required();
  detok->callback([detok_opts] {
    const auto tokenizer = tokenizer::ClipTokenizer::load(detok_opts->vocab);
    const std::string text = tokenizer.decode(detok_opts->ids) + "\n";
    std::fwrite(text.data(), 1, text.size(), stdout);
  });

  struct TrainOptions {
    std::string corpus;
    std::size_t vocab_size = 0;
    std::string out;
  };
  auto train_opts = std::make_shared<TrainOptions>();
  CLI::App* train = app.add_subcommand(
      "train-bpe", "learn a small BPE vocabulary (CLIP scheme) from a corpus, one text per line");
  train->add_option("--corpus", train_opts->corpus, "text file, one text per line")->required();
  add_numeric_option(train, "--vocab-size", train_opts->vocab_size, Bounds<std::size_t>{514, 1 << 20},
                     "ids in all: 512 byte symbols, the merges, <|startoftext|> and <|endoftext|>")
      ->required();
  train->add_option("--out", train_opts->out, "folder for vocab.json + merges.txt")->required();
  train->callback([train_opts] {
    std::ifstream in(train_opts->corpus, std::ios::binary);
    MINIVL_CHECK(in.good(), "train-bpe: cannot open corpus ", train_opts->corpus);
    std::vector<std::string> lines;
    for (std::string line; std::getline(in, line);) lines.push_back(std::move(line));
    const auto result = tokenizer::train_bpe(lines, train_opts->vocab_size);
    tokenizer::write_hf_vocab(result, train_opts->out);
    std::printf("train-bpe: %zu texts, %zu merges, %zu ids -> %s/vocab.json, %s/merges.txt\n",
                lines.size(), result.merges.size(), result.vocab.size(), train_opts->out.c_str(),
                train_opts->out.c_str());
  });
}

}  // namespace minivl::tools
