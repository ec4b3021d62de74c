#include "core/io/describe.h"

#include <hdf5.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace candies {
namespace {

const char* FormatName(Matrix::Format f) {
  switch (f) {
    case Matrix::Format::kDense: return "dense";
    case Matrix::Format::kCsr: return "csr";
    case Matrix::Format::kCsc: return "csc";
  }
  return "?";
}

template <typename Map>
std::string Keys(const Map& m) {
  std::vector<std::string> keys;
  for (const auto& kv : m) keys.push_back(kv.first);
  return absl::StrCat("[", absl::StrJoin(keys, ", "), "]");
}

std::string ColumnKeys(const DataFrame& df) {
  std::vector<std::string> keys;
  for (const Column& c : df.columns) keys.push_back(c.name);
  return absl::StrCat("[", absl::StrJoin(keys, ", "), "]");
}

// Top-level group names that tell the file kinds apart.
bool HasMember(const std::string& path, const char* name) {
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  if (H5Fis_hdf5(path.c_str()) <= 0) return false;
  hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  if (f < 0) return false;
  bool has = H5Lexists(f, name, H5P_DEFAULT) > 0;
  H5Fclose(f);
  return has;
}

}  // namespace

std::string DescribeAnnData(const std::string& name, const AnnData& a) {
  std::string out = absl::StrFormat("%s: %d x %d", name, a.n_obs(), a.n_vars());
  if (a.has_x) {
    // In double: each dimension may be up to ReadLimits::max_elements.
    const double total = static_cast<double>(a.X.n_rows) * static_cast<double>(a.X.n_cols);
    int64_t nonzero = 0;
    for (float v : a.X.values) nonzero += v != 0.0f;
    double zeros = total > 0 ? 1.0 - static_cast<double>(nonzero) / total : 0.0;
    absl::StrAppendFormat(&out, ", X %s %s, sparsity %.4f", DTypeName(a.X.dtype),
                          FormatName(a.X.format), zeros);
  } else {
    absl::StrAppend(&out, ", X None");
  }
  absl::StrAppend(&out, "\n  obs: ", ColumnKeys(a.obs), "\n  var: ", ColumnKeys(a.var),
                  "\n  obsm: ", Keys(a.obsm), "\n  varm: ", Keys(a.varm),
                  "\n  layers: ", Keys(a.layers), "\n  obsp: ", Keys(a.obsp),
                  "\n  uns: ", Keys(a.uns.children), "\n");
  return out;
}

absl::StatusOr<std::string> DescribeFile(const std::string& path, const ReadOptions& options) {
  if (HasMember(path, "mod") || HasMember(path, "matrix")) {
    absl::StatusOr<MuData> md =
        HasMember(path, "mod") ? ReadH5mu(path, options) : Read10xH5(path, "", options);
    if (!md.ok()) return md.status();
    std::string out = absl::StrFormat("%s: MuData, %d obs, modalities %d\n", path,
                                      md->obs.n_rows(), md->mod.size());
    for (const auto& [name, ad] : md->mod) absl::StrAppend(&out, DescribeAnnData(name, ad));
    absl::StrAppend(&out, "obs: ", ColumnKeys(md->obs), "\nobsm: ", Keys(md->obsm),
                    "\nuns: ", Keys(md->uns.children), "\n");
    return out;
  }
  absl::StatusOr<AnnData> ad = ReadH5ad(path, options);
  if (!ad.ok()) return ad.status();
  return absl::StrCat(path, ": AnnData\n", DescribeAnnData("X", *ad));
}

}  // namespace candies
