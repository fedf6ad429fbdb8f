#pragma once

// The relevance treatment of recurrent cells: the LSTM rules of the book's ch. 11 (Arras et al.),
// relevance walked back through time inside the node.

#include <memory>

#include "rules/treatments.hpp"

namespace sieve::rules {

// The treatment of an LSTM node, its products split by RelevanceOptions::lstm_products; other recurrent
// cells are refused with advice.
std::unique_ptr<Treatment> recurrent_treatment(const TreatmentRequest& request);

}  // namespace sieve::rules
