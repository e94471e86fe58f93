#pragma once
// UTF-8 <-> code points and the character classes the CLIP tokenizer needs, on utf8proc.
//
// Decoding follows CPython's bytes.decode("utf-8", errors="replace"): each maximal ill-formed
// subpart (Unicode ch. 3, "U+FFFD substitution of maximal subparts") becomes one U+FFFD.
#include <cstdint>
#include <string>
#include <string_view>

namespace minivl::tokenizer {

std::u32string utf8_decode(std::string_view bytes);
void utf8_append(std::string& out, char32_t c);
std::string utf8_encode(std::u32string_view text);

// The `regex` module's \p{L} (Lu Ll Lt Lm Lo) and \p{N} (Nd Nl No): utf8proc's categories, and
// for code points utf8proc leaves unassigned (its Unicode is older), tables generated from `regex`.
bool is_letter(char32_t c);
bool is_number(char32_t c);
bool is_decimal_digit(char32_t c);   // Nd: Python re's \d on str
// The `regex` module's \s on str: Unicode White_Space (no U+001C..U+001F).
bool is_regex_space(char32_t c);
// Python's str.isspace() (used by str.strip()): White_Space plus U+001C..U+001F.
bool is_python_space(char32_t c);

// Python's str.lower(): utf8proc's simple lowercase mapping plus CPython's special cases
// (U+0130 -> "i\u0307", Final_Sigma for U+03A3).
std::u32string python_lower(std::u32string_view text);

// Unicode NFC (utf8proc).
std::u32string nfc(const std::u32string& text);

}  // namespace minivl::tokenizer
