#include "core/io/anndata.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "absl/strings/str_cat.h"

namespace candies {

const char* DTypeName(DType dtype) {
  switch (dtype) {
    case DType::kFloat32: return "float32";
    case DType::kFloat64: return "float64";
    case DType::kInt8: return "int8";
    case DType::kInt16: return "int16";
    case DType::kInt32: return "int32";
    case DType::kInt64: return "int64";
    case DType::kUInt8: return "uint8";
    case DType::kUInt16: return "uint16";
    case DType::kUInt32: return "uint32";
    case DType::kUInt64: return "uint64";
    case DType::kBool: return "bool";
  }
  return "unknown";
}

int64_t Matrix::nnz() const {
  return is_sparse() ? static_cast<int64_t>(values.size()) : n_rows * n_cols;
}

Matrix Matrix::Dense(int64_t n_rows, int64_t n_cols, std::vector<float> values, DType dtype) {
  Matrix m;
  m.format = Format::kDense;
  m.n_rows = n_rows;
  m.n_cols = n_cols;
  m.dtype = dtype;
  m.values = std::move(values);
  return m;
}

Matrix Matrix::Csr(int64_t n_rows, int64_t n_cols, std::vector<int64_t> indptr,
                   std::vector<int32_t> indices, std::vector<float> values, DType dtype) {
  Matrix m;
  m.format = Format::kCsr;
  m.n_rows = n_rows;
  m.n_cols = n_cols;
  m.dtype = dtype;
  m.indptr = std::move(indptr);
  m.indices = std::move(indices);
  m.values = std::move(values);
  return m;
}

Matrix ToCsr(const Matrix& m) {
  switch (m.format) {
    case Matrix::Format::kCsr:
      return m;
    case Matrix::Format::kDense: {
      Matrix out = Matrix::Csr(m.n_rows, m.n_cols, {0}, {}, {}, m.dtype);
      out.indptr.reserve(m.n_rows + 1);
      for (int64_t r = 0; r < m.n_rows; ++r) {
        const float* row = m.values.data() + r * m.n_cols;
        for (int64_t c = 0; c < m.n_cols; ++c) {
          if (row[c] != 0.0f) {
            out.indices.push_back(static_cast<int32_t>(c));
            out.values.push_back(row[c]);
          }
        }
        out.indptr.push_back(static_cast<int64_t>(out.values.size()));
      }
      return out;
    }
    case Matrix::Format::kCsc: {
      // Transpose the compressed structure: count per row, prefix-sum, scatter.
      Matrix out = Matrix::Csr(m.n_rows, m.n_cols, std::vector<int64_t>(m.n_rows + 1, 0), {},
                               {}, m.dtype);
      for (int32_t r : m.indices) ++out.indptr[r + 1];
      for (int64_t r = 0; r < m.n_rows; ++r) out.indptr[r + 1] += out.indptr[r];
      out.indices.resize(m.values.size());
      out.values.resize(m.values.size());
      std::vector<int64_t> next(out.indptr.begin(), out.indptr.end() - 1);
      for (int64_t c = 0; c < m.n_cols; ++c) {
        for (int64_t p = m.indptr[c]; p < m.indptr[c + 1]; ++p) {
          int64_t dst = next[m.indices[p]]++;
          out.indices[dst] = static_cast<int32_t>(c);
          out.values[dst] = m.values[p];
        }
      }
      return out;
    }
  }
  return m;
}

Matrix ToDense(const Matrix& m) {
  if (m.format == Matrix::Format::kDense) return m;
  Matrix out = Matrix::Dense(m.n_rows, m.n_cols,
                             std::vector<float>(static_cast<size_t>(m.n_rows * m.n_cols), 0.0f),
                             m.dtype);
  const bool csr = m.format == Matrix::Format::kCsr;
  const int64_t n_major = csr ? m.n_rows : m.n_cols;
  for (int64_t i = 0; i < n_major; ++i) {
    for (int64_t p = m.indptr[i]; p < m.indptr[i + 1]; ++p) {
      int64_t r = csr ? i : m.indices[p];
      int64_t c = csr ? m.indices[p] : i;
      out.values[r * m.n_cols + c] = m.values[p];
    }
  }
  return out;
}

Matrix Subset(const Matrix& m, const std::vector<int64_t>& rows,
              const std::vector<int64_t>& cols) {
  const bool all_cols = cols.empty();
  const int64_t n_cols = all_cols ? m.n_cols : static_cast<int64_t>(cols.size());
  if (m.format == Matrix::Format::kDense) {
    std::vector<float> values;
    values.reserve(rows.size() * n_cols);
    for (int64_t r : rows) {
      const float* row = m.values.data() + r * m.n_cols;
      if (all_cols) {
        values.insert(values.end(), row, row + m.n_cols);
      } else {
        for (int64_t c : cols) values.push_back(row[c]);
      }
    }
    return Matrix::Dense(static_cast<int64_t>(rows.size()), n_cols, std::move(values), m.dtype);
  }
  const Matrix csr = m.format == Matrix::Format::kCsr ? Matrix() : ToCsr(m);
  const Matrix& src = m.format == Matrix::Format::kCsr ? m : csr;
  std::vector<int32_t> col_map;
  if (!all_cols) {
    col_map.assign(src.n_cols, -1);
    for (size_t j = 0; j < cols.size(); ++j) col_map[cols[j]] = static_cast<int32_t>(j);
  }
  Matrix out = Matrix::Csr(static_cast<int64_t>(rows.size()), n_cols, {0}, {}, {}, m.dtype);
  out.indptr.reserve(rows.size() + 1);
  for (int64_t r : rows) {
    const size_t row_start = out.indices.size();
    for (int64_t p = src.indptr[r]; p < src.indptr[r + 1]; ++p) {
      int32_t c = all_cols ? src.indices[p] : col_map[src.indices[p]];
      if (c < 0) continue;
      out.indices.push_back(c);
      out.values.push_back(src.values[p]);
    }
    if (!all_cols) {
      // A column permutation can reorder indices within a row; keep them sorted
      // (scipy's canonical form) by sorting (index, value) pairs.
      std::vector<std::pair<int32_t, float>> row;
      for (size_t p = row_start; p < out.indices.size(); ++p) {
        row.emplace_back(out.indices[p], out.values[p]);
      }
      std::sort(row.begin(), row.end());
      for (size_t j = 0; j < row.size(); ++j) {
        out.indices[row_start + j] = row[j].first;
        out.values[row_start + j] = row[j].second;
      }
    }
    out.indptr.push_back(static_cast<int64_t>(out.indices.size()));
  }
  return out;
}

int64_t Column::size() const {
  switch (kind) {
    case Kind::kFloat: return static_cast<int64_t>(floats.size());
    case Kind::kInt: return static_cast<int64_t>(ints.size());
    case Kind::kBool: return static_cast<int64_t>(bools.size());
    case Kind::kString: return static_cast<int64_t>(strings.size());
    case Kind::kCategorical: return static_cast<int64_t>(codes.size());
  }
  return 0;
}

std::string Column::ValueAsString(int64_t row) const {
  switch (kind) {
    case Kind::kFloat:
      return std::isnan(floats[row]) ? "" : absl::StrCat(floats[row]);
    case Kind::kInt: return absl::StrCat(ints[row]);
    case Kind::kBool: return bools[row] ? "True" : "False";
    case Kind::kString: return strings[row];
    case Kind::kCategorical: return codes[row] < 0 ? "" : categories[codes[row]];
  }
  return "";
}

Column Column::Floats(std::string name, std::vector<double> values) {
  Column c;
  c.name = std::move(name);
  c.kind = Kind::kFloat;
  c.floats = std::move(values);
  c.dtype = DType::kFloat64;
  return c;
}

Column Column::Ints(std::string name, std::vector<int64_t> values) {
  Column c;
  c.name = std::move(name);
  c.kind = Kind::kInt;
  c.ints = std::move(values);
  c.dtype = DType::kInt64;
  return c;
}

Column Column::Strings(std::string name, std::vector<std::string> values) {
  Column c;
  c.name = std::move(name);
  c.kind = Kind::kString;
  c.strings = std::move(values);
  return c;
}

Column Column::Categorical(std::string name, const std::vector<std::string>& labels) {
  Column c;
  c.name = std::move(name);
  c.kind = Kind::kCategorical;
  std::set<std::string> distinct(labels.begin(), labels.end());
  c.categories.assign(distinct.begin(), distinct.end());
  c.codes.reserve(labels.size());
  for (const std::string& l : labels) {
    c.codes.push_back(static_cast<int32_t>(
        std::lower_bound(c.categories.begin(), c.categories.end(), l) - c.categories.begin()));
  }
  return c;
}

const Column* DataFrame::Find(const std::string& name) const {
  for (const Column& c : columns) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

Column* DataFrame::Find(const std::string& name) {
  for (Column& c : columns) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

void DataFrame::Set(Column column) {
  if (Column* existing = Find(column.name)) {
    *existing = std::move(column);
  } else {
    columns.push_back(std::move(column));
  }
}

UnsValue UnsValue::String(std::string v) {
  UnsValue u;
  u.kind = Kind::kString;
  u.str = std::move(v);
  return u;
}
UnsValue UnsValue::Float(double v) {
  UnsValue u;
  u.kind = Kind::kFloat;
  u.f = v;
  return u;
}
UnsValue UnsValue::Int(int64_t v) {
  UnsValue u;
  u.kind = Kind::kInt;
  u.i = v;
  return u;
}
UnsValue UnsValue::Bool(bool v) {
  UnsValue u;
  u.kind = Kind::kBool;
  u.b = v;
  return u;
}
UnsValue UnsValue::FloatArray(std::vector<double> v) {
  UnsValue u;
  u.kind = Kind::kFloatArray;
  u.shape = {static_cast<int64_t>(v.size())};
  u.floats = std::move(v);
  return u;
}
UnsValue UnsValue::IntArray(std::vector<int64_t> v) {
  UnsValue u;
  u.kind = Kind::kIntArray;
  u.shape = {static_cast<int64_t>(v.size())};
  u.ints = std::move(v);
  return u;
}
UnsValue UnsValue::StringArray(std::vector<std::string> v) {
  UnsValue u;
  u.kind = Kind::kStringArray;
  u.shape = {static_cast<int64_t>(v.size())};
  u.strings = std::move(v);
  return u;
}

const UnsValue* UnsValue::Find(const std::string& key) const {
  for (const auto& [k, v] : children) {
    if (k == key) return &v;
  }
  return nullptr;
}

UnsValue* UnsValue::Find(const std::string& key) {
  for (auto& [k, v] : children) {
    if (k == key) return &v;
  }
  return nullptr;
}

UnsValue UnsValue::RecArray() {
  UnsValue u;
  u.kind = Kind::kRecArray;
  return u;
}

UnsValue& UnsValue::Set(const std::string& key, UnsValue value) {
  if (kind != Kind::kRecArray) kind = Kind::kMap;
  if (UnsValue* existing = Find(key)) {
    *existing = std::move(value);
    return *existing;
  }
  children.emplace_back(key, std::move(value));
  return children.back().second;
}

const AnnData* MuData::Find(const std::string& name) const {
  for (const auto& [n, a] : mod) {
    if (n == name) return &a;
  }
  return nullptr;
}

}  // namespace candies
