// The rules and conservation tables of relevance methods, as the command line prints them and the
// report shows them.

#include <iomanip>
#include <sstream>

#include "sieve/lrp.hpp"

namespace sieve {
namespace {

// Width of a table's node column: 28, or one more than the longest name (exporters write long paths).
int node_column(const nlohmann::json& rows) {
  size_t width = 27;
  for (const nlohmann::json& r : rows) width = std::max(width, r["node"].get<std::string>().size());
  return static_cast<int>(width + 1);
}

}  // namespace

nlohmann::json rules_json(const std::string& method, const RelevanceAnalyzer& analyzer, const Model& model) {
  nlohmann::json nodes = nlohmann::json::array();
  for (const RuleAssignment& a : analyzer.assignment(model))
    nodes.push_back({{"node", a.name}, {"op_type", a.op_type}, {"rule", a.rule}});
  return {{"method", method}, {"nodes", nodes}};
}

std::string rules_table(const nlohmann::json& rules) {
  std::ostringstream out;
  out << "rules of " << rules["method"].get<std::string>() << ":\n";
  const int width = node_column(rules["nodes"]);
  for (const nlohmann::json& n : rules["nodes"]) {
    out << "  " << std::left << std::setw(width) << n["node"].get<std::string>() << std::setw(20)
        << n["op_type"].get<std::string>() << n["rule"].get<std::string>() << "\n";
  }
  return out.str();
}

nlohmann::json conservation_json(const std::string& method, const ConservationReport& report) {
  nlohmann::json layers = nlohmann::json::array();
  for (const LayerRelevance& l : report.layers) {
    const double out = l.output_sum[0], in = l.input_sum[0];
    layers.push_back({{"node", l.name},
                      {"op_type", l.op_type},
                      {"sum_out", out},
                      {"sum_in", in},
                      {"ratio", out != 0.0 ? in / out : 0.0}});
  }
  return {{"method", method},
          {"explanations", report.explanations},
          {"mean_target_logit", report.mean_target_logit},
          {"layers", layers}};
}

std::string conservation_table(const nlohmann::json& c) {
  std::ostringstream out;
  out << "relevance per layer for " << c["method"].get<std::string>() << " (means over "
      << c["explanations"].get<size_t>() << " explanation(s); mean target logit "
      << c["mean_target_logit"].get<double>() << "):\n";
  const int width = node_column(c["layers"]);
  out << "  " << std::left << std::setw(width) << "node" << std::setw(20) << "op" << std::right
      << std::setw(14) << "sum R out" << std::setw(14) << "sum R in" << std::setw(10) << "in/out"
      << "\n";
  for (const nlohmann::json& l : c["layers"]) {
    out << "  " << std::left << std::setw(width) << l["node"].get<std::string>() << std::setw(20)
        << l["op_type"].get<std::string>() << std::right << std::setw(14) << l["sum_out"].get<double>()
        << std::setw(14) << l["sum_in"].get<double>() << std::setw(10) << l["ratio"].get<double>() << "\n";
  }
  return out.str();
}

}  // namespace sieve
