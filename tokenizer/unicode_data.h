#pragma once
// Tables generated from CPython by tokenizer/gen_unicode_data.py (see unicode_data.cpp's
// first line for the Python and Unicode versions). They let the text cleaner reproduce
// html.unescape, ftfy's fixers and str.lower()'s Final_Sigma rule exactly.
#include <cstddef>
#include <cstdint>

namespace minivl::tokenizer::data {

struct EntityEntry {
  const char* name;   // without the leading '&'; keeps its ';' when it has one
  const char* utf8;   // replacement text
};
struct NumericReplacement {
  uint32_t code;
  const char* utf8;
};
struct WidthEntry {
  uint32_t code;
  const char* utf8;
};
struct CodeRange {
  uint32_t first, last;   // inclusive
};

extern const EntityEntry kHtml5Entities[];          // sorted by name
extern const std::size_t kHtml5EntitiesCount;
extern const EntityEntry kFtfyUpperEntities[];      // sorted by name
extern const std::size_t kFtfyUpperEntitiesCount;
extern const NumericReplacement kInvalidCharrefs[]; // sorted by code
extern const std::size_t kInvalidCharrefsCount;
extern const CodeRange kInvalidCodepoints[];
extern const std::size_t kInvalidCodepointsCount;
extern const WidthEntry kWidthMap[];                // sorted by code
extern const std::size_t kWidthMapCount;
extern const CodeRange kCaseIgnorable[];
extern const std::size_t kCaseIgnorableCount;
extern const CodeRange kCased[];
extern const std::size_t kCasedCount;
extern const CodeRange kRegexLetters[];   // the regex module's \p{L}
extern const std::size_t kRegexLettersCount;
extern const CodeRange kRegexNumbers[];   // the regex module's \p{N}
extern const std::size_t kRegexNumbersCount;

}  // namespace minivl::tokenizer::data
