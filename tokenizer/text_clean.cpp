#include "tokenizer/text_clean.h"

#include <algorithm>
#include <cstring>

#include "tokenizer/unicode.h"
#include "tokenizer/unicode_data.h"

namespace minivl::tokenizer {

namespace {

void append_utf8_literal(std::u32string& out, const char* utf8) {
  out += utf8_decode(utf8);
}

const char* find_entity(const data::EntityEntry* table, std::size_t count, const std::string& name) {
  const data::EntityEntry* end = table + count;
  const data::EntityEntry* it = std::lower_bound(
      table, end, name, [](const data::EntityEntry& e, const std::string& key) {
        return std::strcmp(e.name, key.c_str()) < 0;
      });
  if (it != end && name == it->name) return it->utf8;
  return nullptr;
}

const char* find_html5(const std::u32string& name) {
  std::string key;
  for (char32_t c : name) {
    if (c >= 0x80) return nullptr;   // every HTML5 name is ASCII
    key.push_back(static_cast<char>(c));
  }
  return find_entity(data::kHtml5Entities, data::kHtml5EntitiesCount, key);
}

bool is_ascii_digit(char32_t c) { return c >= '0' && c <= '9'; }
bool is_ascii_hex(char32_t c) {
  return is_ascii_digit(c) || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f');
}
bool is_ascii_alnum(char32_t c) {
  return is_ascii_digit(c) || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z');
}

// html's _replace_charref for a numeric reference whose value is `num` (saturated).
void append_numeric_charref(std::u32string& out, uint64_t num) {
  for (std::size_t i = 0; i < data::kInvalidCharrefsCount; ++i) {
    if (data::kInvalidCharrefs[i].code == num) {
      append_utf8_literal(out, data::kInvalidCharrefs[i].utf8);
      return;
    }
  }
  if ((num >= 0xD800 && num <= 0xDFFF) || num > 0x10FFFF) {
    out.push_back(0xFFFD);
    return;
  }
  for (std::size_t i = 0; i < data::kInvalidCodepointsCount; ++i) {
    if (num >= data::kInvalidCodepoints[i].first && num <= data::kInvalidCodepoints[i].last) return;
  }
  out.push_back(static_cast<char32_t>(num));
}

uint64_t parse_saturated(const std::u32string& s, std::size_t begin, std::size_t end, int base) {
  uint64_t v = 0;
  for (std::size_t k = begin; k < end; ++k) {
    const char32_t c = s[k];
    const unsigned d = is_ascii_digit(c) ? c - '0' : (c | 0x20) - 'a' + 10;
    v = v * base + d;
    if (v > 0x110000) v = 0x110000;   // anything above 0x10FFFF behaves the same
  }
  return v;
}

// One match of html's _charref regex at text[i] == '&'; returns the end of the match (or i
// when nothing matches) and appends the replacement.
std::size_t unescape_one(const std::u32string& s, std::size_t i, std::u32string& out) {
  const std::size_t n = s.size();
  std::size_t j = i + 1;
  if (j < n && s[j] == '#') {
    std::size_t k = j + 1;
    while (k < n && is_ascii_digit(s[k])) ++k;          // #[0-9]+;?
    if (k > j + 1) {
      const uint64_t num = parse_saturated(s, j + 1, k, 10);
      if (k < n && s[k] == ';') ++k;
      append_numeric_charref(out, num);
      return k;
    }
    if (j + 1 < n && (s[j + 1] == 'x' || s[j + 1] == 'X')) {   // #[xX][0-9a-fA-F]+;?
      k = j + 2;
      while (k < n && is_ascii_hex(s[k])) ++k;
      if (k > j + 2) {
        const uint64_t num = parse_saturated(s, j + 2, k, 16);
        if (k < n && s[k] == ';') ++k;
        append_numeric_charref(out, num);
        return k;
      }
    }
    return i;   // the named alternative cannot start with '#'
  }
  // [^\t\n\f <&#;]{1,32};?
  std::size_t k = j;
  auto excluded = [](char32_t c) {
    return c == '\t' || c == '\n' || c == '\f' || c == ' ' || c == '<' || c == '&' || c == '#' ||
           c == ';';
  };
  while (k < n && k - j < 32 && !excluded(s[k])) ++k;
  if (k == j) return i;
  if (k < n && s[k] == ';') ++k;
  const std::u32string name = s.substr(j, k - j);
  if (const char* v = find_html5(name)) {
    append_utf8_literal(out, v);
    return k;
  }
  // The longest prefix that is a (legacy, semicolon-less) name.
  for (std::size_t x = name.size() - 1; x > 1; --x) {
    if (const char* v = find_html5(name.substr(0, x))) {
      append_utf8_literal(out, v);
      out.append(name, x, std::u32string::npos);
      return k;
    }
  }
  out.push_back('&');
  out += name;
  return k;
}

}  // namespace

std::u32string html_unescape(const std::u32string& s) {
  if (s.find(U'&') == std::u32string::npos) return s;
  std::u32string out;
  out.reserve(s.size());
  std::size_t i = 0;
  while (i < s.size()) {
    if (s[i] != '&') {
      out.push_back(s[i++]);
      continue;
    }
    const std::size_t end = unescape_one(s, i, out);
    if (end == i) {
      out.push_back('&');
      ++i;
    } else {
      i = end;
    }
  }
  return out;
}

std::u32string ftfy_unescape_html(const std::u32string& s) {
  if (s.find(U'&') == std::u32string::npos) return s;
  std::u32string out;
  out.reserve(s.size());
  const std::size_t n = s.size();
  std::size_t i = 0;
  while (i < n) {
    if (s[i] != '&') {
      out.push_back(s[i++]);
      continue;
    }
    // &#?[0-9A-Za-z]{1,24};
    const bool numeric = i + 1 < n && s[i + 1] == '#';
    const std::size_t k = i + 1 + (numeric ? 1 : 0);
    std::size_t m = k;
    while (m < n && is_ascii_alnum(s[m])) ++m;
    if (m == k || m - k > 24 || m >= n || s[m] != ';') {
      out.push_back(s[i++]);
      continue;
    }
    const std::u32string match = s.substr(i, m + 1 - i);
    i = m + 1;
    if (!numeric) {
      const std::u32string name = match.substr(1);   // "name;"
      const char* v = find_html5(name);
      if (!v) {
        std::string key(name.begin(), name.end());   // ASCII by construction
        v = find_entity(data::kFtfyUpperEntities, data::kFtfyUpperEntitiesCount, key);
      }
      if (v) {
        append_utf8_literal(out, v);
      } else {
        out += match;
      }
    } else {
      const std::u32string unescaped = html_unescape(match);
      // "If html.unescape only decoded part of the string, that's not what we want."
      out += unescaped.find(U';') != std::u32string::npos ? match : unescaped;
    }
  }
  return out;
}

namespace {

// fix_c1_controls, fix_latin_ligatures, fix_character_width and uncurl_quotes are all
// character-to-string translations applied in that order; compose them per character.
void append_uncurled(std::u32string& out, char32_t c) {
  if (c == 0x2BC || (c >= 0x2018 && c <= 0x201B)) {
    out.push_back('\'');
  } else if (c >= 0x201C && c <= 0x201F) {
    out.push_back('"');
  } else {
    out.push_back(c);
  }
}

void append_width_fixed(std::u32string& out, char32_t c) {
  if (c == 0x3000 || (c >= 0xFF01 && c <= 0xFFEF)) {
    const data::WidthEntry* end = data::kWidthMap + data::kWidthMapCount;
    const data::WidthEntry* it = std::lower_bound(
        data::kWidthMap, end, c, [](const data::WidthEntry& e, char32_t v) { return e.code < v; });
    if (it != end && it->code == c) {
      for (char32_t r : utf8_decode(it->utf8)) append_uncurled(out, r);
      return;
    }
  }
  append_uncurled(out, c);
}

const char32_t* ligature(char32_t c) {
  switch (c) {
    case 0x132: return U"IJ";
    case 0x133: return U"ij";
    case 0x149: return U"\u02BCn";
    case 0x1F1: return U"DZ";
    case 0x1F2: return U"Dz";
    case 0x1F3: return U"dz";
    case 0x1C4: return U"D\u017D";
    case 0x1C5: return U"D\u017E";
    case 0x1C6: return U"d\u017E";
    case 0x1C7: return U"LJ";
    case 0x1C8: return U"Lj";
    case 0x1C9: return U"lj";
    case 0x1CA: return U"NJ";
    case 0x1CB: return U"Nj";
    case 0x1CC: return U"nj";
    case 0xFB00: return U"ff";
    case 0xFB01: return U"fi";
    case 0xFB02: return U"fl";
    case 0xFB03: return U"ffi";
    case 0xFB04: return U"ffl";
    case 0xFB05: return U"\u017Ft";
    case 0xFB06: return U"st";
    default: return nullptr;
  }
}

// Windows-1252 for bytes 0x80..0x9F; the five unassigned ones stay as they are ("sloppy").
char32_t c1_to_windows1252(char32_t c) {
  static const char32_t kMap[32] = {
      0x20AC, 0x81,   0x201A, 0x192,  0x201E, 0x2026, 0x2020, 0x2021, 0x2C6,  0x2030, 0x160,
      0x2039, 0x152,  0x8D,   0x17D,  0x8F,   0x90,   0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
      0x2013, 0x2014, 0x2DC,  0x2122, 0x161,  0x203A, 0x153,  0x9D,   0x17E,  0x178};
  return (c >= 0x80 && c <= 0x9F) ? kMap[c - 0x80] : c;
}

std::u32string translate_chars(const std::u32string& s) {
  std::u32string out;
  out.reserve(s.size());
  for (char32_t c : s) {
    c = c1_to_windows1252(c);
    if (const char32_t* lig = ligature(c)) {
      for (; *lig; ++lig) append_width_fixed(out, *lig);
    } else {
      append_width_fixed(out, c);
    }
  }
  return out;
}

std::u32string fix_line_breaks(const std::u32string& s) {
  std::u32string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char32_t c = s[i];
    if (c == '\r') {
      if (i + 1 < s.size() && s[i + 1] == '\n') ++i;
      out.push_back('\n');
    } else if (c == 0x2028 || c == 0x2029 || c == 0x85) {
      out.push_back('\n');
    } else {
      out.push_back(c);
    }
  }
  return out;
}

// ANSI_RE = '\033\[((?:\d|;)*)([a-zA-Z])' (\d: Unicode decimal digits).
std::u32string remove_terminal_escapes(const std::u32string& s) {
  if (s.find(U'\x1b') == std::u32string::npos) return s;
  std::u32string out;
  std::size_t i = 0;
  while (i < s.size()) {
    if (s[i] == 0x1B && i + 1 < s.size() && s[i + 1] == '[') {
      std::size_t k = i + 2;
      while (k < s.size() && (s[k] == ';' || is_decimal_digit(s[k]))) ++k;
      if (k < s.size() && ((s[k] | 0x20) >= 'a' && (s[k] | 0x20) <= 'z')) {
        i = k + 1;
        continue;
      }
    }
    out.push_back(s[i++]);
  }
  return out;
}

bool is_removed_control(char32_t c) {
  return c <= 0x08 || c == 0x0B || (c >= 0x0E && c <= 0x1F) || c == 0x7F ||
         (c >= 0x206A && c <= 0x206F) || c == 0xFEFF || (c >= 0xFFF9 && c <= 0xFFFC);
}

std::u32string fix_segment(std::u32string text, bool unescape) {
  while (true) {
    std::u32string orig = text;
    if (unescape) text = ftfy_unescape_html(text);
    text = translate_chars(text);
    text = fix_line_breaks(text);
    text = remove_terminal_escapes(text);
    std::erase_if(text, is_removed_control);
    text = nfc(text);
    if (text == orig) return text;
  }
}

std::u32string strip_python(const std::u32string& s) {
  std::size_t b = 0, e = s.size();
  while (b < e && is_python_space(s[b])) ++b;
  while (e > b && is_python_space(s[e - 1])) --e;
  return s.substr(b, e - b);
}

// regex.sub(r'\s+', ' ', text).strip()
std::u32string whitespace_clean(const std::u32string& s) {
  std::u32string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) {
    if (is_regex_space(s[i])) {
      while (i < s.size() && is_regex_space(s[i])) ++i;
      out.push_back(' ');
    } else {
      out.push_back(s[i++]);
    }
  }
  return strip_python(out);
}

// ASCII text with no '&', no controls other than \t \n \f, no ESC and no '\r' passes through
// ftfy and html.unescape unchanged; only whitespace and case change.
bool is_plain_ascii(std::string_view s) {
  for (unsigned char c : s) {
    if (c >= 0x7F || c == '&') return false;
    if (c < 0x20 && c != '\t' && c != '\n' && c != '\f') return false;
  }
  return true;
}

}  // namespace

std::u32string ftfy_fix_text(const std::u32string& text) {
  std::u32string out;
  bool unescape = true;   // unescape_html="auto": off from the first segment holding '<'
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t brk = text.find(U'\n', pos);
    brk = brk == std::u32string::npos ? text.size() : brk + 1;
    std::u32string segment = text.substr(pos, brk - pos);
    if (unescape && segment.find(U'<') != std::u32string::npos) unescape = false;
    out += fix_segment(std::move(segment), unescape);
    pos = brk;
  }
  return out;
}

std::u32string clean_text(std::string_view utf8) {
  if (is_plain_ascii(utf8)) {
    std::u32string out;
    out.reserve(utf8.size());
    bool pending_space = false;
    for (unsigned char c : utf8) {
      if (c == ' ' || c == '\t' || c == '\n' || c == '\f') {
        pending_space = !out.empty();
        continue;
      }
      if (pending_space) out.push_back(' ');
      pending_space = false;
      out.push_back(c >= 'A' && c <= 'Z' ? c + 32 : c);
    }
    return out;
  }
  std::u32string text = ftfy_fix_text(utf8_decode(utf8));
  text = strip_python(html_unescape(html_unescape(text)));
  return python_lower(whitespace_clean(text));
}

}  // namespace minivl::tokenizer
