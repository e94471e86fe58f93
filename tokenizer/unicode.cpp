#include "tokenizer/unicode.h"

#include <utf8proc.h>

#include <algorithm>
#include <cstdlib>

#include "core/error.h"
#include "tokenizer/unicode_data.h"

namespace minivl::tokenizer {

namespace {

bool in_ranges(const data::CodeRange* ranges, std::size_t count, char32_t c) {
  const data::CodeRange* end = ranges + count;
  const data::CodeRange* it = std::upper_bound(
      ranges, end, c, [](char32_t v, const data::CodeRange& r) { return v < r.first; });
  return it != ranges && c <= (it - 1)->last;
}

}  // namespace

std::u32string utf8_decode(std::string_view s) {
  std::u32string out;
  out.reserve(s.size());
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const std::size_t n = s.size();
  std::size_t i = 0;
  while (i < n) {
    const unsigned b0 = p[i];
    if (b0 < 0x80) {
      out.push_back(b0);
      ++i;
      continue;
    }
    // Well-formed sequences (Unicode Table 3-7): the allowed range of the second byte
    // depends on the lead byte; later bytes are always 80..BF.
    int len = 0;
    unsigned lo = 0x80, hi = 0xBF;
    if (b0 >= 0xC2 && b0 <= 0xDF) {
      len = 2;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
      len = 3;
      if (b0 == 0xE0) lo = 0xA0;
      if (b0 == 0xED) hi = 0x9F;
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
      len = 4;
      if (b0 == 0xF0) lo = 0x90;
      if (b0 == 0xF4) hi = 0x8F;
    }
    if (len == 0) {   // C0, C1, F5..FF, or a stray continuation byte
      out.push_back(0xFFFD);
      ++i;
      continue;
    }
    char32_t cp = b0 & (0xFF >> (len + 1));
    std::size_t j = i + 1;
    bool ok = true;
    for (int k = 1; k < len; ++k, ++j) {
      const unsigned lo_k = k == 1 ? lo : 0x80, hi_k = k == 1 ? hi : 0xBF;
      if (j >= n || p[j] < lo_k || p[j] > hi_k) {
        ok = false;
        break;
      }
      cp = (cp << 6) | (p[j] & 0x3F);
    }
    if (ok) {
      out.push_back(cp);
    } else {
      out.push_back(0xFFFD);   // one U+FFFD for the maximal subpart i..j-1
    }
    i = j;
  }
  return out;
}

void utf8_append(std::string& out, char32_t c) {
  if (c < 0x80) {
    out.push_back(static_cast<char>(c));
  } else if (c < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (c >> 6)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else if (c < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (c >> 12)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (c >> 18)));
    out.push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  }
}

std::string utf8_encode(std::u32string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char32_t c : text) utf8_append(out, c);
  return out;
}

bool is_letter(char32_t c) {
  if (c < 0x80) return (c | 0x20) >= 'a' && (c | 0x20) <= 'z';
  switch (utf8proc_category(static_cast<utf8proc_int32_t>(c))) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO:
      return true;
    case UTF8PROC_CATEGORY_CN:   // unassigned in utf8proc's (older) Unicode: ask regex's tables
      return in_ranges(data::kRegexLetters, data::kRegexLettersCount, c);
    default:
      return false;
  }
}

bool is_number(char32_t c) {
  if (c < 0x80) return c >= '0' && c <= '9';
  switch (utf8proc_category(static_cast<utf8proc_int32_t>(c))) {
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_NO:
      return true;
    case UTF8PROC_CATEGORY_CN:
      return in_ranges(data::kRegexNumbers, data::kRegexNumbersCount, c);
    default:
      return false;
  }
}

bool is_decimal_digit(char32_t c) {
  if (c < 0x80) return c >= '0' && c <= '9';
  return utf8proc_category(static_cast<utf8proc_int32_t>(c)) == UTF8PROC_CATEGORY_ND;
}

bool is_regex_space(char32_t c) {
  if (c < 0x80) return (c >= 0x09 && c <= 0x0D) || c == 0x20;
  switch (c) {
    case 0x85: case 0xA0: case 0x1680: case 0x2028: case 0x2029: case 0x202F: case 0x205F:
    case 0x3000:
      return true;
    default:
      return c >= 0x2000 && c <= 0x200A;
  }
}

bool is_python_space(char32_t c) {
  return is_regex_space(c) || (c >= 0x1C && c <= 0x1F);
}

std::u32string python_lower(std::u32string_view text) {
  std::u32string out;
  out.reserve(text.size());
  const std::size_t n = text.size();
  for (std::size_t i = 0; i < n; ++i) {
    const char32_t c = text[i];
    if (c < 0x80) {
      out.push_back(c >= 'A' && c <= 'Z' ? c + 32 : c);
    } else if (c == 0x130) {   // LATIN CAPITAL LETTER I WITH DOT ABOVE: full mapping
      out.push_back(U'i');
      out.push_back(0x307);
    } else if (c == 0x3A3) {   // GREEK CAPITAL SIGMA: CPython's handle_capital_sigma
      auto ignorable = [](char32_t x) {
        return in_ranges(data::kCaseIgnorable, data::kCaseIgnorableCount, x);
      };
      auto cased = [](char32_t x) { return in_ranges(data::kCased, data::kCasedCount, x); };
      std::size_t j = i;
      while (j > 0 && ignorable(text[j - 1])) --j;
      bool final_sigma = j > 0 && cased(text[j - 1]);
      if (final_sigma) {
        std::size_t k = i + 1;
        while (k < n && ignorable(text[k])) ++k;
        final_sigma = k == n || !cased(text[k]);
      }
      out.push_back(final_sigma ? 0x3C2 : 0x3C3);
    } else {
      out.push_back(static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(c))));
    }
  }
  return out;
}

std::u32string nfc(const std::u32string& text) {
  // Text below U+0300 is always NFC-stable (no combining marks, no Hangul).
  if (std::all_of(text.begin(), text.end(), [](char32_t c) { return c < 0x300; })) return text;
  const std::string bytes = utf8_encode(text);
  utf8proc_uint8_t* mapped = nullptr;
  const utf8proc_ssize_t len =
      utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(bytes.data()),
                   static_cast<utf8proc_ssize_t>(bytes.size()), &mapped,
                   static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
  MINIVL_CHECK(len >= 0, "tokenizer: NFC normalisation failed: ", utf8proc_errmsg(len));
  std::u32string out = utf8_decode(
      std::string_view(reinterpret_cast<const char*>(mapped), static_cast<std::size_t>(len)));
  std::free(mapped);
  return out;
}

}  // namespace minivl::tokenizer
