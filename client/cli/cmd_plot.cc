// `candies plot RESULT.h5ad --out DIR`: the job's pictures as PNG files
// (core/plot/plots.h), and with --report the one-page HTML report.
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "client/cli/args.h"
#include "client/cli/command.h"
#include "core/io/h5ad.h"
#include "core/plot/plots.h"
#include "core/report/report.h"

namespace candies::cli {
namespace {

std::vector<FlagSpec> Specs() {
  return {
      {"out", true, "folder for the PNG files (required)", ""},
      {"denoised", true, "the denoised modality (.h5ad from --out-denoised): raw vs denoised maps", ""},
      {"report", true, "also write the HTML report to this file", ""},
      {"help", false, "show this help", ""},
  };
}

int Fail(const std::string& msg) {
  std::fprintf(stderr, "candies plot: %s\n", msg.c_str());
  return 1;
}

int RunPlot(const std::vector<std::string>& argv) {
  const auto specs = Specs();
  auto args = Args::Parse(argv, specs);
  if (!args.ok()) return Fail(std::string(args.status().message()));
  if (args->Has("help")) {
    std::printf("%s", Args::Usage("plot", "RESULT.h5ad --out DIR [--denoised D.h5ad] [--report R.html]",
                                  specs).c_str());
    return 0;
  }
  const std::vector<std::string>& files = args->positional();
  if (files.size() != 1) return Fail("give exactly one RESULT.h5ad (see --help)");
  if (args->Get("out").empty()) return Fail("--out is required (see --help)");
  auto result = ReadH5ad(files[0]);
  if (!result.ok()) return Fail(std::string(result.status().message()));
  absl::StatusOr<AnnData> denoised;
  if (!args->Get("denoised").empty()) {
    denoised = ReadH5ad(args->Get("denoised"));
    if (!denoised.ok()) return Fail(std::string(denoised.status().message()));
  }
  const AnnData* d = denoised.ok() ? &*denoised : nullptr;
  if (const std::string report = args->Get("report"); !report.empty()) {
    absl::Status st = WriteJobReport(*result, d, args->Get("out"), report, files[0]);
    if (!st.ok()) return Fail(std::string(st.message()));
    std::printf("wrote %s\n", report.c_str());
  }
  auto plots = plot::WriteJobPlots(*result, d, args->Get("out"));
  if (!plots.ok()) return Fail(std::string(plots.status().message()));
  for (const auto& [name, path] : plots->files) std::printf("wrote %s\n", path.c_str());
  for (const std::string& why : plots->skipped) std::printf("skipped %s\n", why.c_str());
  return 0;
}

}  // namespace

CANDIES_CLI_COMMAND(plot, "plot", "draw a result's domain maps, denoising, losses (PNG; --report: HTML)",
                    RunPlot);

}  // namespace candies::cli
