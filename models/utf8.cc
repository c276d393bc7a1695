#include "models/utf8.h"

#include <cstdint>

#include "absl/strings/str_format.h"

namespace lstmserve {
namespace {

// Length of the sequence starting with lead byte `b`; 0 if `b` cannot lead.
int SequenceLength(unsigned char b) {
  if (b < 0x80) return 1;
  if (b >= 0xC2 && b <= 0xDF) return 2;
  if (b >= 0xE0 && b <= 0xEF) return 3;
  if (b >= 0xF0 && b <= 0xF4) return 4;
  return 0;
}

// Decodes one sequence at text[i]; returns its length, or 0 if invalid, or -1
// if valid so far but truncated by the end of `text`.
int DecodeOne(absl::string_view text, size_t i, char32_t* cp) {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const int len = SequenceLength(s[i]);
  if (len == 0) return 0;
  if (len == 1) {
    *cp = s[i];
    return 1;
  }
  char32_t v = s[i] & (0x7F >> len);
  for (int k = 1; k < len; ++k) {
    if (i + k >= text.size()) return -1;
    const unsigned char c = s[i + k];
    if ((c & 0xC0) != 0x80) return 0;
    // Second-byte ranges that exclude overlongs, surrogates and > U+10FFFF.
    if (k == 1) {
      if (s[i] == 0xE0 && c < 0xA0) return 0;
      if (s[i] == 0xED && c > 0x9F) return 0;
      if (s[i] == 0xF0 && c < 0x90) return 0;
      if (s[i] == 0xF4 && c > 0x8F) return 0;
    }
    v = (v << 6) | (c & 0x3F);
  }
  *cp = v;
  return len;
}

constexpr char kReplacement[] = "\xEF\xBF\xBD";  // U+FFFD

}  // namespace

bool DecodeUtf8(absl::string_view text, std::vector<char32_t>* out, size_t* error_offset) {
  out->clear();
  size_t i = 0;
  while (i < text.size()) {
    char32_t cp;
    const int n = DecodeOne(text, i, &cp);
    if (n <= 0) {
      if (error_offset != nullptr) *error_offset = i;
      return false;
    }
    out->push_back(cp);
    i += n;
  }
  return true;
}

void AppendUtf8(char32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

std::string DescribeCodePoint(char32_t cp) {
  std::string glyph;
  if (cp >= 0x20 && cp != 0x7F && !(cp >= 0x80 && cp < 0xA0)) {
    AppendUtf8(cp, &glyph);
    return absl::StrFormat("'%s' (U+%04X)", glyph, static_cast<uint32_t>(cp));
  }
  return absl::StrFormat("U+%04X", static_cast<uint32_t>(cp));
}

std::string Utf8Assembler::Push(absl::string_view bytes) {
  pending_.append(bytes.data(), bytes.size());
  std::string out;
  size_t i = 0;
  while (i < pending_.size()) {
    char32_t cp;
    const int n = DecodeOne(pending_, i, &cp);
    if (n == -1) break;  // wait for the rest of this character
    if (n == 0) {
      out += kReplacement;
      i += 1;
      continue;
    }
    out.append(pending_, i, n);
    i += n;
  }
  pending_.erase(0, i);
  return out;
}

std::string Utf8Assembler::Flush() {
  std::string out = pending_.empty() ? "" : kReplacement;
  pending_.clear();
  return out;
}

bool IsWhitespace(char32_t cp) {
  if (cp == U' ' || (cp >= U'\t' && cp <= U'\r') || (cp >= 0x1C && cp <= 0x1F)) return true;
  if (cp < 0x85) return false;
  return cp == 0x85 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) ||
         cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

}  // namespace lstmserve
