#pragma once

// The relevance treatment of recurrent cells: the LSTM rules of the book's ch. 11 (Arras et al.) and
// the same rules on GRU and RNN cells, relevance walked back through time inside the node.

#include <memory>

#include "rules/treatments.hpp"

namespace sieve::rules {

// The treatment of an LSTM, GRU or RNN node, its gated products split by RelevanceOptions::lstm_products;
// what the rules do not cover (peepholes, clip, other activations) is refused when relevance first
// crosses the node.
std::unique_ptr<Treatment> recurrent_treatment(const TreatmentRequest& request);

}  // namespace sieve::rules
