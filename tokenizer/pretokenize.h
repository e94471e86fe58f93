#pragma once
// CLIP's pre-tokeniser without a regex engine. The reference is
//
//   regex.compile(r"<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|"
//                 r"[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+", regex.IGNORECASE)
//
// applied with findall to already lower-cased text. At each position the first alternative
// that matches wins; where none does (whitespace), findall moves on by one character.
// IGNORECASE only matters in two places once the text is lower-case: 's' also matches U+017F
// (LATIN SMALL LETTER LONG S), and U+0345 (COMBINING GREEK YPOGEGRAMMENI, whose case fold is a
// letter) matches no alternative at all, so it is skipped like whitespace.
#include <cstddef>
#include <string_view>

#include "tokenizer/unicode.h"

namespace minivl::tokenizer {

namespace detail {

inline bool ci_char_equal(char32_t text, char32_t pattern) {
  return text == pattern || (pattern == U's' && text == 0x17F);
}

inline std::size_t match_literal(std::u32string_view t, std::size_t i, std::u32string_view lit) {
  if (t.size() - i < lit.size()) return 0;
  for (std::size_t k = 0; k < lit.size(); ++k) {
    if (!ci_char_equal(t[i + k], lit[k])) return 0;
  }
  return lit.size();
}

// Length of the contraction starting at t[i] == '\'', or 0.
inline std::size_t match_contraction(std::u32string_view t, std::size_t i) {
  if (i + 1 >= t.size()) return 0;
  const char32_t c = t[i + 1];
  if (ci_char_equal(c, U's') || c == U't' || c == U'm' || c == U'd') return 2;
  if (i + 2 < t.size()) {
    const char32_t c2 = t[i + 2];
    if ((c == U'r' && c2 == U'e') || (c == U'v' && c2 == U'e') || (c == U'l' && c2 == U'l'))
      return 3;
  }
  return 0;
}

inline bool is_other(char32_t c) {
  return !is_regex_space(c) && !is_letter(c) && !is_number(c) && c != 0x345;
}

}  // namespace detail

// Calls emit(begin, end) (code point offsets into `text`) for each pre-token, in order.
template <typename Emit>
void pretokenize(std::u32string_view t, Emit&& emit) {
  const std::size_t n = t.size();
  std::size_t i = 0;
  while (i < n) {
    const char32_t c = t[i];
    std::size_t len = 0;
    if (c == U'<') {
      len = detail::match_literal(t, i, U"<|startoftext|>");
      if (!len) len = detail::match_literal(t, i, U"<|endoftext|>");
    } else if (c == U'\'') {
      len = detail::match_contraction(t, i);
    }
    if (len == 0) {
      if (is_letter(c)) {
        len = 1;
        while (i + len < n && is_letter(t[i + len])) ++len;
      } else if (is_number(c)) {
        len = 1;
      } else if (detail::is_other(c)) {
        len = 1;
        while (i + len < n && detail::is_other(t[i + len])) ++len;
      } else {
        ++i;   // whitespace (or U+0345): no match here
        continue;
      }
    }
    emit(i, i + len);
    i += len;
  }
}

}  // namespace minivl::tokenizer
