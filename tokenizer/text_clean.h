#pragma once
// The text cleaning in front of CLIP's BPE, as OpenAI's simple_tokenizer.py does it:
//
//   text = ftfy.fix_text(text)                      -> ftfy_fix_text (a subset, see below)
//   text = html.unescape(html.unescape(text))       -> html_unescape, twice
//   text = text.strip()                             -> str.strip(): Python's isspace()
//   text = regex.sub(r'\s+', ' ', text).strip()     -> regex module's \s = White_Space
//   text = text.lower()                             -> python_lower
//
// ftfy_fix_text reproduces ftfy 6.x's fix_text with its default configuration, except for the
// mojibake detection (`fix_encoding`: re-decoding text that looks like UTF-8 read as Latin-1,
// Windows-125x, MacRoman...), which is not replicated. Everything else is: per-line segments,
// unescape_html="auto" (off from the first line holding '<'), and, repeated until nothing
// changes, unescape_html, fix_c1_controls, fix_latin_ligatures, fix_character_width,
// uncurl_quotes, fix_line_breaks, remove_terminal_escapes, remove_control_chars, NFC.
#include <string>
#include <string_view>

namespace minivl::tokenizer {

// Python's html.unescape: all HTML5 named references (with the no-semicolon legacy names and
// the longest-prefix rule) and numeric references with html's invalid-codepoint rules.
std::u32string html_unescape(const std::u32string& text);

// ftfy.fixes.unescape_html: only `&name;` / `&#...;` forms, plus ftfy's upper-case names.
std::u32string ftfy_unescape_html(const std::u32string& text);

// ftfy.fix_text without mojibake repair (see above).
std::u32string ftfy_fix_text(const std::u32string& text);

// The whole pipeline: UTF-8 in (invalid bytes become U+FFFD), cleaned lower-case code points out.
std::u32string clean_text(std::string_view utf8);

}  // namespace minivl::tokenizer
