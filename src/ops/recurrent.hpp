#pragma once

// The recurrent cells LSTM, GRU and RNN (ONNX opsets 7 and 14), and the internals of their forward
// passes for relevance treatments that redistribute through the cell step by step.

#include <span>
#include <string>
#include <vector>

#include "sieve/op.hpp"
#include "sieve/tensor.hpp"

namespace sieve::ops {

// One activation function of a recurrent cell, from the ONNX list (names are matched ignoring case), with
// the alpha and beta it takes (ONNX Runtime's defaults where the node gives none).
struct CellActivation {
  enum class Kind {
    relu,
    tanh,
    sigmoid,
    affine,            // alpha·x + beta
    leaky_relu,        // x ≥ 0 ? x : alpha·x
    thresholded_relu,  // x ≥ alpha ? x : 0
    scaled_tanh,       // alpha·tanh(beta·x)
    hard_sigmoid,      // min(max(alpha·x + beta, 0), 1)
    elu,               // x ≥ 0 ? x : alpha·(eˣ − 1)
    softsign,          // x / (1 + |x|)
    softplus,          // log(1 + eˣ)
  };
  Kind kind = Kind::sigmoid;
  float alpha = 0.0f, beta = 0.0f;

  float value(float x) const;
  // d value / dx at x (0 at the kinks of the piecewise-linear ones, like the element-wise ops).
  float derivative(float x) const;
};

// One direction of an LSTM over the whole sequence. Every per-step tensor is indexed [t, n, ·] by the
// time step t of the sequence (not the processing order: the reverse direction runs t = L_n − 1, …, 0)
// and the batch row n, whatever the node's `layout`. Steps t ≥ L_n (the row's sequence length) are
// zero. Gate blocks are in ONNX order i, o, f, c: unit j of gate k is column k·H + j.
struct LstmDirectionTrace {
  bool reverse = false;
  // The direction's parameters: W [4H, I], R [4H, H], bias Wb + Rb [4H], peepholes P [3H] (i, o, f;
  // zeros without P).
  Tensor w, r, bias, peephole;
  CellActivation f, g, h;  // gates, cell candidate, cell output
  // Gate pre-activations before clipping [T, N, 4H]: x_t·Wᵀ + h_{t−1}·Rᵀ + Wb + Rb, plus P_i ⊙ c_{t−1}
  // (i), P_f ⊙ c_{t−1} (f) and P_o ⊙ c_t (o).
  Tensor gate_inputs;
  // Their activations [T, N, 4H]: i = f(·), o = f(·), f = f(·) (1 − i with input_forget, whose f block
  // of gate_inputs is then unused), c̃ = g(·).
  Tensor gates;
  // Cell states c_t = f ⊙ c_{t−1} + i ⊙ c̃ and outputs h_t = o ⊙ h(c_t), [T, N, H].
  Tensor cell, hidden;
  // The states before the first step processed: initial_c / initial_h of the direction, [N, H].
  Tensor initial_cell, initial_hidden;
};

struct LstmTrace {
  int64_t hidden_size = 0;
  float clip = 0.0f;  // 0: no clipping; else the gate inputs are clipped to [−clip, clip]
  bool input_forget = false;
  Tensor x;                                    // [T, N, I] (layout 0)
  std::vector<int64_t> sequence_lengths;       // L_n per batch row (T without sequence_lens)
  std::vector<LstmDirectionTrace> directions;  // forward first for bidirectional
  std::vector<Tensor> outputs;                 // Y, Y_h, Y_c as the op returns them (node layout)
};

// One direction of a GRU, indexed like LstmDirectionTrace. Gate blocks are in ONNX order z, r, h.
struct GruDirectionTrace {
  bool reverse = false;
  Tensor w, r;              // [3H, I], [3H, H]
  CellActivation f, g;      // gates, candidate
  Tensor gate_inputs;       // pre-activations of z, r and h before clipping [T, N, 3H]
  Tensor gates;             // their activations [T, N, 3H]
  Tensor recurrent_hidden;  // h_{t−1}·R_hᵀ + Rb_h [T, N, H] (linear_before_reset only, else zeros)
  Tensor hidden;            // h_t = (1 − z) ⊙ h̃ + z ⊙ h_{t−1} [T, N, H]
  Tensor initial_hidden;    // [N, H]
};

struct GruTrace {
  int64_t hidden_size = 0;
  float clip = 0.0f;
  bool linear_before_reset = false;
  Tensor x;                               // [T, N, I] (layout 0)
  std::vector<int64_t> sequence_lengths;  // L_n per batch row
  std::vector<GruDirectionTrace> directions;
};

// One direction of an RNN: h_t = f(x_t·Wᵀ + h_{t−1}·Rᵀ + Wb + Rb), indexed like LstmDirectionTrace.
struct RnnDirectionTrace {
  bool reverse = false;
  Tensor w, r;  // [H, I], [H, H]
  CellActivation f;
  Tensor gate_inputs, hidden;  // pre-activations and states [T, N, H]
  Tensor initial_hidden;       // [N, H]
};

struct RnnTrace {
  int64_t hidden_size = 0;
  float clip = 0.0f;
  Tensor x;
  std::vector<int64_t> sequence_lengths;
  std::vector<RnnDirectionTrace> directions;
};

enum class RecurrentCell { lstm, gru, rnn };

// Which cell a recurrent op is. Throws sieve::Error when `op` is not one of the three.
RecurrentCell recurrent_cell(const Op& op);

// Run a recurrent op on its inputs, in ONNX order (X, W, R, B, sequence_lens, initial_h[, initial_c, P];
// empty tensors for absent ones), keeping every step's internals. Each throws sieve::Error naming the
// node when `op` is not that cell or the inputs do not fit it.
LstmTrace lstm_trace(const Op& op, std::span<const Tensor> inputs);
GruTrace gru_trace(const Op& op, std::span<const Tensor> inputs);
RnnTrace rnn_trace(const Op& op, std::span<const Tensor> inputs);

}  // namespace sieve::ops
