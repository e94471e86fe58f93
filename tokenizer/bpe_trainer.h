#pragma once
// A BPE trainer for small custom vocabularies in CLIP's scheme: the same cleaning and
// pre-tokenisation as ClipTokenizer, words as byte-alphabet symbols with "</w>" on the last one,
// then repeatedly the most frequent adjacent pair is merged (ties: the smaller pair of strings).
// The vocabulary is 256 byte symbols, the same with "</w>", one token per merge (unless a merge
// rebuilds a string already in it), then <|startoftext|> and <|endoftext|>.
#include <cstdint>
#include <string>
#include <vector>

#include "tokenizer/clip_tokenizer.h"

namespace minivl::tokenizer {

struct BpeTrainResult {
  std::vector<std::string> vocab;   // id -> token string
  MergeList merges;                 // in rank order
};

// vocab_size counts every id, specials included (at least 514). Training stops early when no
// pair occurs at least min_pair_count times.
BpeTrainResult train_bpe(const std::vector<std::string>& texts, std::size_t vocab_size,
                         int64_t min_pair_count = 2);

// Writes DIR/vocab.json and DIR/merges.txt ("#version: 0.2" header), as Hugging Face's CLIP
// folders hold them; ClipTokenizer::load(DIR) reads them back.
void write_hf_vocab(const BpeTrainResult& result, const std::string& out_dir);

}  // namespace minivl::tokenizer
