// .h5ad / .h5mu writer in the current anndata (>= 0.8) encoding: every element
// carries encoding-type / encoding-version, so anndata.read_h5ad opens it
// without warnings. Matrices are written in the dtype recorded in Matrix::dtype.
#include <hdf5.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/io/h5ad.h"

namespace candies {
namespace {

// Owns one hid_t (one owner per handle).
class H {
 public:
  using Closer = herr_t (*)(hid_t);
  H(hid_t id, Closer c) : id_(id), c_(c) {}
  H(const H&) = delete;
  H& operator=(const H&) = delete;
  ~H() {
    if (id_ >= 0) c_(id_);
  }
  hid_t get() const { return id_; }
  bool ok() const { return id_ >= 0; }

 private:
  hid_t id_;
  Closer c_;
};

struct Writer {
  std::string file;
  absl::Status status;  // first error; later writes are skipped

  bool Fail(const std::string& element, const std::string& problem) {
    if (status.ok()) {
      status = absl::InternalError(absl::StrCat(file, ": ", element, ": ", problem));
    }
    return false;
  }

  static hid_t VlenUtf8() {
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    return t;
  }

  bool StrAttr(hid_t obj, const char* name, const std::string& value) {
    H type(VlenUtf8(), H5Tclose);
    H space(H5Screate(H5S_SCALAR), H5Sclose);
    H attr(H5Acreate2(obj, name, type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
    const char* p = value.c_str();
    if (!attr.ok() || H5Awrite(attr.get(), type.get(), &p) < 0) {
      return Fail(name, "cannot write attribute");
    }
    return true;
  }

  bool StrArrayAttr(hid_t obj, const char* name, const std::vector<std::string>& values) {
    H type(VlenUtf8(), H5Tclose);
    hsize_t n = values.size();
    H space(H5Screate_simple(1, &n, nullptr), H5Sclose);
    H attr(H5Acreate2(obj, name, type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
    std::vector<const char*> ptrs;
    for (const std::string& s : values) ptrs.push_back(s.c_str());
    if (!attr.ok() || (n > 0 && H5Awrite(attr.get(), type.get(), ptrs.data()) < 0)) {
      return Fail(name, "cannot write attribute");
    }
    return true;
  }

  bool Encoding(hid_t obj, const char* type, const char* version) {
    return StrAttr(obj, "encoding-type", type) && StrAttr(obj, "encoding-version", version);
  }

  // numpy bool as h5py stores it: an int8 enum {FALSE, TRUE}.
  static hid_t BoolType() {
    hid_t t = H5Tenum_create(H5T_NATIVE_INT8);
    int8_t f = 0, tr = 1;
    H5Tenum_insert(t, "FALSE", &f);
    H5Tenum_insert(t, "TRUE", &tr);
    return t;
  }

  static hid_t FileType(DType d) {
    switch (d) {
      case DType::kFloat32: return H5Tcopy(H5T_IEEE_F32LE);
      case DType::kFloat64: return H5Tcopy(H5T_IEEE_F64LE);
      case DType::kInt8: return H5Tcopy(H5T_STD_I8LE);
      case DType::kInt16: return H5Tcopy(H5T_STD_I16LE);
      case DType::kInt32: return H5Tcopy(H5T_STD_I32LE);
      case DType::kInt64: return H5Tcopy(H5T_STD_I64LE);
      case DType::kUInt8: return H5Tcopy(H5T_STD_U8LE);
      case DType::kUInt16: return H5Tcopy(H5T_STD_U16LE);
      case DType::kUInt32: return H5Tcopy(H5T_STD_U32LE);
      case DType::kUInt64: return H5Tcopy(H5T_STD_U64LE);
      case DType::kBool: return BoolType();
    }
    return H5Tcopy(H5T_IEEE_F32LE);
  }

  // Writes `n` values of memory type `mem` (shape `dims`) as file type `file_type`.
  bool Dataset(hid_t loc, const std::string& name, const std::string& element, hid_t file_type,
               hid_t mem, const std::vector<hsize_t>& dims, const void* data,
               const char* enc = "array", const char* version = "0.2.0") {
    H space(dims.empty() ? H5Screate(H5S_SCALAR)
                         : H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr),
            H5Sclose);
    H ds(H5Dcreate2(loc, name.c_str(), file_type, space.get(), H5P_DEFAULT, H5P_DEFAULT,
                    H5P_DEFAULT),
         H5Dclose);
    if (!ds.ok()) return Fail(element, "cannot create dataset");
    hsize_t total = 1;
    for (hsize_t d : dims) total *= d;
    if (total > 0 && H5Dwrite(ds.get(), mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0) {
      return Fail(element, "cannot write dataset (disk full?)");
    }
    return enc == nullptr || Encoding(ds.get(), enc, version);
  }

  bool Strings(hid_t loc, const std::string& name, const std::string& element,
               const std::vector<std::string>& values) {
    H type(VlenUtf8(), H5Tclose);
    std::vector<const char*> ptrs;
    for (const std::string& s : values) ptrs.push_back(s.c_str());
    return Dataset(loc, name, element, type.get(), type.get(), {values.size()}, ptrs.data(),
                   "string-array", "0.2.0");
  }

  bool WriteMatrix(hid_t loc, const std::string& name, const std::string& element,
                   const Matrix& m) {
    // Values are float32 in memory; HDF5 converts to the recorded on-disk dtype.
    H ft(FileType(m.dtype), H5Tclose);
    hid_t mem = H5T_NATIVE_FLOAT;
    H bool_mem(BoolType(), H5Tclose);
    std::vector<int8_t> as_bool;
    const void* data = m.values.data();
    if (m.dtype == DType::kBool) {  // float -> enum has no HDF5 conversion path
      for (float v : m.values) as_bool.push_back(v != 0 ? 1 : 0);
      mem = bool_mem.get();
      data = as_bool.data();
    }
    if (m.format == Matrix::Format::kDense) {
      return Dataset(loc, name, element, ft.get(), mem,
                     {static_cast<hsize_t>(m.n_rows), static_cast<hsize_t>(m.n_cols)}, data);
    }
    H g(H5Gcreate2(loc, name.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose);
    if (!g.ok()) return Fail(element, "cannot create group");
    bool csr = m.format == Matrix::Format::kCsr;
    if (!Encoding(g.get(), csr ? "csr_matrix" : "csc_matrix", "0.1.0")) return false;
    int64_t shape[2] = {m.n_rows, m.n_cols};
    hsize_t two = 2;
    H space(H5Screate_simple(1, &two, nullptr), H5Sclose);
    H attr(H5Acreate2(g.get(), "shape", H5T_STD_I64LE, space.get(), H5P_DEFAULT, H5P_DEFAULT),
           H5Aclose);
    if (!attr.ok() || H5Awrite(attr.get(), H5T_NATIVE_INT64, shape) < 0) {
      return Fail(element, "cannot write shape");
    }
    return Dataset(g.get(), "data", element + "/data", ft.get(), mem, {m.values.size()}, data,
                   nullptr) &&
           Dataset(g.get(), "indices", element + "/indices", H5T_STD_I32LE, H5T_NATIVE_INT32,
                   {m.indices.size()}, m.indices.data(), nullptr) &&
           Dataset(g.get(), "indptr", element + "/indptr", H5T_STD_I64LE, H5T_NATIVE_INT64,
                   {m.indptr.size()}, m.indptr.data(), nullptr);
  }

  bool WriteColumn(hid_t df, const std::string& element, const Column& c) {
    hsize_t n = static_cast<hsize_t>(c.size());
    switch (c.kind) {
      case Column::Kind::kFloat: {
        H ft(FileType(c.dtype == DType::kFloat32 ? DType::kFloat32 : DType::kFloat64), H5Tclose);
        return Dataset(df, c.name, element, ft.get(), H5T_NATIVE_DOUBLE, {n}, c.floats.data());
      }
      case Column::Kind::kInt: {
        DType d = c.dtype == DType::kFloat32 || c.dtype == DType::kFloat64 ? DType::kInt64
                                                                           : c.dtype;
        H ft(FileType(d), H5Tclose);
        return Dataset(df, c.name, element, ft.get(), H5T_NATIVE_INT64, {n}, c.ints.data());
      }
      case Column::Kind::kBool: {
        H bt(BoolType(), H5Tclose);
        std::vector<int8_t> v(c.bools.begin(), c.bools.end());
        return Dataset(df, c.name, element, bt.get(), bt.get(), {n}, v.data());
      }
      case Column::Kind::kString:
        return Strings(df, c.name, element, c.strings);
      case Column::Kind::kCategorical: {
        H g(H5Gcreate2(df, c.name.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose);
        if (!g.ok()) return Fail(element, "cannot create group");
        if (!Encoding(g.get(), "categorical", "0.2.0")) return false;
        H bt(BoolType(), H5Tclose);
        H space(H5Screate(H5S_SCALAR), H5Sclose);
        H attr(H5Acreate2(g.get(), "ordered", bt.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT),
               H5Aclose);
        int8_t ordered = c.ordered ? 1 : 0;
        if (!attr.ok() || H5Awrite(attr.get(), bt.get(), &ordered) < 0) {
          return Fail(element, "cannot write ordered");
        }
        // pandas picks the smallest signed code type; int8 up to 127 categories.
        H ct(H5Tcopy(c.categories.size() < 128 ? H5T_STD_I8LE : H5T_STD_I32LE), H5Tclose);
        return Dataset(g.get(), "codes", element + "/codes", ct.get(), H5T_NATIVE_INT32, {n},
                       c.codes.data()) &&
               Strings(g.get(), "categories", element + "/categories", c.categories);
      }
    }
    return Fail(element, "unknown column kind");
  }

  bool WriteDataFrame(hid_t root, const std::string& name, const DataFrame& df) {
    std::string element = "/" + name;
    H g(H5Gcreate2(root, name.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose);
    if (!g.ok()) return Fail(element, "cannot create group");
    std::string index = df.index_name.empty() ? "_index" : df.index_name;
    std::vector<std::string> order;
    for (const Column& c : df.columns) {
      if (c.name == index || c.name.empty()) return Fail(element, "bad column name '" + c.name + "'");
      if (c.size() != df.n_rows()) return Fail(element + "/" + c.name, "length differs from index");
      order.push_back(c.name);
    }
    if (!Encoding(g.get(), "dataframe", "0.2.0") || !StrAttr(g.get(), "_index", index) ||
        !StrArrayAttr(g.get(), "column-order", order) ||
        !Strings(g.get(), index, element + "/" + index, df.index)) {
      return false;
    }
    for (const Column& c : df.columns) {
      if (!WriteColumn(g.get(), element + "/" + c.name, c)) return false;
    }
    return true;
  }

  bool WriteMatrixMap(hid_t root, const std::string& name,
                      const std::map<std::string, Matrix>& map) {
    H g(H5Gcreate2(root, name.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose);
    if (!g.ok() || !Encoding(g.get(), "dict", "0.1.0")) return Fail("/" + name, "cannot create");
    for (const auto& [k, m] : map) {
      if (!WriteMatrix(g.get(), k, "/" + name + "/" + k, m)) return false;
    }
    return true;
  }

  bool WriteUns(hid_t loc, const std::string& name, const std::string& element,
                const UnsValue& v) {
    std::vector<hsize_t> shape;
    for (int64_t s : v.shape) shape.push_back(static_cast<hsize_t>(s));
    switch (v.kind) {
      case UnsValue::Kind::kMap: {
        H g(H5Gcreate2(loc, name.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose);
        if (!g.ok() || !Encoding(g.get(), "dict", "0.1.0")) return Fail(element, "cannot create");
        for (const auto& [k, child] : v.children) {
          if (!WriteUns(g.get(), k, element + "/" + k, child)) return false;
        }
        return true;
      }
      case UnsValue::Kind::kString: {
        H type(VlenUtf8(), H5Tclose);
        const char* p = v.str.c_str();
        return Dataset(loc, name, element, type.get(), type.get(), {}, &p, "string", "0.2.0");
      }
      case UnsValue::Kind::kFloat:
        return Dataset(loc, name, element, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, {}, &v.f,
                       "numeric-scalar", "0.2.0");
      case UnsValue::Kind::kInt:
        return Dataset(loc, name, element, H5T_STD_I64LE, H5T_NATIVE_INT64, {}, &v.i,
                       "numeric-scalar", "0.2.0");
      case UnsValue::Kind::kBool: {
        H bt(BoolType(), H5Tclose);
        int8_t b = v.b ? 1 : 0;
        return Dataset(loc, name, element, bt.get(), bt.get(), {}, &b, "numeric-scalar", "0.2.0");
      }
      case UnsValue::Kind::kFloatArray:
        if (shape.empty()) shape = {v.floats.size()};
        return Dataset(loc, name, element, v.single ? H5T_IEEE_F32LE : H5T_IEEE_F64LE,
                       H5T_NATIVE_DOUBLE, shape, v.floats.data());
      case UnsValue::Kind::kIntArray:
        if (shape.empty()) shape = {v.ints.size()};
        return Dataset(loc, name, element, H5T_STD_I64LE, H5T_NATIVE_INT64, shape,
                       v.ints.data());
      case UnsValue::Kind::kStringArray:
        return Strings(loc, name, element, v.strings);
      case UnsValue::Kind::kRecArray:
        return RecArray(loc, name, element, v);
    }
    return Fail(element, "unknown uns kind");
  }

  // A structured array as anndata (>= 0.8) writes it: one compound dataset,
  // string fields variable-length UTF-8, numeric fields float64 (float32 when
  // `single`). In memory each member takes 8 bytes: a char* or a double.
  bool RecArray(hid_t loc, const std::string& name, const std::string& element,
                const UnsValue& v) {
    const size_t nf = v.children.size();
    if (nf == 0) return Fail(element, "rec-array without fields");
    const size_t rows = v.children[0].second.kind == UnsValue::Kind::kStringArray
                            ? v.children[0].second.strings.size()
                            : v.children[0].second.floats.size();
    const size_t row_bytes = 8 * nf;
    H str(VlenUtf8(), H5Tclose);
    H mem(H5Tcreate(H5T_COMPOUND, row_bytes), H5Tclose);
    H file(H5Tcreate(H5T_COMPOUND, row_bytes), H5Tclose);
    std::vector<unsigned char> buf(rows * row_bytes);
    for (size_t f = 0; f < nf; ++f) {
      const auto& [field, col] = v.children[f];
      const bool is_str = col.kind == UnsValue::Kind::kStringArray;
      if (!is_str && col.kind != UnsValue::Kind::kFloatArray)
        return Fail(element + "/" + field, "rec-array fields must be float or string arrays");
      if ((is_str ? col.strings.size() : col.floats.size()) != rows)
        return Fail(element + "/" + field, "rec-array fields differ in length");
      H5Tinsert(mem.get(), field.c_str(), 8 * f, is_str ? str.get() : H5T_NATIVE_DOUBLE);
      H5Tinsert(file.get(), field.c_str(), 8 * f,
                is_str ? str.get() : (col.single ? H5T_IEEE_F32LE : H5T_IEEE_F64LE));
      for (size_t r = 0; r < rows; ++r) {
        unsigned char* at = buf.data() + r * row_bytes + 8 * f;
        if (is_str) {
          const char* p = col.strings[r].c_str();
          std::memcpy(at, &p, sizeof(p));
        } else {
          std::memcpy(at, &col.floats[r], sizeof(double));
        }
      }
    }
    H5Tpack(file.get());
    return Dataset(loc, name, element, file.get(), mem.get(), {rows}, buf.data(), "rec-array",
                   "0.2.0");
  }

  bool WriteAnnData(hid_t root, const AnnData& a) {
    if (!Encoding(root, "anndata", "0.1.0")) return false;
    if (a.has_x && !WriteMatrix(root, "X", "/X", a.X)) return false;
    return WriteDataFrame(root, "obs", a.obs) && WriteDataFrame(root, "var", a.var) &&
           WriteMatrixMap(root, "obsm", a.obsm) && WriteMatrixMap(root, "varm", a.varm) &&
           WriteMatrixMap(root, "layers", a.layers) && WriteMatrixMap(root, "obsp", a.obsp) &&
           WriteUns(root, "uns", "/uns", a.uns.kind == UnsValue::Kind::kMap ? a.uns
                                                                          : UnsValue::Map());
  }
};

// Creates `path`.tmp.<pid>, runs `body` on its root group, renames into place.
template <typename Body>
absl::Status WriteAtomically(const std::string& path, Body body) {
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  std::string tmp = absl::StrCat(path, ".tmp.", getpid());
  Writer w{path, absl::OkStatus()};
  {
    H f(H5Fcreate(tmp.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), H5Fclose);
    if (!f.ok()) return absl::PermissionDeniedError(absl::StrCat(path, ": /: cannot create file"));
    body(w, f.get());
    if (w.status.ok() && H5Fflush(f.get(), H5F_SCOPE_GLOBAL) < 0) w.Fail("/", "flush failed");
  }
  if (!w.status.ok()) {
    std::remove(tmp.c_str());
    return w.status;
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    return absl::InternalError(absl::StrCat(path, ": /: cannot rename temporary file"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status WriteH5ad(const AnnData& adata, const std::string& path) {
  absl::Status st = ValidateAnnData(adata, path);
  if (!st.ok()) return st;
  return WriteAtomically(path, [&](Writer& w, hid_t root) { w.WriteAnnData(root, adata); });
}

}  // namespace candies

namespace candies {

absl::Status WriteH5mu(const MuData& mdata, const std::string& path) {
  std::vector<std::string> order;
  for (const auto& [name, ad] : mdata.mod) {
    absl::Status st = ValidateAnnData(ad, absl::StrCat(path, ": /mod/", name));
    if (!st.ok()) return st;
    order.push_back(name);
  }
  for (const auto& [k, m] : mdata.obsm) {
    if (m.n_rows != mdata.obs.n_rows()) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": /obsm/", k, ": has ", m.n_rows,
                                                     " rows, obs has ", mdata.obs.n_rows()));
    }
  }
  return WriteAtomically(path, [&](Writer& w, hid_t root) {
    if (!w.Encoding(root, "MuData", "0.1.0")) return;
    H mod(H5Gcreate2(root, "mod", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose);
    if (!mod.ok() || !w.StrArrayAttr(mod.get(), "mod-order", order)) {
      w.Fail("/mod", "cannot create");
      return;
    }
    // Global var: the modalities' var_names concatenated, as mudata builds it.
    DataFrame var;
    for (const auto& [name, ad] : mdata.mod) {
      H g(H5Gcreate2(mod.get(), name.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose);
      w.file = absl::StrCat(path, ": /mod/", name);  // errors name the modality
      if (!g.ok() || !w.WriteAnnData(g.get(), ad)) {
        w.Fail("/", "cannot write modality");
        return;
      }
      var.index.insert(var.index.end(), ad.var.index.begin(), ad.var.index.end());
    }
    w.file = path;
    w.WriteDataFrame(root, "obs", mdata.obs) && w.WriteDataFrame(root, "var", var) &&
        w.WriteMatrixMap(root, "obsm", mdata.obsm) &&
        w.WriteUns(root, "uns", "/uns",
                   mdata.uns.kind == UnsValue::Kind::kMap ? mdata.uns : UnsValue::Map());
  });
}

}  // namespace candies
