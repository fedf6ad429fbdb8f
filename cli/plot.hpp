#pragma once

// Pieces of the SVG line plots the commands write (signal-quality, evaluate), and writing text files.

#include <string>

namespace sieve::cli {

// `s` with &, <, > and " escaped for XML text and attributes.
std::string xml_escape(const std::string& s);
// A marker of shape `series` % 4 (circle, square, triangle, diamond) centred at (x, y).
std::string marker(size_t series, double x, double y, const char* color);
// Writes `text` to `path`; throws sieve::Error naming the file when it cannot.
void write_text(const std::string& path, const std::string& text);

}  // namespace sieve::cli
