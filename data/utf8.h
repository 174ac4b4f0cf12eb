// UTF-8 validity of text the project reads: which bytes are not part of a well-formed sequence
// (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF). sentencepiece turns each
// such byte into U+FFFD when it encodes, so callers count them to say so. Not a decoder.
#pragma once
#include <cstddef>
#include <string_view>

namespace infini {

// The number of bytes of `s` outside well-formed UTF-8 sequences; *first (when given) gets the
// offset of the first one, or s.size() when there is none.
size_t invalid_utf8_bytes(std::string_view s, size_t* first = nullptr);

}  // namespace infini
