// The proto enums of a job's settings (candies.proto: JobKind, Preset,
// LowQuality, ClusterMethod, ModalityKind) <-> core/util/job_options.h, the one
// vocabulary. Used by the CLI (to build SubmitJobRequest), the service (to read
// and validate it) and the worker protocol. No LibTorch.
#pragma once

#include "absl/status/statusor.h"
#include "candies/v1/candies.pb.h"
#include "core/util/job_options.h"

namespace candies::server {

v1::JobKind ToProto(JobKind kind);
v1::Preset ToProto(Preset preset);
v1::LowQuality ToProto(LowQuality low_quality);
v1::ClusterMethod ToProto(std::optional<ClusterMethod> method);  // none: UNSPECIFIED
v1::ModalityKind ToProto(ModalityKind kind);

// UNSPECIFIED is the default (full, fast, auto; the preset's method: none;
// `fallback` for a modality); a number outside the enum is an error naming `field`.
absl::StatusOr<JobKind> FromProto(v1::JobKind kind, const char* field = "kind");
absl::StatusOr<Preset> FromProto(v1::Preset preset, const char* field = "preset");
absl::StatusOr<LowQuality> FromProto(v1::LowQuality low_quality, const char* field = "low_quality");
absl::StatusOr<std::optional<ClusterMethod>> FromProto(v1::ClusterMethod method,
                                                       const char* field = "cluster_method");
absl::StatusOr<ModalityKind> FromProto(v1::ModalityKind kind, ModalityKind fallback,
                                       const char* field = "kind");

// The request's settings, validated (ValidateJobSettings). A request from
// before the enums carries text in the deprecated *_text fields: it is parsed
// with the CLI's parsers when the enum field is UNSPECIFIED. Modality kinds are
// the datasets' (not in the request): left at their defaults.
absl::StatusOr<JobSettings> JobSettingsFromRequest(const v1::SubmitJobRequest& r);

// The request's kind as text ("full", ...), for logs, metrics labels and
// messages; an unreadable one reads "full" (the default).
const char* KindName(const v1::SubmitJobRequest& r);

// Writes the settings' enums into `r` (and clears the deprecated text fields).
void SetRequestSettings(const JobSettings& s, v1::SubmitJobRequest* r);

}  // namespace candies::server
