// Per-modality preprocessing with scanpy's vocabulary (sc.pp.*), on host
// matrices (core/io/anndata.h) so sparse input stays sparse until it is reduced.
//
// Owner: preprocess area. Consumers: core/pipeline.
#pragma once

#include <cstdint>
#include <string>
#include "absl/strings/string_view.h"
#include <vector>

#include <torch/types.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/io/anndata.h"
#include "core/util/job_options.h"

namespace candies {

// ModalityKind, ParseModalityKind, ModalityKindName: core/util/job_options.h.

// Dense float32 CPU tensor (n_rows x n_cols) from a host matrix of any layout.
torch::Tensor MatrixToTensor(const Matrix& m);
// Host dense matrix (float32) from a 2-D tensor on any device.
Matrix TensorToMatrix(const torch::Tensor& t);

namespace pp {

// sc.pp.filter_genes: keeps variables seen (> 0) in at least `min_cells` obs and
// with total at least `min_counts`. Updates X, var, layers and varm of `adata`.
// Returns the kept variable indices.
absl::StatusOr<std::vector<int64_t>> FilterGenes(AnnData& adata, int64_t min_cells,
                                                 double min_counts = 0);
// sc.pp.normalize_total: scales each row to sum `target_sum` (<= 0: the median
// of the non-zero row sums). Sparse stays sparse.
absl::Status NormalizeTotal(Matrix& X, double target_sum = 0);
void Log1p(Matrix& X);
// sc.pp.highly_variable_genes(flavor="seurat_v3") on raw counts: the indices of
// the `n_top_genes` most variable variables, in ascending index order.
absl::StatusOr<std::vector<int64_t>> HighlyVariableGenesSeuratV3(const Matrix& counts,
                                                                 int64_t n_top_genes,
                                                                 double span = 0.3);
// sc.pp.scale: zero mean, unit variance per column (zero-variance columns become
// 0), values clipped to +-max_value (<= 0: no clipping).
torch::Tensor Scale(const torch::Tensor& X, double max_value = 10.0);
// Centred log-ratio per row (muon.prot.pp.clr, axis=1): log1p(x) - mean(log1p(x)).
torch::Tensor Clr(const Matrix& X);
// TF-IDF of a peak matrix (muon.atac.pp.tfidf, log_tf / log_idf), sparse stays sparse.
Matrix TfIdf(const Matrix& X);
// Randomized truncated SVD (Halko et al.) of a possibly sparse matrix; with
// `center` the columns are centred implicitly (PCA) without densifying.
// Returns the N x n_comps scores (U * S).
absl::StatusOr<torch::Tensor> Pca(const Matrix& X, int64_t n_comps, uint64_t seed,
                                  bool center = true);
absl::StatusOr<torch::Tensor> Pca(const torch::Tensor& X, int64_t n_comps, uint64_t seed);
// LSI = truncated SVD of the TF-IDF matrix, optionally dropping component 1
// (which tracks sequencing depth).
absl::StatusOr<torch::Tensor> Lsi(const Matrix& tfidf, int64_t n_comps, uint64_t seed,
                                  bool drop_first = true);

}  // namespace pp

struct PreprocessOptions {
  int64_t min_cells = 10;      // filter_genes (rna, atac); ~1% of spots is typical
  double min_counts = 0;       // filter_genes
  double target_sum = 1e4;     // normalize_total (rna)
  int64_t n_top_genes = 3000;  // highly_variable_genes (rna), capped at n_vars
  double scale_max = 10.0;     // scale clip
  int64_t n_comps = 50;        // PCA / LSI components, capped at min(N, d) - 1
  uint64_t seed = 0;
  // Non-empty (rna, protein): use exactly these features, by var name and in this
  // order, instead of filter_genes + highly_variable_genes, and skip the PCA
  // (`features` stays undefined): the recipe of a trained model applied to a
  // new section, whose caller projects `expression` with the model's loadings.
  std::vector<std::string> fixed_features;
};

// The result of preprocessing one modality; every tensor is CPU float32 with
// one row per spot in the AnnData's obs order.
struct PreprocessedModality {
  ModalityKind kind = ModalityKind::kRna;
  std::vector<std::string> feature_names;  // names of `expression`'s columns
  torch::Tensor expression;  // N x d: the processed matrix (scaled HVGs, scaled CLR, TF-IDF LSI input)
  torch::Tensor counts;      // N x d raw counts of the same features (rna only, for ZINB); else undefined
  torch::Tensor features;    // N x n_comps: PCA / LSI, the graph auto-encoder's input
  std::vector<int64_t> var_indices;  // columns of the input AnnData used for `expression`
};

// Runs the modality's recipe (ALGORITHM.md section 0):
//   rna:     filter_genes, HVG (seurat_v3 on counts), normalize_total, log1p, scale, PCA
//   protein: CLR, scale, PCA (components capped at d - 1)
//   atac:    filter_genes, TF-IDF, LSI (drop first component), scale
// Non-integer or negative inputs are accepted (HVG then uses the values as given).
// Errors: InvalidArgument for zero-variance modalities, N < 3, empty X.
absl::StatusOr<PreprocessedModality> PreprocessModality(const AnnData& adata, ModalityKind kind,
                                                        const PreprocessOptions& options);

}  // namespace candies
