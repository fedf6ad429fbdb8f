#pragma once

// The one place that tells which format a data file holds; every reader asks it.

#include <string>
#include <string_view>

namespace sieve {

enum class DataFormat { npy, idx, png, jpeg, unknown };

// By the leading bytes: the .npy magic, PNG and JPEG signatures, an IDX header (two zero bytes, a
// type code, a rank of 1-8) or gzip (a gzip'ed IDX file).
DataFormat format_of_bytes(std::string_view head);
// The format of a file by its content alone; `unknown` when it cannot be read.
DataFormat format_of_content(const std::string& path);
// The format of a file by its content; a file too short or of no known format falls back to its
// extension (.npy; -ubyte, .idx, .gz; .png; .jpg, .jpeg), so a damaged file still reaches the reader
// that names what is wrong with it. `unknown` when neither tells (or the file cannot be read).
DataFormat format_of_file(const std::string& path);
bool is_image_format(DataFormat format);

}  // namespace sieve
