// Fused NT-Xent loss (SimCLR) over unit rows, computed in row blocks.
//
// Owner: pipeline area. Consumers: core/models/integration.cc, tests/models.
//
// The unfused formula builds the 2N x 2N similarity matrix and makes about a
// dozen memory-bound passes over it (scale, diagonal mask, log-softmax, their
// backward), and autograd keeps it for the backward pass. This one does, per
// block of rows, one GEMM into a block that stays in cache, the diagonal mask
// and the row log-sum-exp; it keeps only the 2N log-sum-exp values, and the
// backward recomputes each block's softmax and applies it with two GEMMs.
// Memory is linear in N (one block buffer), results equal the unfused formula
// up to float rounding (tests/models/ntxent_test.cc).
#pragma once

#include <cstdint>

#include <torch/types.h>

namespace candies {

// Rows per block on the CPU are chosen so that one block (rows x 2N floats)
// takes about this many bytes (L2-sized: it is written by the GEMM and read by
// the mask, exp and sum passes while still in cache).
inline constexpr int64_t kNtXentCpuBlockBytes = int64_t{1} << 20;
// On an accelerator the block is only a memory bound (fewer, larger kernels).
inline constexpr int64_t kNtXentDeviceBlockBytes = int64_t{256} << 20;

// NT-Xent for M independent members at once. `f` is M x 2N x d with unit rows
// (member k's rows 0..N-1 are the first view, N..2N-1 the second; row i and row
// (i + N) mod 2N are a positive pair, every other row a negative). Returns the
// M losses: loss_k = mean over the 2N anchors a of
//   logsumexp_{j != a} (f_a . f_j / t) - f_a . f_{partner(a)} / t.
// Differentiable in f (a custom autograd function). The result stays on f's
// device and in f's dtype. `block_rows` > 0 forces the rows per block (tests);
// 0 picks them from kNtXent*BlockBytes.
torch::Tensor FusedNtXent(const torch::Tensor& f, double temperature, int64_t block_rows = 0);

}  // namespace candies
