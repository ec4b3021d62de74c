// `candies simulate`: writes the paper's simulated RNA + protein benchmark
// (core/sim/simulator.h) as DIR/rna.h5ad and DIR/protein.h5ad. Its defaults are
// the built-in demo data.
#include <cstdio>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "client/cli/args.h"
#include "client/cli/command.h"
#include "core/io/h5ad.h"
#include "core/sim/families.h"
#include "core/sim/simulator.h"

namespace candies::cli {
namespace {

std::vector<FlagSpec> Specs() {
  const SimulatorOptions d;
  auto num = [](double v) { return absl::StrCat(v); };
  return {
      {"out", true, "output directory (rna.h5ad, protein.h5ad)", ""},
      {"family", true,
       "a tissue family of the accuracy benchmark (docs/SCIENCE.md); only --seed and --out "
       "apply then; 'list' prints them",
       ""},
      {"grid", true, "grid side (spots per tile = grid^2)", num(d.grid)},
      {"scale", true, "tiles per side (N = (grid*scale)^2)", num(d.scale)},
      {"seed", true, "random seed", num(d.seed)},
      {"n-genes", true, "RNA genes", num(d.n_genes)},
      {"n-proteins", true, "proteins", num(d.n_proteins)},
      {"rna-noise-sd", true, "sd of the additive Gaussian noise on RNA", num(d.rna_noise_sd)},
      {"rna-noise-mean", true, "mean of the additive noise on RNA", num(d.rna_noise_mean)},
      {"rna-dropout", true, "ZINB dropout probability pi", num(d.rna_dropout)},
      {"rna-dispersion", true, "NB size of RNA counts", num(d.rna_dispersion)},
      {"rna-background-mean", true, "RNA background mean", num(d.rna_background_mean)},
      {"rna-marker-fold", true, "marker gene mean / background mean", num(d.rna_marker_fold)},
      {"rna-markers", true, "marker genes per domain", num(d.rna_markers_per_domain)},
      {"protein-noise-sd", true, "sd of the additive noise on protein", num(d.protein_noise_sd)},
      {"protein-noise-mean", true, "mean of the additive noise on protein", num(d.protein_noise_mean)},
      {"protein-dispersion", true, "NB size of protein counts", num(d.protein_dispersion)},
      {"protein-background-mean", true, "protein background mean", num(d.protein_background_mean)},
      {"protein-marker-fold", true, "marker protein mean / background", num(d.protein_marker_fold)},
      {"protein-markers", true, "marker proteins per domain", num(d.protein_markers_per_domain)},
      {"no-clip", false, "keep negative values after the noise (default clips at 0)", ""},
      {"help", false, "show this help", ""},
  };
}

absl::Status Fill(const Args& a, SimulatorOptions& o) {
  auto geti = [&](const char* f, int64_t& v) -> absl::Status {
    auto r = a.GetInt(f);
    if (!r.ok()) return r.status();
    v = *r;
    return absl::OkStatus();
  };
  auto getd = [&](const char* f, double& v) -> absl::Status {
    auto r = a.GetDouble(f);
    if (!r.ok()) return r.status();
    v = *r;
    return absl::OkStatus();
  };
  int64_t seed = 0;
  for (auto s : {geti("grid", o.grid), geti("scale", o.scale), geti("seed", seed),
                 geti("n-genes", o.n_genes), geti("n-proteins", o.n_proteins),
                 getd("rna-noise-sd", o.rna_noise_sd), getd("rna-noise-mean", o.rna_noise_mean),
                 getd("rna-dropout", o.rna_dropout), getd("rna-dispersion", o.rna_dispersion),
                 getd("rna-background-mean", o.rna_background_mean),
                 getd("rna-marker-fold", o.rna_marker_fold),
                 geti("rna-markers", o.rna_markers_per_domain),
                 getd("protein-noise-sd", o.protein_noise_sd),
                 getd("protein-noise-mean", o.protein_noise_mean),
                 getd("protein-dispersion", o.protein_dispersion),
                 getd("protein-background-mean", o.protein_background_mean),
                 getd("protein-marker-fold", o.protein_marker_fold),
                 geti("protein-markers", o.protein_markers_per_domain)}) {
    if (!s.ok()) return s;
  }
  if (seed < 0) return absl::InvalidArgumentError("--seed: must be >= 0");
  o.seed = static_cast<uint64_t>(seed);
  o.clip_negative = !a.Has("no-clip");
  return absl::OkStatus();
}

absl::Status WriteModalities(const std::string& dir,
                             const std::vector<std::pair<std::string, const AnnData*>>& files) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create ", dir, ": ", ec.message()));
  for (const auto& [name, ad] : files) {
    const std::string path = (std::filesystem::path(dir) / name).string();
    if (auto s = WriteH5ad(*ad, path); !s.ok()) return s;
    std::printf("wrote %s (%lld spots x %lld vars)\n", path.c_str(),
                static_cast<long long>(ad->n_obs()), static_cast<long long>(ad->X.n_cols));
  }
  return absl::OkStatus();
}

// --family NAME: one section of a tissue family (core/sim/families.h), written
// as DIR/<kind>.h5ad for each modality (mod1_/mod2_ prefixes if both share a kind).
int RunFamily(const Args& args) {
  const std::string name = args.Get("family");
  if (name == "list") {
    for (const auto& f : Families())
      std::printf("%-20s %-9s %-8s %-7s %2lld domains ~%5lld spots  %s + %s  %s\n", f.name.c_str(),
                  f.held_out ? "held-out" : "tuning", FamilyLayoutName(f.layout),
                  FamilyStructureName(f.structure), static_cast<long long>(f.n_domains),
                  static_cast<long long>(f.n_spots), f.mod1.kind.c_str(), f.mod2.kind.c_str(),
                  f.imitates.c_str());
    return 0;
  }
  auto spec = FindFamily(name);
  auto seed = args.GetInt("seed");
  if (!spec.ok() || !seed.ok() || *seed < 0) {
    std::fprintf(stderr, "candies simulate: %s\n",
                 !spec.ok() ? std::string(spec.status().message()).c_str()
                 : !seed.ok() ? std::string(seed.status().message()).c_str()
                              : "--seed: must be >= 0");
    return 1;
  }
  auto data = SimulateFamily(*spec, static_cast<uint64_t>(*seed));
  if (!data.ok()) {
    std::fprintf(stderr, "candies simulate: %s\n", std::string(data.status().message()).c_str());
    return 1;
  }
  const bool same = spec->mod1.kind == spec->mod2.kind;
  const std::string f1 = absl::StrCat(same ? "mod1_" : "", spec->mod1.kind, ".h5ad");
  const std::string f2 = absl::StrCat(same ? "mod2_" : "", spec->mod2.kind, ".h5ad");
  if (auto s = WriteModalities(args.Get("out"), {{f1, &data->mod1}, {f2, &data->mod2}}); !s.ok()) {
    std::fprintf(stderr, "candies simulate: %s\n", std::string(s.message()).c_str());
    return 1;
  }
  std::printf("family %s (%s), seed %lld: truth obs[\"domain\"] (%lld domains); coordinates "
              "obsm[\"spatial\"]\n",
              spec->name.c_str(), spec->held_out ? "held-out" : "tuning",
              static_cast<long long>(*seed), static_cast<long long>(spec->n_domains));
  return 0;
}

int RunSimulate(const std::vector<std::string>& argv) {
  const auto specs = Specs();
  auto args = Args::Parse(argv, specs);
  if (!args.ok()) {
    std::fprintf(stderr, "candies simulate: %s\n", std::string(args.status().message()).c_str());
    return 1;
  }
  if (args->Has("help")) {
    std::printf("%s", Args::Usage("simulate", "--out DIR [flags]", specs).c_str());
    return 0;
  }
  if (args->Get("family") == "list") return RunFamily(*args);
  if (args->Get("out").empty()) {
    std::fprintf(stderr, "candies simulate: --out DIR is required\n");
    return 1;
  }
  if (!args->Get("family").empty()) return RunFamily(*args);
  SimulatorOptions o;
  if (auto s = Fill(*args, o); !s.ok()) {
    std::fprintf(stderr, "candies simulate: %s\n", std::string(s.message()).c_str());
    return 1;
  }
  auto sim = Simulate(o);
  if (!sim.ok()) {
    std::fprintf(stderr, "candies simulate: %s\n", std::string(sim.status().message()).c_str());
    return 1;
  }
  if (auto s = WriteModalities(args->Get("out"),
                               {{"rna.h5ad", &sim->rna}, {"protein.h5ad", &sim->protein}});
      !s.ok()) {
    std::fprintf(stderr, "candies simulate: %s\n", std::string(s.message()).c_str());
    return 1;
  }
  std::printf("truth: obs[\"domain\"] (5 domains); coordinates: obsm[\"spatial\"]\n");
  return 0;
}

}  // namespace

CANDIES_CLI_COMMAND(simulate, "simulate", "write the simulated RNA + protein benchmark (demo data)",
                    RunSimulate);

}  // namespace candies::cli
