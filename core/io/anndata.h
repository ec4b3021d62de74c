// In-memory AnnData / MuData, independent of LibTorch and HDF5.
//
// The layout mirrors anndata's: X (n_obs x n_vars), obs / var dataframes, and the
// keyed stores obsm, varm, layers and uns. Readers and writers live in h5ad.h;
// conversion to tensors lives in core/preprocess/tensor_convert.h.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace candies {

// The element type a matrix had on disk; writers restore it.
enum class DType { kFloat32, kFloat64, kInt8, kInt16, kInt32, kInt64, kUInt8, kUInt16, kUInt32,
                   kUInt64, kBool };
const char* DTypeName(DType dtype);  // numpy spelling: "float32", "int64", ...

// A 2-D matrix in host memory: dense row-major, CSR or CSC.
//
// Values are held as float32 whatever the on-disk type (`dtype` remembers it):
// counts and float32 data are exact, float64 data loses precision beyond ~7
// significant digits, integers beyond 2^24 are rounded. This halves memory for
// the 100k x 30k matrices the service must hold (see docs/FORMATS.md).
struct Matrix {
  enum class Format { kDense, kCsr, kCsc };

  Format format = Format::kDense;
  int64_t n_rows = 0;
  int64_t n_cols = 0;
  DType dtype = DType::kFloat32;
  std::vector<float> values;     // dense: n_rows * n_cols, row-major; sparse: nnz
  std::vector<int64_t> indptr;   // sparse: n_rows + 1 (CSR) or n_cols + 1 (CSC)
  std::vector<int32_t> indices;  // sparse: nnz column (CSR) or row (CSC) indices

  bool is_sparse() const { return format != Format::kDense; }
  int64_t nnz() const;  // stored entries (dense: n_rows * n_cols)

  static Matrix Dense(int64_t n_rows, int64_t n_cols, std::vector<float> values,
                      DType dtype = DType::kFloat32);
  static Matrix Csr(int64_t n_rows, int64_t n_cols, std::vector<int64_t> indptr,
                    std::vector<int32_t> indices, std::vector<float> values,
                    DType dtype = DType::kFloat32);
};

// Converts between layouts without densifying sparse data (except ToDense).
Matrix ToCsr(const Matrix& m);
Matrix ToDense(const Matrix& m);
// Rows `rows` (in that order) and columns `cols` (in that order; empty = all).
Matrix Subset(const Matrix& m, const std::vector<int64_t>& rows,
              const std::vector<int64_t>& cols = {});

// One dataframe column (obs or var).
struct Column {
  enum class Kind { kFloat, kInt, kBool, kString, kCategorical };

  std::string name;
  Kind kind = Kind::kFloat;
  std::vector<double> floats;        // kFloat (NaN = missing)
  std::vector<int64_t> ints;         // kInt
  std::vector<uint8_t> bools;        // kBool
  std::vector<std::string> strings;  // kString
  std::vector<std::string> categories;  // kCategorical: the category labels
  std::vector<int32_t> codes;           // kCategorical: index into categories, -1 = missing
  bool ordered = false;                 // kCategorical
  DType dtype = DType::kFloat64;        // on-disk type for kFloat / kInt

  int64_t size() const;
  // The value at `row` as text ("" for missing), for printing and label keys.
  std::string ValueAsString(int64_t row) const;

  static Column Floats(std::string name, std::vector<double> values);
  static Column Ints(std::string name, std::vector<int64_t> values);
  static Column Strings(std::string name, std::vector<std::string> values);
  // Categories are the sorted distinct labels (as pandas does).
  static Column Categorical(std::string name, const std::vector<std::string>& labels);
};

struct DataFrame {
  std::string index_name = "_index";  // the HDF5 dataset holding the index
  std::vector<std::string> index;      // row names (obs_names / var_names)
  std::vector<Column> columns;         // in column order

  int64_t n_rows() const { return static_cast<int64_t>(index.size()); }
  const Column* Find(const std::string& name) const;
  Column* Find(const std::string& name);
  // Replaces a column of the same name or appends.
  void Set(Column column);
};

// A value in `uns`: a nested mapping of scalars, strings and arrays.
//
// kRecArray is numpy's structured array (anndata's "rec-array", an HDF5
// compound dataset): `children` are its fields in order, each a 1-D
// kFloatArray or kStringArray of the same length (scanpy's
// uns["rank_genes_groups"]["names"] etc.).
struct UnsValue {
  enum class Kind { kMap, kString, kFloat, kInt, kBool, kFloatArray, kIntArray, kStringArray,
                    kRecArray };

  Kind kind = Kind::kMap;
  std::string str;                     // kString
  double f = 0;                        // kFloat
  int64_t i = 0;                       // kInt
  bool b = false;                      // kBool
  std::vector<double> floats;          // kFloatArray (row-major)
  std::vector<int64_t> ints;           // kIntArray (row-major)
  std::vector<std::string> strings;    // kStringArray
  std::vector<int64_t> shape;          // arrays: the shape (1-D: {n})
  bool single = false;                 // kFloatArray: stored as float32 (held as double)
  std::vector<std::pair<std::string, UnsValue>> children;  // kMap, in insertion order

  static UnsValue Map() { return UnsValue(); }
  static UnsValue String(std::string v);
  static UnsValue Float(double v);
  static UnsValue Int(int64_t v);
  static UnsValue Bool(bool v);
  static UnsValue FloatArray(std::vector<double> v);
  static UnsValue IntArray(std::vector<int64_t> v);
  static UnsValue StringArray(std::vector<std::string> v);
  static UnsValue RecArray();  // fields are added with Set

  // kMap / kRecArray access. Find returns nullptr when absent; Set replaces or appends.
  const UnsValue* Find(const std::string& key) const;
  UnsValue* Find(const std::string& key);
  UnsValue& Set(const std::string& key, UnsValue value);
};

struct AnnData {
  bool has_x = true;  // anndata allows X = None
  Matrix X;
  DataFrame obs;
  DataFrame var;
  std::map<std::string, Matrix> obsm;    // n_obs rows each (obsm["spatial"], "X_pca", ...)
  std::map<std::string, Matrix> varm;    // n_vars rows each
  std::map<std::string, Matrix> layers;  // n_obs x n_vars each
  std::map<std::string, Matrix> obsp;    // n_obs x n_obs (connectivities, ...)
  UnsValue uns;                          // kMap

  int64_t n_obs() const { return obs.n_rows(); }
  int64_t n_vars() const { return var.n_rows(); }
};

// MuData: modalities sharing (a superset of) observations.
struct MuData {
  std::vector<std::pair<std::string, AnnData>> mod;  // in file order ("rna", "prot", ...)
  DataFrame obs;                                     // global obs (may be empty)
  std::map<std::string, Matrix> obsm;
  UnsValue uns;

  const AnnData* Find(const std::string& name) const;
};

}  // namespace candies
