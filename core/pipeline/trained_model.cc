#include "core/pipeline/trained_model.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>

#include <torch/torch.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "core/pipeline/trained_model_internal.h"
#include "core/runtime/runtime.h"
#include "core/util/status_macros.h"

namespace candies {
namespace {

namespace fs = std::filesystem;

constexpr char kFormat[] = "candies-model-1";
constexpr char kMetaFile[] = "model.txt";

template <typename F>
auto Guarded(const char* what, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat(what, ": ", e.what_without_backtrace()));
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat(what, ": ", e.what()));
  }
}

absl::Status WriteLines(const fs::path& path, const std::vector<std::string>& lines) {
  std::ofstream out(path);
  for (const auto& l : lines) {
    if (l.find('\n') != std::string::npos)
      return absl::InvalidArgumentError(absl::StrCat("feature name with a newline: cannot save ", path.string()));
    out << l << '\n';
  }
  out.close();
  if (!out) return absl::InternalError(absl::StrCat("cannot write ", path.string()));
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> ReadLines(const fs::path& path) {
  std::ifstream in(path);
  if (!in) return absl::DataLossError(absl::StrCat(path.string(), ": missing"));
  std::vector<std::string> lines;
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  return lines;
}

}  // namespace

torch::Tensor PcaLoadings(const torch::Tensor& expression, const torch::Tensor& features) {
  auto x = expression.to(torch::kCPU, torch::kFloat64);
  x = x - x.mean(0, true);
  auto f = features.to(torch::kCPU, torch::kFloat64);
  auto gram = torch::mm(f.t(), f);  // c x c, diagonal S^2 for principal axes
  auto xtf = torch::mm(x.t(), f);   // d x c
  return torch::linalg_solve(gram, xtf.t(), /*left=*/true).t().to(torch::kFloat32).contiguous();
}

absl::StatusOr<torch::Tensor> DecodeExpression(const GaeModel& low_gae, const torch::Tensor& low_loadings,
                                               const torch::Tensor& z, const torch::Device& device) {
  if (GaeHasZinb(low_gae)) return GaeDecodeMean(low_gae, z, device);
  CANDIES_ASSIGN_OR_RETURN(torch::Tensor f, GaeDecodeFeatures(low_gae, z, device));
  return Guarded("DecodeExpression", [&]() -> absl::StatusOr<torch::Tensor> {
    return torch::mm(f, low_loadings.t()).contiguous();
  });
}

TrainedModelInfo DescribeTrainedModel(const TrainedModel& m) {
  TrainedModelInfo info;
  info.low_quality = m.low_quality;
  info.low_kind = ModalityKindName(m.low_kind);
  info.high_kind = ModalityKindName(m.high_kind);
  info.n_high_features = static_cast<int64_t>(m.high_features.size());
  info.n_low_features = static_cast<int64_t>(m.low_features.size());
  int64_t bytes = 0;
  if (m.high_gae) bytes += GaeBytes(*m.high_gae);
  if (m.low_gae) bytes += GaeBytes(*m.low_gae);
  if (m.denoiser) bytes += DenoiserBytes(*m.denoiser);
  for (const auto* t : {&m.high_loadings, &m.low_loadings})
    if (t->defined()) bytes += t->numel() * t->element_size();
  info.bytes = bytes;
  info.version = m.version;
  info.device = m.device;
  return info;
}

absl::Status SaveTrainedModel(const TrainedModel& m, const std::string& dir) {
  if (!m.high_gae || !m.low_gae || !m.denoiser)
    return absl::FailedPreconditionError("SaveTrainedModel: the model is incomplete");
  return Guarded("SaveTrainedModel", [&]() -> absl::Status {
    const fs::path final_dir = fs::path(dir);
    std::error_code ec;
    if (fs::exists(final_dir) && !fs::is_empty(final_dir, ec) && !fs::exists(final_dir / kMetaFile))
      return absl::FailedPreconditionError(absl::StrCat(
          "save_model_dir: ", dir, " exists and is not a candies model; refusing to replace it"));
    // Written beside the target and renamed, so a reader sees a whole model or none.
    const fs::path tmp = final_dir.string() + absl::StrCat(".tmp.", getpid());
    fs::remove_all(tmp, ec);
    fs::create_directories(tmp, ec);
    if (ec) return absl::InternalError(absl::StrCat("cannot create ", tmp.string(), ": ", ec.message()));
    {
      std::ofstream meta(tmp / kMetaFile);
      meta << "format " << kFormat << "\nversion " << m.version << "\nlow_quality " << m.low_quality
           << "\nlow_kind " << ModalityKindName(m.low_kind) << "\nhigh_kind "
           << ModalityKindName(m.high_kind) << "\n"
           << absl::StrCat("target_sum ", m.target_sum, "\nscale_max ", m.scale_max, "\nspatial_k ",
                           m.spatial_k, "\n");
      meta.close();
      if (!meta) return absl::InternalError(absl::StrCat("cannot write ", (tmp / kMetaFile).string()));
    }
    CANDIES_RETURN_IF_ERROR(WriteLines(tmp / "high_features.txt", m.high_features));
    CANDIES_RETURN_IF_ERROR(WriteLines(tmp / "low_features.txt", m.low_features));
    {
      torch::serialize::OutputArchive ar;
      ar.write("high_loadings", m.high_loadings.to(torch::kCPU));
      ar.write("low_loadings", m.low_loadings.to(torch::kCPU));
      ar.save_to((tmp / "loadings.pt").string());
    }
    CANDIES_RETURN_IF_ERROR(SaveGae(*m.high_gae, (tmp / "gae_high.pt").string()));
    CANDIES_RETURN_IF_ERROR(SaveGae(*m.low_gae, (tmp / "gae_low.pt").string()));
    CANDIES_RETURN_IF_ERROR(SaveDenoiser(*m.denoiser, (tmp / "denoiser").string()));
    const fs::path old = final_dir.string() + absl::StrCat(".old.", getpid());
    if (fs::exists(final_dir)) fs::rename(final_dir, old);
    fs::rename(tmp, final_dir);
    fs::remove_all(old, ec);
    return absl::OkStatus();
  });
}

absl::StatusOr<std::shared_ptr<const TrainedModel>> LoadTrainedModel(const std::string& dir,
                                                                     const std::string& device_spec) {
  CANDIES_ASSIGN_OR_RETURN(torch::Device device, ResolveDevice(device_spec));
  return Guarded("LoadTrainedModel", [&]() -> absl::StatusOr<std::shared_ptr<const TrainedModel>> {
    const fs::path d(dir);
    std::ifstream meta(d / kMetaFile);
    if (!meta) return absl::NotFoundError(absl::StrCat("load_model_dir: no candies model in ", dir));
    std::map<std::string, std::string> kv;
    for (std::string line; std::getline(meta, line);) {
      const auto sp = line.find(' ');
      if (sp != std::string::npos) kv[line.substr(0, sp)] = line.substr(sp + 1);
    }
    auto field = [&](const char* key) -> absl::StatusOr<std::string> {
      auto it = kv.find(key);
      if (it == kv.end())
        return absl::InvalidArgumentError(absl::StrCat(dir, "/", kMetaFile, ": field ", key, " is missing"));
      return it->second;
    };
    CANDIES_ASSIGN_OR_RETURN(std::string format, field("format"));
    if (format != kFormat)
      return absl::InvalidArgumentError(absl::StrCat(dir, ": model format \"", format, "\" is not ", kFormat));
    auto m = std::make_shared<TrainedModel>();
    CANDIES_ASSIGN_OR_RETURN(m->version, field("version"));
    CANDIES_ASSIGN_OR_RETURN(m->low_quality, field("low_quality"));
    if (m->low_quality != "mod1" && m->low_quality != "mod2")
      return absl::InvalidArgumentError(absl::StrCat(dir, ": low_quality must be mod1 or mod2"));
    CANDIES_ASSIGN_OR_RETURN(std::string lk, field("low_kind"));
    CANDIES_ASSIGN_OR_RETURN(m->low_kind, ParseModalityKind(lk));
    CANDIES_ASSIGN_OR_RETURN(std::string hk, field("high_kind"));
    CANDIES_ASSIGN_OR_RETURN(m->high_kind, ParseModalityKind(hk));
    CANDIES_ASSIGN_OR_RETURN(std::string ts, field("target_sum"));
    CANDIES_ASSIGN_OR_RETURN(std::string sm, field("scale_max"));
    CANDIES_ASSIGN_OR_RETURN(std::string sk, field("spatial_k"));
    if (!absl::SimpleAtod(ts, &m->target_sum) || !absl::SimpleAtod(sm, &m->scale_max) ||
        !absl::SimpleAtoi(sk, &m->spatial_k) || m->spatial_k < 1)
      return absl::InvalidArgumentError(absl::StrCat(dir, ": target_sum / scale_max / spatial_k are not valid numbers"));
    CANDIES_ASSIGN_OR_RETURN(m->high_features, ReadLines(d / "high_features.txt"));
    CANDIES_ASSIGN_OR_RETURN(m->low_features, ReadLines(d / "low_features.txt"));
    torch::serialize::InputArchive ar;
    ar.load_from((d / "loadings.pt").string());
    ar.read("high_loadings", m->high_loadings);
    ar.read("low_loadings", m->low_loadings);
    CANDIES_ASSIGN_OR_RETURN(m->high_gae, LoadGae((d / "gae_high.pt").string(), device));
    CANDIES_ASSIGN_OR_RETURN(m->low_gae, LoadGae((d / "gae_low.pt").string(), device));
    CANDIES_ASSIGN_OR_RETURN(m->denoiser, LoadDenoiser((d / "denoiser").string(), device));
    // The pieces must fit together, or applying would fail later with a shape error.
    const auto nh = static_cast<int64_t>(m->high_features.size());
    if (m->high_loadings.dim() != 2 || m->high_loadings.size(0) != nh ||
        m->high_loadings.size(1) != GaeInputDim(*m->high_gae))
      return absl::InvalidArgumentError(absl::StrCat(dir, ": high_loadings do not match high_features / gae_high"));
    const auto nl = static_cast<int64_t>(m->low_features.size());
    if (!GaeHasZinb(*m->low_gae) &&
        (m->low_loadings.dim() != 2 || m->low_loadings.size(0) != nl ||
         m->low_loadings.size(1) != GaeInputDim(*m->low_gae)))
      return absl::InvalidArgumentError(absl::StrCat(dir, ": low_loadings do not match low_features / gae_low"));
    m->device = DeviceName(device);
    return std::shared_ptr<const TrainedModel>(std::move(m));
  });
}

}  // namespace candies
