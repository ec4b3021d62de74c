// .h5ad reader for the current (anndata >= 0.8) encoding. HDF5 C API with
// automatic error printing silenced; every handle has one RAII owner.
#include "core/io/h5ad.h"

#include <hdf5.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <limits>
#include <map>
#include <new>
#include <utility>

#include "absl/strings/str_cat.h"

namespace candies {
namespace {

// Owns one hid_t and closes it with the matching H5*close.
class Handle {
 public:
  using Closer = herr_t (*)(hid_t);
  Handle() = default;
  Handle(hid_t id, Closer closer) : id_(id), closer_(closer) {}
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  Handle(Handle&& o) noexcept : id_(o.id_), closer_(o.closer_) { o.id_ = -1; }
  ~Handle() {
    if (id_ >= 0 && closer_ != nullptr) closer_(id_);
  }
  hid_t get() const { return id_; }
  bool ok() const { return id_ >= 0; }

 private:
  hid_t id_ = -1;
  Closer closer_ = nullptr;
};

// Shared by every Ctx of one read: what has been allocated so far and which
// element is being read (named when a library exception is caught at the top).
struct ReadState {
  int64_t file_size = 0;
  int64_t bytes = 0;
  std::string element = "/";
};

struct Ctx {
  std::string file;
  const ReadOptions* options;
  std::string prefix;  // "/mod/rna" inside a MuData file, "" otherwise
  ReadState* state;
  const ReadLimits& limits() const { return options->limits; }
  absl::Status Error(const std::string& element, const std::string& problem) const {
    return absl::InvalidArgumentError(absl::StrCat(file, ": ", prefix, element, ": ", problem));
  }
  // Counts `bytes` against ReadLimits::max_total_bytes before they are allocated.
  absl::Status Charge(const std::string& element, int64_t bytes) const {
    if (bytes < 0 || bytes > limits().max_total_bytes - state->bytes) {
      return Error(element, absl::StrCat("reading it would bring the total to more than "
                                         "ReadLimits::max_total_bytes (",
                                         limits().max_total_bytes, ")"));
    }
    state->bytes += bytes;
    return absl::OkStatus();
  }
};

// Runs `fn` and turns any C++ library exception (bad_alloc, length_error,
// out_of_range, ...) into an error naming the element being read.
template <typename Fn>
auto Guarded(const Ctx& ctx, Fn&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const std::bad_alloc&) {
    return ctx.Error(ctx.state->element, "out of memory while reading");
  } catch (const std::exception& e) {
    return ctx.Error(ctx.state->element, absl::StrCat("cannot be read: ", e.what()));
  }
}

bool Exists(hid_t loc, const std::string& name) {
  return H5Lexists(loc, name.c_str(), H5P_DEFAULT) > 0;
}

bool IsGroup(hid_t loc, const std::string& name) {
  H5O_info_t info;
  if (H5Oget_info_by_name(loc, name.c_str(), &info, H5P_DEFAULT) < 0) return false;
  return info.type == H5O_TYPE_GROUP;
}

// Attributes hold names (encoding-type, _index): longer ones are treated as absent.
constexpr size_t kMaxAttrString = 4096;

// Reads a scalar string attribute (fixed or variable length); "" when absent.
std::string StringAttr(hid_t obj, const char* name) {
  if (H5Aexists(obj, name) <= 0) return "";
  Handle attr(H5Aopen(obj, name, H5P_DEFAULT), H5Aclose);
  if (!attr.ok()) return "";
  Handle type(H5Aget_type(attr.get()), H5Tclose);
  if (H5Tget_class(type.get()) != H5T_STRING) return "";
  if (H5Tis_variable_str(type.get()) > 0) {
    Handle mem(H5Tcopy(H5T_C_S1), H5Tclose);
    H5Tset_size(mem.get(), H5T_VARIABLE);
    H5Tset_cset(mem.get(), H5Tget_cset(type.get()));
    Handle space(H5Aget_space(attr.get()), H5Sclose);
    if (H5Sget_simple_extent_npoints(space.get()) != 1) return "";
    char* s = nullptr;
    if (H5Aread(attr.get(), mem.get(), &s) < 0 || s == nullptr) return "";
    std::string out(s, strnlen(s, kMaxAttrString));
    H5free_memory(s);
    return out;
  }
  size_t n = H5Tget_size(type.get());
  Handle space(H5Aget_space(attr.get()), H5Sclose);
  if (n == 0 || n > kMaxAttrString || H5Sget_simple_extent_npoints(space.get()) != 1) return "";
  std::string out(n, '\0');
  if (H5Aread(attr.get(), type.get(), out.data()) < 0) return "";
  out.resize(strnlen(out.data(), n));
  return out;
}

bool IntArrayAttr(hid_t obj, const char* name, std::vector<int64_t>* out) {
  if (H5Aexists(obj, name) <= 0) return false;
  Handle attr(H5Aopen(obj, name, H5P_DEFAULT), H5Aclose);
  Handle space(H5Aget_space(attr.get()), H5Sclose);
  hssize_t n = H5Sget_simple_extent_npoints(space.get());
  if (n < 0 || n > 16) return false;
  out->resize(static_cast<size_t>(n));
  return H5Aread(attr.get(), H5T_NATIVE_INT64, out->data()) >= 0;
}

DType DTypeOf(hid_t type) {
  H5T_class_t cls = H5Tget_class(type);
  size_t size = H5Tget_size(type);
  if (cls == H5T_FLOAT) return size == 4 ? DType::kFloat32 : DType::kFloat64;
  if (cls == H5T_ENUM) return DType::kBool;  // h5py stores numpy bool as an enum
  if (cls == H5T_INTEGER) {
    bool is_signed = H5Tget_sign(type) == H5T_SGN_2;
    switch (size) {
      case 1: return is_signed ? DType::kInt8 : DType::kUInt8;
      case 2: return is_signed ? DType::kInt16 : DType::kUInt16;
      case 4: return is_signed ? DType::kInt32 : DType::kUInt32;
      default: return is_signed ? DType::kInt64 : DType::kUInt64;
    }
  }
  return DType::kFloat64;
}

struct DatasetInfo {
  std::vector<hsize_t> dims;
  DType dtype = DType::kFloat64;
  bool is_string = false;
  int64_t npoints = 0;
};

// Refuses raw data the file does not hold: external raw files and virtual
// datasets (HDF5 would read other files with the reader's rights), and
// declared sizes larger than the stored bytes can expand to.
absl::Status CheckStorage(const Ctx& ctx, hid_t ds, hid_t type, const std::string& element,
                          int64_t npoints) {
  Handle dcpl(H5Dget_create_plist(ds), H5Pclose);
  if (!dcpl.ok()) return ctx.Error(element, "cannot read the dataset's creation properties");
  if (H5Pget_external_count(dcpl.get()) != 0) {
    return ctx.Error(element, "raw data stored in an external file is not accepted");
  }
  const H5D_layout_t layout = H5Pget_layout(dcpl.get());
  if (layout != H5D_COMPACT && layout != H5D_CONTIGUOUS && layout != H5D_CHUNKED) {
    return ctx.Error(element, "virtual or unknown dataset layout is not accepted");
  }
  if (npoints == 0) return absl::OkStatus();
  const size_t type_size = H5Tget_size(type);
  if (type_size == 0) return ctx.Error(element, "element type has size 0");
  // npoints <= max_elements (2^32 by default) and type sizes are small, but a
  // crafted type can be huge: compare in long double to avoid overflow.
  const long double declared = static_cast<long double>(npoints) * type_size;
  const long double stored = static_cast<long double>(H5Dget_storage_size(ds));
  if (stored > static_cast<long double>(ctx.state->file_size)) {
    return ctx.Error(element, absl::StrCat("stores ", static_cast<double>(stored),
                                           " bytes, more than the file's ",
                                           ctx.state->file_size));
  }
  if (layout == H5D_CHUNKED) {
    if (declared > stored * static_cast<long double>(ctx.limits().max_compression_ratio)) {
      return ctx.Error(element, absl::StrCat(
          "declares ", static_cast<double>(declared), " bytes but the file stores only ",
          static_cast<double>(stored), " (more than ReadLimits::max_compression_ratio ",
          ctx.limits().max_compression_ratio, " : 1; unwritten chunks?)"));
    }
  } else if (declared > stored) {
    return ctx.Error(element, absl::StrCat("declares ", static_cast<double>(declared),
                                           " bytes but the file stores only ",
                                           static_cast<double>(stored)));
  }
  return absl::OkStatus();
}

absl::StatusOr<DatasetInfo> Inspect(const Ctx& ctx, hid_t ds, const std::string& element) {
  ctx.state->element = ctx.prefix + element;
  Handle space(H5Dget_space(ds), H5Sclose);
  Handle type(H5Dget_type(ds), H5Tclose);
  if (!space.ok() || !type.ok()) return ctx.Error(element, "cannot read dataspace or type");
  int rank = H5Sget_simple_extent_ndims(space.get());
  if (rank < 0 || rank > 8) return ctx.Error(element, "unsupported rank");
  DatasetInfo info;
  info.dims.resize(static_cast<size_t>(rank));
  if (H5Sget_simple_extent_dims(space.get(), info.dims.data(), nullptr) < 0) {
    return ctx.Error(element, "cannot read dimensions");
  }
  // The number of entries, checked against max_elements one dimension at a
  // time so the product cannot overflow.
  const H5S_class_t space_class = H5Sget_simple_extent_type(space.get());
  int64_t npoints = space_class == H5S_NULL ? 0 : 1;
  const int64_t max_elements = ctx.limits().max_elements;
  for (hsize_t d : info.dims) {
    if (d != 0 && (d > static_cast<hsize_t>(max_elements) ||
                   npoints > max_elements / static_cast<int64_t>(d))) {
      return ctx.Error(element, absl::StrCat("has more than ReadLimits::max_elements (",
                                             max_elements, ") entries"));
    }
    npoints *= static_cast<int64_t>(d);
  }
  info.npoints = npoints;
  info.is_string = H5Tget_class(type.get()) == H5T_STRING;
  info.dtype = DTypeOf(type.get());
  H5T_class_t cls = H5Tget_class(type.get());
  if (!info.is_string && cls != H5T_FLOAT && cls != H5T_INTEGER && cls != H5T_ENUM) {
    return ctx.Error(element, "unsupported HDF5 element type");
  }
  absl::Status st = CheckStorage(ctx, ds, type.get(), element, npoints);
  if (!st.ok()) return st;
  return info;
}

// Reads a numeric dataset converted to T, in chunks of rows so no full double
// copy is made. Checks the in-memory size against max_element_bytes.
template <typename T>
absl::Status ReadNumeric(const Ctx& ctx, hid_t loc, const std::string& name,
                         const std::string& element, hid_t mem_type, std::vector<T>* out,
                         DatasetInfo* info_out = nullptr) {
  Handle ds(H5Dopen2(loc, name.c_str(), H5P_DEFAULT), H5Dclose);
  if (!ds.ok()) return ctx.Error(element, "missing or unreadable dataset");
  absl::StatusOr<DatasetInfo> info = Inspect(ctx, ds.get(), element);
  if (!info.ok()) return info.status();
  if (info->is_string) return ctx.Error(element, "expected numbers, found strings");
  const int64_t bytes = info->npoints * static_cast<int64_t>(sizeof(T));
  if (bytes > ctx.limits().max_element_bytes) {
    return ctx.Error(element, absl::StrCat("size ", bytes,
                                           " bytes exceeds ReadLimits::max_element_bytes"));
  }
  absl::Status charged = ctx.Charge(element, bytes);
  if (!charged.ok()) return charged;
  out->resize(static_cast<size_t>(info->npoints));
  if (info->npoints > 0 &&
      H5Dread(ds.get(), mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, out->data()) < 0) {
    return ctx.Error(element, "read failed (truncated or corrupt file?)");
  }
  if (info_out != nullptr) *info_out = *info;
  return absl::OkStatus();
}

// Memory manager for variable-length strings read by HDF5: plain malloc/free,
// refusing an allocation once twice the bytes allocated so far (HDF5's copy and
// ours) would pass `available`.
struct VlenBudget {
  int64_t available = 0;
  int64_t charged = 0;
  bool exceeded = false;

  static void* Allocate(size_t size, void* info) {
    auto* b = static_cast<VlenBudget*>(info);
    const int64_t cost = 2 * static_cast<int64_t>(std::min<size_t>(size, INT64_MAX / 4));
    if (cost > b->available - b->charged) {
      b->exceeded = true;
      return nullptr;
    }
    b->charged += cost;
    return std::malloc(size);
  }
  static void Free(void* p, void*) { std::free(p); }
};

absl::Status ReadStrings(const Ctx& ctx, hid_t loc, const std::string& name,
                         const std::string& element, std::vector<std::string>* out) {
  Handle ds(H5Dopen2(loc, name.c_str(), H5P_DEFAULT), H5Dclose);
  if (!ds.ok()) return ctx.Error(element, "missing or unreadable dataset");
  absl::StatusOr<DatasetInfo> info = Inspect(ctx, ds.get(), element);
  if (!info.ok()) return info.status();
  if (!info->is_string) return ctx.Error(element, "expected strings");
  Handle type(H5Dget_type(ds.get()), H5Tclose);
  size_t n = static_cast<size_t>(info->npoints);
  absl::Status charged =
      ctx.Charge(element, info->npoints * static_cast<int64_t>(sizeof(std::string)));
  if (!charged.ok()) return charged;
  out->assign(n, "");
  if (n == 0) return absl::OkStatus();
  const int64_t max_string = ctx.limits().max_string_bytes;
  if (H5Tis_variable_str(type.get()) > 0) {
    Handle mem(H5Tcopy(H5T_C_S1), H5Tclose);
    H5Tset_size(mem.get(), H5T_VARIABLE);
    H5Tset_cset(mem.get(), H5Tget_cset(type.get()));
    // HDF5 allocates each string through VlenBudget, which refuses (and so
    // fails the read) once the strings would pass max_total_bytes. One pass:
    // sizing first with H5Dvlen_get_buf_size reads every element a second time
    // and, in libhdf5 1.10, clears a 1 MiB conversion buffer per element.
    VlenBudget budget{ctx.limits().max_total_bytes - ctx.state->bytes};
    Handle xfer(H5Pcreate(H5P_DATASET_XFER), H5Pclose);
    if (!xfer.ok() || H5Pset_vlen_mem_manager(xfer.get(), VlenBudget::Allocate, &budget,
                                              VlenBudget::Free, nullptr) < 0) {
      return ctx.Error(element, "cannot set up the string read");
    }
    std::vector<char*> ptrs(n, nullptr);
    const herr_t read = H5Dread(ds.get(), mem.get(), H5S_ALL, H5S_ALL, xfer.get(), ptrs.data());
    if (budget.exceeded) {
      for (char* p : ptrs) std::free(p);
      return ctx.Error(element, absl::StrCat("strings larger than ReadLimits::max_total_bytes (",
                                             ctx.limits().max_total_bytes, ")"));
    }
    if (read < 0) {
      for (char* p : ptrs) std::free(p);
      return ctx.Error(element, "read failed (truncated or corrupt file?)");
    }
    charged = ctx.Charge(element, budget.charged);
    if (!charged.ok()) return charged;
    absl::Status st;
    for (size_t i = 0; i < n; ++i) {
      if (ptrs[i] != nullptr && st.ok()) {
        const size_t len = strnlen(ptrs[i], static_cast<size_t>(max_string) + 1);
        if (len > static_cast<size_t>(max_string)) {
          st = ctx.Error(element, absl::StrCat("string ", i, " is longer than "
                                               "ReadLimits::max_string_bytes (", max_string, ")"));
        } else {
          (*out)[i].assign(ptrs[i], len);
        }
      }
      std::free(ptrs[i]);
    }
    if (!st.ok()) return st;
  } else {
    size_t width = H5Tget_size(type.get());
    if (width == 0 || width > static_cast<size_t>(max_string)) {
      return ctx.Error(element, absl::StrCat("fixed string width ", width, " is outside [1, "
                                             "ReadLimits::max_string_bytes = ", max_string, "]"));
    }
    // n <= max_elements and width <= max_string_bytes: the product fits in 64 bits.
    charged = ctx.Charge(element, static_cast<int64_t>(n * width));
    if (!charged.ok()) return charged;
    std::vector<char> buf(n * width);
    if (H5Dread(ds.get(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.data()) < 0) {
      return ctx.Error(element, "read failed (truncated or corrupt file?)");
    }
    for (size_t i = 0; i < n; ++i) {
      const char* s = buf.data() + i * width;
      (*out)[i] = std::string(s, strnlen(s, width));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckFinite(const Ctx& ctx, const std::string& element, const Matrix& m) {
  if (!ctx.options->reject_non_finite) return absl::OkStatus();
  for (size_t i = 0; i < m.values.size(); ++i) {
    if (!std::isfinite(m.values[i])) {
      return ctx.Error(element, absl::StrCat("non-finite value (NaN or Inf) at stored entry ", i));
    }
  }
  return absl::OkStatus();
}

// A sparse shape the reader can hold: each dimension within max_elements, and
// the minor dimension addressable by the int32 indices.
absl::Status CheckSparseShape(const Ctx& ctx, const std::string& element, const Matrix& m) {
  const int64_t minor = m.format == Matrix::Format::kCsc ? m.n_rows : m.n_cols;
  if (m.n_rows > ctx.limits().max_elements || m.n_cols > ctx.limits().max_elements) {
    return ctx.Error(element, absl::StrCat("shape ", m.n_rows, " x ", m.n_cols,
                                           " exceeds ReadLimits::max_elements per dimension"));
  }
  if (minor > std::numeric_limits<int32_t>::max()) {
    return ctx.Error(element, absl::StrCat("minor dimension ", minor,
                                           " does not fit the int32 indices"));
  }
  return absl::OkStatus();
}

// CSR / CSC invariants: indptr has major + 1 entries, starts at 0, ends at nnz
// and never decreases; indices are in [0, minor) and unique within a row
// (column for CSC). Unsorted rows (valid in scipy) are sorted in place with their
// values; duplicates are refused because readers disagree on what they mean.
absl::Status CheckCompressed(const Ctx& ctx, const std::string& element, Matrix* m) {
  const bool csc = m->format == Matrix::Format::kCsc;
  const int64_t major = csc ? m->n_cols : m->n_rows;
  const int64_t minor = csc ? m->n_rows : m->n_cols;
  const char* row = csc ? "column" : "row";
  if (static_cast<int64_t>(m->indptr.size()) != major + 1) {
    return ctx.Error(element + "/indptr", absl::StrCat("has ", m->indptr.size(),
                                                       " entries, expected ", major + 1));
  }
  if (m->indices.size() != m->values.size()) {
    return ctx.Error(element + "/indices", absl::StrCat("length ", m->indices.size(),
                                                        " differs from data's ",
                                                        m->values.size()));
  }
  if (m->indptr.front() != 0 || m->indptr.back() != static_cast<int64_t>(m->values.size())) {
    return ctx.Error(element + "/indptr", "must start at 0 and end at nnz");
  }
  for (int64_t i = 0; i < major; ++i) {
    if (m->indptr[i + 1] < m->indptr[i]) {
      return ctx.Error(element + "/indptr", absl::StrCat("not monotone at ", i));
    }
  }
  for (size_t k = 0; k < m->indices.size(); ++k) {
    if (m->indices[k] < 0 || m->indices[k] >= minor) {
      return ctx.Error(element + "/indices",
                       absl::StrCat("index ", m->indices[k], " out of range [0, ", minor, ")"));
    }
  }
  std::vector<std::pair<int32_t, float>> entries;
  for (int64_t i = 0; i < major; ++i) {
    const int64_t begin = m->indptr[i], end = m->indptr[i + 1];
    bool sorted = true;
    for (int64_t k = begin + 1; k < end; ++k) {
      if (m->indices[k] == m->indices[k - 1]) {
        return ctx.Error(element + "/indices", absl::StrCat("duplicate index ", m->indices[k],
                                                            " in ", row, " ", i));
      }
      sorted &= m->indices[k] > m->indices[k - 1];
    }
    if (sorted) continue;
    entries.clear();
    for (int64_t k = begin; k < end; ++k) entries.emplace_back(m->indices[k], m->values[k]);
    std::sort(entries.begin(), entries.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    for (int64_t k = begin; k < end; ++k) {
      const auto& e = entries[static_cast<size_t>(k - begin)];
      if (k > begin && e.first == entries[static_cast<size_t>(k - begin - 1)].first) {
        return ctx.Error(element + "/indices",
                         absl::StrCat("duplicate index ", e.first, " in ", row, " ", i));
      }
      m->indices[k] = e.first;
      m->values[k] = e.second;
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<Matrix> ReadMatrix(const Ctx& ctx, hid_t loc, const std::string& name,
                                  const std::string& element) {
  Matrix m;
  if (!IsGroup(loc, name)) {
    DatasetInfo info;
    absl::Status st = ReadNumeric(ctx, loc, name, element, H5T_NATIVE_FLOAT, &m.values, &info);
    if (!st.ok()) return st;
    if (info.dims.size() > 2) return ctx.Error(element, "matrix must be 1-D or 2-D");
    m.format = Matrix::Format::kDense;
    m.n_rows = info.dims.empty() ? 1 : static_cast<int64_t>(info.dims[0]);
    m.n_cols = info.dims.size() == 2 ? static_cast<int64_t>(info.dims[1]) : 1;
    m.dtype = info.dtype;

    absl::Status fin = CheckFinite(ctx, element, m);
    if (!fin.ok()) return fin;
    return m;
  }
  Handle g(H5Gopen2(loc, name.c_str(), H5P_DEFAULT), H5Gclose);
  if (!g.ok()) return ctx.Error(element, "cannot open group");
  std::string enc = StringAttr(g.get(), "encoding-type");
  if (enc.empty()) enc = StringAttr(g.get(), "h5sparse_format");  // anndata 0.7
  std::vector<int64_t> shape;
  if (!IntArrayAttr(g.get(), "shape", &shape) && !IntArrayAttr(g.get(), "h5sparse_shape", &shape)) {
    return ctx.Error(element, "sparse group has no shape attribute");
  }
  if (shape.size() != 2 || shape[0] < 0 || shape[1] < 0) {
    return ctx.Error(element, "shape attribute must be two non-negative integers");
  }
  if (enc == "csr_matrix" || enc == "csr") {
    m.format = Matrix::Format::kCsr;
  } else if (enc == "csc_matrix" || enc == "csc") {
    m.format = Matrix::Format::kCsc;
  } else {
    return ctx.Error(element, absl::StrCat("unsupported encoding-type '", enc, "'"));
  }
  m.n_rows = shape[0];
  m.n_cols = shape[1];
  absl::Status st = CheckSparseShape(ctx, element, m);
  if (!st.ok()) return st;
  // indptr first: its length is fixed by the shape, and it bounds nnz.
  st = ReadNumeric(ctx, g.get(), "indptr", element + "/indptr", H5T_NATIVE_INT64, &m.indptr);
  if (!st.ok()) return st;
  DatasetInfo info;
  st = ReadNumeric(ctx, g.get(), "data", element + "/data", H5T_NATIVE_FLOAT, &m.values, &info);
  if (!st.ok()) return st;
  m.dtype = info.dtype;
  st = ReadNumeric(ctx, g.get(), "indices", element + "/indices", H5T_NATIVE_INT32, &m.indices);
  if (!st.ok()) return st;
  st = CheckCompressed(ctx, element, &m);
  if (!st.ok()) return st;
  absl::Status fin = CheckFinite(ctx, element, m);
  if (!fin.ok()) return fin;
  return m;
}

absl::StatusOr<Column> ReadColumn(const Ctx& ctx, hid_t df, const std::string& name,
                                  const std::string& element) {
  Column col;
  col.name = name;
  if (IsGroup(df, name)) {
    Handle g(H5Gopen2(df, name.c_str(), H5P_DEFAULT), H5Gclose);
    std::string enc = StringAttr(g.get(), "encoding-type");
    if (enc == "categorical") {
      col.kind = Column::Kind::kCategorical;
      absl::Status st = ReadNumeric(ctx, g.get(), "codes", element + "/codes", H5T_NATIVE_INT32,
                                    &col.codes);
      if (!st.ok()) return st;
      st = ReadStrings(ctx, g.get(), "categories", element + "/categories", &col.categories);
      if (!st.ok()) {
        // Numeric categories: print them as text.
        std::vector<double> cats;
        st = ReadNumeric(ctx, g.get(), "categories", element + "/categories", H5T_NATIVE_DOUBLE,
                         &cats);
        if (!st.ok()) return st;
        for (double c : cats) col.categories.push_back(absl::StrCat(c));
      }
      if (H5Aexists(g.get(), "ordered") > 0) {
        Handle a(H5Aopen(g.get(), "ordered", H5P_DEFAULT), H5Aclose);
        int8_t v = 0;
        if (H5Aread(a.get(), H5T_NATIVE_INT8, &v) >= 0) col.ordered = v != 0;
      }
      for (int32_t c : col.codes) {
        if (c < -1 || c >= static_cast<int32_t>(col.categories.size())) {
          return ctx.Error(element + "/codes", absl::StrCat("code ", c, " out of range"));
        }
      }
      return col;
    }
    if (enc == "nullable-integer" || enc == "nullable-boolean") {
      std::vector<uint8_t> mask;
      absl::Status st = ReadNumeric(ctx, g.get(), "mask", element + "/mask", H5T_NATIVE_UINT8,
                                    &mask);
      if (!st.ok()) return st;
      if (enc == "nullable-boolean") {
        col.kind = Column::Kind::kBool;
        st = ReadNumeric(ctx, g.get(), "values", element + "/values", H5T_NATIVE_UINT8,
                         &col.bools);
        if (!st.ok()) return st;
        if (mask.size() != col.bools.size()) return ctx.Error(element, "mask length differs");
        return col;
      }
      // Missing integers become NaN floats, the only missing value Column has.
      std::vector<int64_t> ints;
      DatasetInfo info;
      st = ReadNumeric(ctx, g.get(), "values", element + "/values", H5T_NATIVE_INT64, &ints,
                       &info);
      if (!st.ok()) return st;
      if (mask.size() != ints.size()) return ctx.Error(element, "mask length differs");
      bool any_missing = false;
      for (uint8_t v : mask) any_missing |= v != 0;
      if (!any_missing) {
        col.kind = Column::Kind::kInt;
        col.ints = std::move(ints);
      } else {
        col.kind = Column::Kind::kFloat;
        for (size_t i = 0; i < ints.size(); ++i) {
          col.floats.push_back(mask[i] ? std::nan("") : static_cast<double>(ints[i]));
        }
      }
      col.dtype = info.dtype;
      return col;
    }
    return ctx.Error(element, absl::StrCat("unsupported encoding-type '", enc, "'"));
  }
  Handle ds(H5Dopen2(df, name.c_str(), H5P_DEFAULT), H5Dclose);
  if (!ds.ok()) return ctx.Error(element, "cannot open dataset");
  absl::StatusOr<DatasetInfo> info = Inspect(ctx, ds.get(), element);
  if (!info.ok()) return info.status();
  if (info->is_string) {
    col.kind = Column::Kind::kString;
    absl::Status st = ReadStrings(ctx, df, name, element, &col.strings);
    if (!st.ok()) return st;
    return col;
  }
  col.dtype = info->dtype;
  absl::Status st;
  // anndata 0.7: integer codes with a `categories` attribute (an object
  // reference) pointing at <dataframe>/__categories/<name>.
  if (H5Aexists(ds.get(), "categories") > 0 && Exists(df, "__categories")) {
    col.kind = Column::Kind::kCategorical;
    st = ReadNumeric(ctx, df, name, element, H5T_NATIVE_INT32, &col.codes);
    if (!st.ok()) return st;
    Handle cats(H5Gopen2(df, "__categories", H5P_DEFAULT), H5Gclose);
    st = ReadStrings(ctx, cats.get(), name, element + " (__categories)", &col.categories);
    if (!st.ok()) return st;
    for (int32_t c : col.codes) {
      if (c < -1 || c >= static_cast<int32_t>(col.categories.size())) {
        return ctx.Error(element, absl::StrCat("code ", c, " out of range"));
      }
    }
    return col;
  }
  if (info->dtype == DType::kBool) {
    col.kind = Column::Kind::kBool;
    st = ReadNumeric(ctx, df, name, element, H5T_NATIVE_UINT8, &col.bools);
  } else if (info->dtype == DType::kFloat32 || info->dtype == DType::kFloat64) {
    col.kind = Column::Kind::kFloat;
    st = ReadNumeric(ctx, df, name, element, H5T_NATIVE_DOUBLE, &col.floats);
  } else {
    col.kind = Column::Kind::kInt;
    st = ReadNumeric(ctx, df, name, element, H5T_NATIVE_INT64, &col.ints);
  }
  if (!st.ok()) return st;
  return col;
}

absl::StatusOr<std::vector<std::string>> MemberNames(const Ctx& ctx, hid_t g,
                                                     const std::string& element);

// A 1-D string attribute (column-order, mod-order); empty if absent. At most
// max_group_members names of at most kMaxAttrString bytes each.
absl::Status StringArrayAttr(const Ctx& ctx, hid_t obj, const char* name,
                             const std::string& element, std::vector<std::string>* out) {
  out->clear();
  if (H5Aexists(obj, name) <= 0) return absl::OkStatus();
  const std::string where = absl::StrCat(element, " (attribute ", name, ")");
  Handle a(H5Aopen(obj, name, H5P_DEFAULT), H5Aclose);
  Handle type(H5Aget_type(a.get()), H5Tclose);
  Handle space(H5Aget_space(a.get()), H5Sclose);
  if (!a.ok() || !type.ok() || !space.ok()) return ctx.Error(where, "cannot be opened");
  hssize_t n = H5Sget_simple_extent_npoints(space.get());
  if (n <= 0 || H5Tget_class(type.get()) != H5T_STRING) return absl::OkStatus();
  if (n > ctx.limits().max_group_members) {
    return ctx.Error(where, absl::StrCat("lists ", n, " names, more than "
                                         "ReadLimits::max_group_members (",
                                         ctx.limits().max_group_members, ")"));
  }
  if (H5Tis_variable_str(type.get()) > 0) {
    Handle mem(H5Tcopy(H5T_C_S1), H5Tclose);
    H5Tset_size(mem.get(), H5T_VARIABLE);
    H5Tset_cset(mem.get(), H5Tget_cset(type.get()));
    std::vector<char*> ptrs(static_cast<size_t>(n), nullptr);
    if (H5Aread(a.get(), mem.get(), ptrs.data()) < 0) return ctx.Error(where, "read failed");
    for (char* p : ptrs) {
      out->emplace_back(p != nullptr ? std::string(p, strnlen(p, kMaxAttrString)) : "");
      H5free_memory(p);
    }
    return absl::OkStatus();
  }
  size_t width = H5Tget_size(type.get());
  if (width == 0 || width > kMaxAttrString) {
    return ctx.Error(where, absl::StrCat("string width ", width, " is outside [1, ",
                                         kMaxAttrString, "]"));
  }
  std::vector<char> buf(static_cast<size_t>(n) * width);
  if (H5Aread(a.get(), type.get(), buf.data()) < 0) return ctx.Error(where, "read failed");
  for (hssize_t i = 0; i < n; ++i) {
    const char* p = buf.data() + i * width;
    out->emplace_back(p, strnlen(p, width));
  }
  return absl::OkStatus();
}

absl::StatusOr<DataFrame> ReadDataFrame(const Ctx& ctx, hid_t root, const std::string& name) {
  DataFrame df;
  Handle g(H5Gopen2(root, name.c_str(), H5P_DEFAULT), H5Gclose);
  if (!g.ok()) return ctx.Error("/" + name, "missing dataframe group");
  std::string index = StringAttr(g.get(), "_index");
  if (index.empty()) index = "_index";
  df.index_name = index;
  absl::Status st = ReadStrings(ctx, g.get(), index, "/" + name + "/" + index, &df.index);
  if (!st.ok()) return st;
  // Columns in column-order when present, else every other member.
  std::vector<std::string> order;
  st = StringArrayAttr(ctx, g.get(), "column-order", "/" + name, &order);
  if (!st.ok()) return st;
  if (H5Aexists(g.get(), "column-order") <= 0) {  // pre-0.7 files: every member
    absl::StatusOr<std::vector<std::string>> members = MemberNames(ctx, g.get(), "/" + name);
    if (!members.ok()) return members.status();
    for (const std::string& m : *members) {
      if (m != "__categories") order.push_back(m);
    }
  }
  for (const std::string& c : order) {
    if (c == index) continue;
    std::string element = "/" + name + "/" + c;
    if (!Exists(g.get(), c)) return ctx.Error(element, "listed in column-order but missing");
    absl::StatusOr<Column> col = ReadColumn(ctx, g.get(), c, element);
    if (!col.ok()) return col.status();
    if (col->size() != df.n_rows()) {
      return ctx.Error(element, absl::StrCat("has ", col->size(), " rows, index has ",
                                             df.n_rows()));
    }
    df.columns.push_back(std::move(*col));
  }
  return df;
}

// Reads every matrix under a keyed group (obsm, layers, ...); absent group = empty.
absl::Status ReadMatrixMap(const Ctx& ctx, hid_t root, const std::string& name,
                           std::map<std::string, Matrix>* out) {
  if (!Exists(root, name)) return absl::OkStatus();
  Handle g(H5Gopen2(root, name.c_str(), H5P_DEFAULT), H5Gclose);
  if (!g.ok()) return ctx.Error("/" + name, "cannot open group");
  H5G_info_t ginfo;
  if (H5Gget_info(g.get(), &ginfo) < 0) return ctx.Error("/" + name, "cannot list group");
  if (ginfo.nlinks > static_cast<hsize_t>(ctx.limits().max_group_members)) {
    return ctx.Error("/" + name, absl::StrCat("has ", ginfo.nlinks, " members, more than "
                                              "ReadLimits::max_group_members"));
  }
  for (hsize_t i = 0; i < ginfo.nlinks; ++i) {
    char buf[1024];
    ssize_t len = H5Lget_name_by_idx(g.get(), ".", H5_INDEX_NAME, H5_ITER_INC, i, buf,
                                     sizeof(buf), H5P_DEFAULT);
    if (len < 0 || len >= static_cast<ssize_t>(sizeof(buf))) {
      return ctx.Error("/" + name, "cannot read member name");
    }
    std::string key(buf, static_cast<size_t>(len));
    absl::StatusOr<Matrix> m = ReadMatrix(ctx, g.get(), key, "/" + name + "/" + key);
    if (!m.ok()) return m.status();
    (*out)[key] = std::move(*m);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> MemberNames(const Ctx& ctx, hid_t g,
                                                     const std::string& element) {
  std::vector<std::string> names;
  H5G_info_t ginfo;
  if (H5Gget_info(g, &ginfo) < 0) return ctx.Error(element, "cannot list group");
  if (ginfo.nlinks > static_cast<hsize_t>(ctx.limits().max_group_members)) {
    return ctx.Error(element, absl::StrCat("has ", ginfo.nlinks, " members, more than "
                                           "ReadLimits::max_group_members"));
  }
  for (hsize_t i = 0; i < ginfo.nlinks; ++i) {
    ssize_t len = H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, nullptr, 0,
                                     H5P_DEFAULT);
    if (len < 0) continue;
    if (static_cast<size_t>(len) > kMaxAttrString) {
      return ctx.Error(element, absl::StrCat("member name longer than ", kMaxAttrString));
    }
    std::string name(static_cast<size_t>(len) + 1, '\0');
    H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, name.data(), name.size(),
                       H5P_DEFAULT);
    name.resize(static_cast<size_t>(len));
    names.push_back(name);
  }
  return names;
}

// A 1-D compound dataset (anndata's "rec-array") as UnsValue::kRecArray: each
// member is read alone, strings (fixed or variable length) as strings, numbers
// as doubles (`single` remembers float32).
absl::StatusOr<UnsValue> ReadRecArray(const Ctx& ctx, hid_t ds, const std::string& element) {
  Handle space(H5Dget_space(ds), H5Sclose);
  Handle type(H5Dget_type(ds), H5Tclose);
  if (H5Sget_simple_extent_ndims(space.get()) != 1) return ctx.Error(element, "rec-array is not 1-D");
  const hssize_t rows = H5Sget_simple_extent_npoints(space.get());
  const int nm = H5Tget_nmembers(type.get());
  if (rows < 0 || nm < 0) return ctx.Error(element, "cannot read rec-array shape");
  if (rows > ctx.limits().max_elements)
    return ctx.Error(element, "rec-array has more rows than ReadLimits::max_elements");
  if (nm > ctx.limits().max_group_members)
    return ctx.Error(element, "rec-array has more fields than ReadLimits::max_group_members");
  if (rows * static_cast<int64_t>(nm) * 8 > ctx.limits().max_element_bytes)
    return ctx.Error(element, "rec-array exceeds ReadLimits::max_element_bytes");
  UnsValue rec = UnsValue::RecArray();
  for (int m = 0; m < nm; ++m) {
    char* raw = H5Tget_member_name(type.get(), static_cast<unsigned>(m));
    if (raw == nullptr) return ctx.Error(element, "unnamed rec-array member");
    const std::string field(raw);
    H5free_memory(raw);
    Handle mt(H5Tget_member_type(type.get(), static_cast<unsigned>(m)), H5Tclose);
    const H5T_class_t cls = H5Tget_class(mt.get());
    const std::string where = element + "[" + field + "]";
    UnsValue col;
    if (cls == H5T_STRING) {
      const bool vlen = H5Tis_variable_str(mt.get()) > 0;
      const size_t width = vlen ? sizeof(char*) : H5Tget_size(mt.get());
      if (static_cast<int64_t>(width) > ctx.limits().max_string_bytes)
        return ctx.Error(where, "string wider than ReadLimits::max_string_bytes");
      absl::Status charged = ctx.Charge(where, rows * static_cast<int64_t>(width + sizeof(std::string)));
      if (!charged.ok()) return charged;
      Handle st(H5Tcopy(H5T_C_S1), H5Tclose);
      H5Tset_size(st.get(), vlen ? H5T_VARIABLE : width);
      H5Tset_cset(st.get(), H5Tget_cset(mt.get()));
      Handle mem(H5Tcreate(H5T_COMPOUND, width), H5Tclose);
      H5Tinsert(mem.get(), field.c_str(), 0, st.get());
      std::vector<char> buf(static_cast<size_t>(rows) * width);
      if (rows > 0 && H5Dread(ds, mem.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.data()) < 0)
        return ctx.Error(where, "read failed (truncated or corrupt file?)");
      std::vector<std::string> strings(static_cast<size_t>(rows));
      for (size_t r = 0; r < strings.size(); ++r) {
        const char* at = buf.data() + r * width;
        if (vlen) {
          char* p = nullptr;
          std::memcpy(&p, at, sizeof(p));
          if (p != nullptr) {
            const size_t len = strnlen(p, static_cast<size_t>(ctx.limits().max_string_bytes) + 1);
            if (static_cast<int64_t>(len) > ctx.limits().max_string_bytes) {
              for (size_t q = r; q < strings.size(); ++q) {  // free the rest before failing
                char* rest = nullptr;
                std::memcpy(&rest, buf.data() + q * width, sizeof(rest));
                H5free_memory(rest);
              }
              return ctx.Error(where, "string longer than ReadLimits::max_string_bytes");
            }
            strings[r].assign(p, len);
          }
          H5free_memory(p);
        } else {
          strings[r] = std::string(at, strnlen(at, width));
        }
      }
      col = UnsValue::StringArray(std::move(strings));
    } else if (cls == H5T_FLOAT || cls == H5T_INTEGER) {
      absl::Status charged = ctx.Charge(where, rows * static_cast<int64_t>(sizeof(double)));
      if (!charged.ok()) return charged;
      Handle mem(H5Tcreate(H5T_COMPOUND, sizeof(double)), H5Tclose);
      H5Tinsert(mem.get(), field.c_str(), 0, H5T_NATIVE_DOUBLE);
      std::vector<double> x(static_cast<size_t>(rows));
      if (rows > 0 && H5Dread(ds, mem.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, x.data()) < 0)
        return ctx.Error(where, "read failed (truncated or corrupt file?)");
      col = UnsValue::FloatArray(std::move(x));
      col.single = cls == H5T_FLOAT && H5Tget_size(mt.get()) == 4;
    } else {
      return ctx.Error(where, "unsupported rec-array member type");
    }
    rec.Set(field, std::move(col));
  }
  return rec;
}

// uns: groups become maps, 0-d datasets scalars, others arrays.
absl::StatusOr<UnsValue> ReadUns(const Ctx& ctx, hid_t loc, const std::string& name,
                                 const std::string& element, int depth) {
  if (depth > 64) return ctx.Error(element, "uns nested too deeply");
  if (IsGroup(loc, name)) {
    Handle g(H5Gopen2(loc, name.c_str(), H5P_DEFAULT), H5Gclose);
    if (!g.ok()) return ctx.Error(element, "cannot open group");
    std::string enc = StringAttr(g.get(), "encoding-type");
    if (!enc.empty() && enc != "dict") {
      return ctx.Error(element, absl::StrCat("unsupported encoding-type '", enc,
                                             "' in uns (ReadOptions::read_uns = false skips uns)"));
    }
    UnsValue map = UnsValue::Map();
    absl::StatusOr<std::vector<std::string>> keys = MemberNames(ctx, g.get(), element);
    if (!keys.ok()) return keys.status();
    for (const std::string& key : *keys) {
      absl::StatusOr<UnsValue> child = ReadUns(ctx, g.get(), key, element + "/" + key, depth + 1);
      if (!child.ok()) return child.status();
      map.children.emplace_back(key, std::move(*child));
    }
    return map;
  }
  Handle ds(H5Dopen2(loc, name.c_str(), H5P_DEFAULT), H5Dclose);
  if (!ds.ok()) return ctx.Error(element, "cannot open dataset");
  {
    Handle type(H5Dget_type(ds.get()), H5Tclose);
    if (H5Tget_class(type.get()) == H5T_COMPOUND) return ReadRecArray(ctx, ds.get(), element);
  }
  absl::StatusOr<DatasetInfo> info = Inspect(ctx, ds.get(), element);
  if (!info.ok()) return info.status();
  UnsValue v;
  if (info->is_string) {
    std::vector<std::string> strings;
    absl::Status st = ReadStrings(ctx, loc, name, element, &strings);
    if (!st.ok()) return st;
    if (info->dims.empty()) return UnsValue::String(strings.empty() ? "" : strings[0]);
    return UnsValue::StringArray(std::move(strings));
  }
  bool is_float = info->dtype == DType::kFloat32 || info->dtype == DType::kFloat64;
  if (info->dims.empty()) {
    if (is_float) {
      std::vector<double> x;
      absl::Status st = ReadNumeric(ctx, loc, name, element, H5T_NATIVE_DOUBLE, &x);
      if (!st.ok()) return st;
      if (x.size() != 1) return ctx.Error(element, "scalar without a value (empty dataspace)");
      return UnsValue::Float(x[0]);
    }
    std::vector<int64_t> x;
    absl::Status st = ReadNumeric(ctx, loc, name, element, H5T_NATIVE_INT64, &x);
    if (!st.ok()) return st;
    if (x.size() != 1) return ctx.Error(element, "scalar without a value (empty dataspace)");
    return info->dtype == DType::kBool ? UnsValue::Bool(x[0] != 0) : UnsValue::Int(x[0]);
  }
  if (is_float) {
    std::vector<double> x;
    absl::Status st = ReadNumeric(ctx, loc, name, element, H5T_NATIVE_DOUBLE, &x);
    if (!st.ok()) return st;
    v = UnsValue::FloatArray(std::move(x));
  } else {
    std::vector<int64_t> x;
    absl::Status st = ReadNumeric(ctx, loc, name, element, H5T_NATIVE_INT64, &x);
    if (!st.ok()) return st;
    v = UnsValue::IntArray(std::move(x));
  }
  v.shape.assign(info->dims.begin(), info->dims.end());
  return v;
}

struct LinkWalk {
  int64_t count = 0;
  int64_t max_links = 0;
  std::string bad;  // the first link that points outside the file
};

herr_t VisitLink(hid_t, const char* name, const H5L_info_t* info, void* data) {
  auto* walk = static_cast<LinkWalk*>(data);
  if (++walk->count > walk->max_links) return 1;
  if (info->type != H5L_TYPE_HARD && info->type != H5L_TYPE_SOFT) {
    walk->bad = name;
    return 1;
  }
  return 0;
}

// Opens `path` read-only and refuses links into other files (external or
// user-defined links would make HDF5 open files the caller never named) and
// more than 16 x max_group_members links in all.
absl::StatusOr<Handle> OpenFile(const std::string& path, const ReadLimits& limits,
                                ReadState* state) {
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  std::ifstream probe(path, std::ios::binary);
  if (!probe) return absl::NotFoundError(absl::StrCat(path, ": /: file not found or unreadable"));
  if (H5Fis_hdf5(path.c_str()) <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": /: not an HDF5 file"));
  }
  Handle f(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
  if (!f.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": /: cannot open HDF5 file (truncated or corrupt?)"));
  }
  hsize_t size = 0;
  if (H5Fget_filesize(f.get(), &size) < 0) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": /: cannot read the file size"));
  }
  state->file_size = static_cast<int64_t>(size);
  LinkWalk walk;
  walk.max_links = limits.max_group_members * 16;
  herr_t rc = H5Lvisit(f.get(), H5_INDEX_NAME, H5_ITER_INC, VisitLink, &walk);
  if (!walk.bad.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": /", walk.bad, ": links to another file (external links are not accepted)"));
  }
  if (walk.count > walk.max_links) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": /: has more than 16 x ReadLimits::max_group_members links"));
  }
  if (rc < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": /: cannot list the file's groups (corrupt?)"));
  }
  return f;
}

absl::StatusOr<AnnData> ReadAnnDataGroup(const Ctx& ctx, hid_t root) {
  AnnData ad;
  absl::StatusOr<DataFrame> obs = ReadDataFrame(ctx, root, "obs");
  if (!obs.ok()) return obs.status();
  ad.obs = std::move(*obs);
  absl::StatusOr<DataFrame> var = ReadDataFrame(ctx, root, "var");
  if (!var.ok()) return var.status();
  ad.var = std::move(*var);
  ad.has_x = Exists(root, "X");
  if (ad.has_x) {
    absl::StatusOr<Matrix> x = ReadMatrix(ctx, root, "X", "/X");
    if (!x.ok()) return x.status();
    ad.X = std::move(*x);
    if (ad.X.n_rows != ad.n_obs() || ad.X.n_cols != ad.n_vars()) {
      return ctx.Error("/X", absl::StrCat("shape ", ad.X.n_rows, " x ", ad.X.n_cols,
                                          " disagrees with obs x var ", ad.n_obs(), " x ",
                                          ad.n_vars()));
    }
  }
  absl::Status st = ReadMatrixMap(ctx, root, "obsm", &ad.obsm);
  if (!st.ok()) return st;
  if (ctx.options->read_layers) {
    st = ReadMatrixMap(ctx, root, "layers", &ad.layers);
    if (!st.ok()) return st;
  }
  if (ctx.options->read_varm) {
    st = ReadMatrixMap(ctx, root, "varm", &ad.varm);
    if (!st.ok()) return st;
  }
  if (ctx.options->read_obsp) {
    st = ReadMatrixMap(ctx, root, "obsp", &ad.obsp);
    if (!st.ok()) return st;
  }
  if (ctx.options->read_uns && Exists(root, "uns")) {
    absl::StatusOr<UnsValue> uns = ReadUns(ctx, root, "uns", "/uns", 0);
    if (!uns.ok()) return uns.status();
    ad.uns = std::move(*uns);
  }
  return ad;
}

}  // namespace

namespace {

absl::StatusOr<AnnData> ReadH5adUnguarded(const std::string& path, const ReadOptions& options,
                                          ReadState* state) {
  absl::StatusOr<Handle> f = OpenFile(path, options.limits, state);
  if (!f.ok()) return f.status();
  Ctx ctx{path, &options, "", state};
  absl::StatusOr<AnnData> ad = ReadAnnDataGroup(ctx, f->get());
  if (!ad.ok()) return ad.status();
  absl::Status st = ValidateAnnData(*ad, path);
  if (!st.ok()) return st;
  return ad;
}

absl::StatusOr<MuData> ReadH5muUnguarded(const std::string& path, const ReadOptions& options,
                                         ReadState* state) {
  absl::StatusOr<Handle> f = OpenFile(path, options.limits, state);
  if (!f.ok()) return f.status();
  Ctx ctx{path, &options, "", state};
  if (!Exists(f->get(), "mod")) return ctx.Error("/mod", "missing (not a MuData file)");
  Handle mod(H5Gopen2(f->get(), "mod", H5P_DEFAULT), H5Gclose);
  if (!mod.ok()) return ctx.Error("/mod", "cannot open group");
  std::vector<std::string> order;
  absl::Status st = StringArrayAttr(ctx, mod.get(), "mod-order", "/mod", &order);
  if (!st.ok()) return st;
  if (order.empty()) {
    absl::StatusOr<std::vector<std::string>> members = MemberNames(ctx, mod.get(), "/mod");
    if (!members.ok()) return members.status();
    order = std::move(*members);
  }
  MuData md;
  for (const std::string& name : order) {
    if (!Exists(mod.get(), name)) return ctx.Error("/mod/" + name, "listed in mod-order but missing");
    Handle g(H5Gopen2(mod.get(), name.c_str(), H5P_DEFAULT), H5Gclose);
    if (!g.ok()) return ctx.Error("/mod/" + name, "cannot open group");
    Ctx sub{path, &options, "/mod/" + name, state};
    absl::StatusOr<AnnData> ad = ReadAnnDataGroup(sub, g.get());
    if (!ad.ok()) return ad.status();
    st = ValidateAnnData(*ad, absl::StrCat(path, ": /mod/", name));
    if (!st.ok()) return st;
    md.mod.emplace_back(name, std::move(*ad));
  }
  if (Exists(f->get(), "obs")) {
    absl::StatusOr<DataFrame> obs = ReadDataFrame(ctx, f->get(), "obs");
    if (!obs.ok()) return obs.status();
    md.obs = std::move(*obs);
  }
  st = ReadMatrixMap(ctx, f->get(), "obsm", &md.obsm);
  if (!st.ok()) return st;
  for (const auto& [k, m] : md.obsm) {
    if (m.n_rows != md.obs.n_rows()) {
      return ctx.Error("/obsm/" + k, absl::StrCat("has ", m.n_rows, " rows, obs has ",
                                                  md.obs.n_rows()));
    }
  }
  if (options.read_uns && Exists(f->get(), "uns")) {
    absl::StatusOr<UnsValue> uns = ReadUns(ctx, f->get(), "uns", "/uns", 0);
    if (!uns.ok()) return uns.status();
    md.uns = std::move(*uns);
  }
  return md;
}

// The public readers: no C++ exception leaves them (see Guarded).
template <typename T, typename Fn>
absl::StatusOr<T> ReadGuarded(const std::string& path, const ReadOptions& options, Fn&& fn) {
  ReadState state;
  Ctx ctx{path, &options, "", &state};
  return Guarded(ctx, [&]() -> absl::StatusOr<T> { return fn(&state); });
}

}  // namespace

absl::StatusOr<AnnData> ReadH5ad(const std::string& path, const ReadOptions& options) {
  return ReadGuarded<AnnData>(path, options, [&](ReadState* state) {
    return ReadH5adUnguarded(path, options, state);
  });
}

absl::StatusOr<MuData> ReadH5mu(const std::string& path, const ReadOptions& options) {
  return ReadGuarded<MuData>(path, options, [&](ReadState* state) {
    return ReadH5muUnguarded(path, options, state);
  });
}

namespace {

struct TissuePosition {
  bool in_tissue = false;
  double pxl_row = 0;
  double pxl_col = 0;
};

// Space Ranger tissue_positions(.csv|_list.csv): barcode,in_tissue,array_row,
// array_col,pxl_row_in_fullres,pxl_col_in_fullres, with or without a header.
absl::Status ReadTissuePositions(const std::string& path,
                                 std::map<std::string, TissuePosition>* out) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": /: file not found or unreadable"));
  std::string line;
  int64_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    std::vector<std::string> f;
    size_t start = 0;
    while (true) {
      size_t comma = line.find(',', start);
      f.push_back(line.substr(start, comma == std::string::npos ? std::string::npos
                                                                : comma - start));
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
    if (line_no == 1 && f[0] == "barcode") continue;  // header
    if (f.size() != 6) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": line ", line_no, ": expected 6 comma-separated fields"));
    }
    TissuePosition p;
    char* end = nullptr;
    p.in_tissue = std::strtol(f[1].c_str(), &end, 10) == 1;
    p.pxl_row = std::strtod(f[4].c_str(), &end);
    if (end == f[4].c_str()) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": line ", line_no,
                                                     ": pxl_row_in_fullres is not a number"));
    }
    p.pxl_col = std::strtod(f[5].c_str(), &end);
    if (end == f[5].c_str()) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": line ", line_no,
                                                     ": pxl_col_in_fullres is not a number"));
    }
    (*out)[f[0]] = p;
  }
  return absl::OkStatus();
}

}  // namespace

namespace {

absl::StatusOr<MuData> Read10xH5Unguarded(const std::string& path,
                                          const std::string& tissue_positions_csv,
                                          const ReadOptions& options, ReadState* state) {
  absl::StatusOr<Handle> f = OpenFile(path, options.limits, state);
  if (!f.ok()) return f.status();
  Ctx ctx{path, &options, "", state};
  if (!IsGroup(f->get(), "matrix")) {
    return ctx.Error("/matrix", "missing (not a CellRanger >= 3 feature-barcode matrix)");
  }
  Handle g(H5Gopen2(f->get(), "matrix", H5P_DEFAULT), H5Gclose);
  std::vector<int64_t> shape;
  absl::Status st = ReadNumeric(ctx, g.get(), "shape", "/matrix/shape", H5T_NATIVE_INT64, &shape);
  if (!st.ok()) return st;
  if (shape.size() != 2 || shape[0] < 0 || shape[1] < 0) {
    return ctx.Error("/matrix/shape", "must be two non-negative integers");
  }
  // CSC of features x barcodes has exactly the arrays of CSR barcodes x features.
  Matrix x;
  x.format = Matrix::Format::kCsr;
  x.n_rows = shape[1];
  x.n_cols = shape[0];
  st = CheckSparseShape(ctx, "/matrix", x);
  if (!st.ok()) return st;
  st = ReadNumeric(ctx, g.get(), "indptr", "/matrix/indptr", H5T_NATIVE_INT64, &x.indptr);
  if (!st.ok()) return st;
  DatasetInfo info;
  st = ReadNumeric(ctx, g.get(), "data", "/matrix/data", H5T_NATIVE_FLOAT, &x.values, &info);
  if (!st.ok()) return st;
  x.dtype = info.dtype;
  st = ReadNumeric(ctx, g.get(), "indices", "/matrix/indices", H5T_NATIVE_INT32, &x.indices);
  if (!st.ok()) return st;
  st = CheckCompressed(ctx, "/matrix", &x);
  if (!st.ok()) return st;
  if (options.reject_non_finite) {
    for (float v : x.values) {
      if (!std::isfinite(v)) return ctx.Error("/matrix/data", "non-finite value (NaN or Inf)");
    }
  }
  std::vector<std::string> barcodes, ids, names, types, genomes;
  st = ReadStrings(ctx, g.get(), "barcodes", "/matrix/barcodes", &barcodes);
  if (!st.ok()) return st;
  if (static_cast<int64_t>(barcodes.size()) != x.n_rows) {
    return ctx.Error("/matrix/barcodes", "length differs from shape[1]");
  }
  if (!IsGroup(g.get(), "features")) return ctx.Error("/matrix/features", "missing group");
  Handle feat(H5Gopen2(g.get(), "features", H5P_DEFAULT), H5Gclose);
  for (auto [name, dst] : {std::pair<const char*, std::vector<std::string>*>{"id", &ids},
                           {"name", &names}, {"feature_type", &types}, {"genome", &genomes}}) {
    std::string element = absl::StrCat("/matrix/features/", name);
    if (std::string(name) == "genome" && !Exists(feat.get(), name)) continue;  // optional
    st = ReadStrings(ctx, feat.get(), name, element, dst);
    if (!st.ok()) return st;
    if (static_cast<int64_t>(dst->size()) != x.n_cols) {
      return ctx.Error(element, "length differs from shape[0]");
    }
  }
  // Spots to keep, with their positions.
  std::vector<int64_t> rows;
  std::vector<float> spatial;
  if (!tissue_positions_csv.empty()) {
    std::map<std::string, TissuePosition> positions;
    st = ReadTissuePositions(tissue_positions_csv, &positions);
    if (!st.ok()) return st;
    for (int64_t i = 0; i < x.n_rows; ++i) {
      auto it = positions.find(barcodes[i]);
      if (it == positions.end() || !it->second.in_tissue) continue;
      rows.push_back(i);
      spatial.push_back(static_cast<float>(it->second.pxl_col));  // scanpy: (x, y)
      spatial.push_back(static_cast<float>(it->second.pxl_row));
    }
  } else {
    for (int64_t i = 0; i < x.n_rows; ++i) rows.push_back(i);
  }
  MuData md;
  for (const int64_t i : rows) md.obs.index.push_back(barcodes[i]);
  if (!tissue_positions_csv.empty()) {
    md.obsm["spatial"] = Matrix::Dense(static_cast<int64_t>(rows.size()), 2, spatial);
  }
  const std::pair<const char*, const char*> kinds[] = {
      {"Gene Expression", "rna"}, {"Antibody Capture", "prot"}, {"Peaks", "atac"}};
  for (const auto& [type, mod_name] : kinds) {
    std::vector<int64_t> cols;
    for (int64_t j = 0; j < x.n_cols; ++j) {
      if (types[j] == type) cols.push_back(j);
    }
    if (cols.empty()) continue;
    AnnData ad;
    ad.X = Subset(x, rows, cols);
    ad.obs.index = md.obs.index;
    Column gene_ids = Column::Strings("gene_ids", {});
    Column feature_types = Column::Strings("feature_types", {});
    Column genome = Column::Strings("genome", {});
    for (int64_t j : cols) {
      ad.var.index.push_back(names[j]);
      gene_ids.strings.push_back(ids[j]);
      feature_types.strings.push_back(types[j]);
      if (!genomes.empty()) genome.strings.push_back(genomes[j]);
    }
    ad.var.Set(gene_ids);
    ad.var.Set(feature_types);
    if (!genomes.empty()) ad.var.Set(genome);
    if (!tissue_positions_csv.empty()) ad.obsm["spatial"] = md.obsm["spatial"];
    md.mod.emplace_back(mod_name, std::move(ad));
  }
  if (md.mod.empty()) {
    return ctx.Error("/matrix/features/feature_type",
                     "no Gene Expression, Antibody Capture or Peaks features");
  }
  return md;
}

}  // namespace

absl::StatusOr<MuData> Read10xH5(const std::string& path, const std::string& tissue_positions_csv,
                                 const ReadOptions& options) {
  return ReadGuarded<MuData>(path, options, [&](ReadState* state) {
    return Read10xH5Unguarded(path, tissue_positions_csv, options, state);
  });
}

absl::Status ValidateAnnData(const AnnData& adata, const std::string& what) {
  auto check = [&](const std::string& key, const Matrix& m, int64_t rows,
                   int64_t cols) -> absl::Status {
    if (m.n_rows != rows || (cols >= 0 && m.n_cols != cols)) {
      return absl::InvalidArgumentError(absl::StrCat(what, ": ", key, ": shape ", m.n_rows,
                                                     " x ", m.n_cols, " disagrees with ", rows,
                                                     cols >= 0 ? absl::StrCat(" x ", cols) : ""));
    }
    return absl::OkStatus();
  };
  if (adata.has_x) {
    absl::Status st = check("X", adata.X, adata.n_obs(), adata.n_vars());
    if (!st.ok()) return st;
  }
  for (const auto& [k, m] : adata.layers) {
    absl::Status st = check("layers/" + k, m, adata.n_obs(), adata.n_vars());
    if (!st.ok()) return st;
  }
  for (const auto& [k, m] : adata.obsm) {
    absl::Status st = check("obsm/" + k, m, adata.n_obs(), -1);
    if (!st.ok()) return st;
  }
  for (const auto& [k, m] : adata.varm) {
    absl::Status st = check("varm/" + k, m, adata.n_vars(), -1);
    if (!st.ok()) return st;
  }
  for (const auto& [k, m] : adata.obsp) {
    absl::Status st = check("obsp/" + k, m, adata.n_obs(), adata.n_obs());
    if (!st.ok()) return st;
  }
  return absl::OkStatus();
}

}  // namespace candies
