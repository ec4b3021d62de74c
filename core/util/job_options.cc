#include "core/util/job_options.h"

#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "core/util/status_macros.h"

namespace candies {
namespace {

// How a word of an enum's table is used. Every word parses (any case); the
// refusal lists the names, each followed by its listed aliases in parentheses.
enum class WordRole {
  kName,           // the value's name: what its Name function returns
  kAlias,          // accepted too, listed after the name: "mclust (gmm)"
  kUnlistedAlias,  // accepted too, not listed
};

// One word of an enum's vocabulary. A table holds every word of one enum,
// the value's name first, so parsing, naming and the refusal's list of
// choices all read the same words.
template <typename E>
struct Word {
  const char* text;  // lower case
  E value;
  WordRole role = WordRole::kName;
};

template <typename E, size_t N>
std::string Choices(const Word<E> (&words)[N]) {
  std::string out;
  for (const Word<E>& name : words) {
    if (name.role != WordRole::kName) continue;
    absl::StrAppend(&out, out.empty() ? "" : ", ", name.text);
    std::string aliases;
    for (const Word<E>& alias : words) {
      if (alias.role == WordRole::kAlias && alias.value == name.value) {
        absl::StrAppend(&aliases, aliases.empty() ? "" : ", ", alias.text);
      }
    }
    if (!aliases.empty()) absl::StrAppend(&out, " (", aliases, ")");
  }
  return out;
}

// The value whose word is `text` in any case, or INVALID_ARGUMENT naming the
// field, the text and the choices.
template <typename E, size_t N>
absl::StatusOr<E> Parse(const Word<E> (&words)[N], absl::string_view field,
                        absl::string_view text) {
  const std::string lower = absl::AsciiStrToLower(text);
  for (const Word<E>& w : words) {
    if (lower == w.text) return w.value;
  }
  return absl::InvalidArgumentError(
      absl::StrCat(field, ": '", text, "' is not one of ", Choices(words), " (any case)"));
}

template <typename E, size_t N>
const char* Name(const Word<E> (&words)[N], E value) {
  for (const Word<E>& w : words) {
    if (w.role == WordRole::kName && w.value == value) return w.text;
  }
  return "unknown";  // not reached: every value has a name (tests/util/job_options_test.cc)
}

// Parses `text` into *out; empty text leaves *out (the default) as it is.
template <typename E, typename Out>
absl::Status ParseUnlessEmpty(const std::string& text,
                              absl::StatusOr<E> (*parse)(absl::string_view), Out* out) {
  if (text.empty()) return absl::OkStatus();
  absl::StatusOr<E> v = parse(text);
  if (!v.ok()) return v.status();
  *out = *v;
  return absl::OkStatus();
}

constexpr Word<Preset> kPresets[] = {{"fast", Preset::kFast}, {"paper", Preset::kPaper}};

constexpr Word<JobKind> kJobKinds[] = {{"full", JobKind::kFull},
                                       {"integrate", JobKind::kIntegrate},
                                       {"denoise", JobKind::kDenoise},
                                       {"cluster", JobKind::kCluster}};

constexpr Word<LowQuality> kLowQualities[] = {
    {"auto", LowQuality::kAuto}, {"mod1", LowQuality::kMod1}, {"mod2", LowQuality::kMod2}};

constexpr Word<ClusterMethod> kClusterMethods[] = {
    {"mclust", ClusterMethod::kMclust},
    {"gmm", ClusterMethod::kMclust, WordRole::kAlias},
    {"leiden", ClusterMethod::kLeiden},
    {"kmeans", ClusterMethod::kKmeans},
    {"k-means", ClusterMethod::kKmeans, WordRole::kAlias}};

constexpr Word<ModalityKind> kModalityKinds[] = {
    {"rna", ModalityKind::kRna},
    {"gex", ModalityKind::kRna, WordRole::kUnlistedAlias},
    {"gene expression", ModalityKind::kRna, WordRole::kUnlistedAlias},
    {"protein", ModalityKind::kProtein},
    {"prot", ModalityKind::kProtein, WordRole::kUnlistedAlias},
    {"adt", ModalityKind::kProtein, WordRole::kUnlistedAlias},
    {"atac", ModalityKind::kAtac},
    {"peaks", ModalityKind::kAtac, WordRole::kUnlistedAlias}};

}  // namespace

absl::StatusOr<Preset> ParsePreset(absl::string_view text) {
  return Parse(kPresets, "preset", text);
}
const char* PresetName(Preset preset) { return Name(kPresets, preset); }

absl::StatusOr<JobKind> ParseJobKind(absl::string_view text) {
  return Parse(kJobKinds, "kind", text);
}
const char* JobKindName(JobKind kind) { return Name(kJobKinds, kind); }

absl::StatusOr<LowQuality> ParseLowQuality(absl::string_view text) {
  return Parse(kLowQualities, "low_quality", text);
}
const char* LowQualityName(LowQuality low_quality) { return Name(kLowQualities, low_quality); }

absl::StatusOr<ClusterMethod> ParseClusterMethod(absl::string_view text) {
  return Parse(kClusterMethods, "cluster_method", text);
}
const char* ClusterMethodName(ClusterMethod method) { return Name(kClusterMethods, method); }

absl::StatusOr<ModalityKind> ParseModalityKind(absl::string_view text) {
  return Parse(kModalityKinds, "modality kind", text);
}
const char* ModalityKindName(ModalityKind kind) { return Name(kModalityKinds, kind); }

absl::StatusOr<JobSettings> ParseJobSettings(const JobSettingsText& t) {
  JobSettings s;
  CANDIES_RETURN_IF_ERROR(ParseUnlessEmpty(t.kind, ParseJobKind, &s.kind));
  CANDIES_RETURN_IF_ERROR(ParseUnlessEmpty(t.preset, ParsePreset, &s.preset));
  CANDIES_RETURN_IF_ERROR(ParseUnlessEmpty(t.low_quality, ParseLowQuality, &s.low_quality));
  CANDIES_RETURN_IF_ERROR(
      ParseUnlessEmpty(t.cluster_method, ParseClusterMethod, &s.cluster_method));
  for (auto [text, out, field] : {std::make_tuple(&t.mod1_kind, &s.mod1_kind, "mod1_kind"),
                                  std::make_tuple(&t.mod2_kind, &s.mod2_kind, "mod2_kind")}) {
    if (text->empty()) continue;
    absl::StatusOr<ModalityKind> v = ParseModalityKind(*text);
    if (!v.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(field, ": ", v.status().message()));
    }
    *out = *v;
  }
  s.n_clusters = t.n_clusters;
  s.apply_model = t.apply_model;
  s.save_model = t.save_model;
  absl::Status valid = ValidateJobSettings(s);
  if (!valid.ok()) return valid;
  return s;
}

absl::Status ValidateJobSettings(const JobSettings& s) {
  if (s.n_clusters <= 0) {
    return absl::InvalidArgumentError(absl::StrCat("n_clusters: must be > 0, got ", s.n_clusters));
  }
  const bool trains = s.kind == JobKind::kFull || s.kind == JobKind::kDenoise;
  if (s.apply_model && !trains) {
    return absl::InvalidArgumentError(
        absl::StrCat("model_id: applies to kind full or denoise, not ", JobKindName(s.kind)));
  }
  if (s.save_model && !trains) {
    return absl::InvalidArgumentError(
        absl::StrCat("save_model: applies to kind full or denoise, not ", JobKindName(s.kind)));
  }
  if (s.apply_model && s.save_model) {
    return absl::InvalidArgumentError(
        "save_model: cannot be combined with model_id (an applied model is not retrained)");
  }
  return absl::OkStatus();
}

}  // namespace candies
