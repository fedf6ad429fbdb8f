#include "plot.hpp"

#include <fstream>
#include <iomanip>
#include <sstream>

#include "sieve/error.hpp"

namespace sieve::cli {

std::string xml_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string marker(size_t series, double x, double y, const char* color) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(1);
  switch (series % 4) {
    case 0:
      s << "<circle cx=\"" << x << "\" cy=\"" << y << "\" r=\"3.5\"";
      break;
    case 1:
      s << "<rect x=\"" << x - 3.2 << "\" y=\"" << y - 3.2 << "\" width=\"6.4\" height=\"6.4\"";
      break;
    case 2:
      s << "<polygon points=\"" << x << "," << y - 4.2 << " " << x + 4 << "," << y + 3 << " " << x - 4 << ","
        << y + 3 << "\"";
      break;
    default:
      s << "<polygon points=\"" << x << "," << y - 4.5 << " " << x + 4 << "," << y << " " << x << ","
        << y + 4.5 << " " << x - 4 << "," << y << "\"";
  }
  s << " fill=\"" << color << "\"/>\n";
  return s.str();
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  if (!out) throw Error(path + ": cannot write file");
}

}  // namespace sieve::cli
