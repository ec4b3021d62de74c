// `candies export RESULT.h5ad --denoised D.h5ad --out DIR`: the result in files
// that downstream tools (gsMap-style: an .h5ad with spatial coordinates, an
// annotation column and expression; or plain CSV) read. docs/FORMATS.md,
// "Exports", describes each file.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "client/cli/args.h"
#include "client/cli/command.h"
#include "core/analysis/rank_genes_groups.h"
#include "core/io/h5ad.h"

namespace candies::cli {
namespace {

std::vector<FlagSpec> Specs() {
  return {
      {"out", true, "output folder (required)", ""},
      {"denoised", true, "the denoised modality (.h5ad from --out-denoised / FetchResult denoised_h5ad)", ""},
      {"help", false, "show this help", ""},
  };
}

int Fail(const std::string& msg) {
  std::fprintf(stderr, "candies export: %s\n", msg.c_str());
  return 1;
}

std::string Csv(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

int RunExport(const std::vector<std::string>& argv) {
  const auto specs = Specs();
  auto args = Args::Parse(argv, specs);
  if (!args.ok()) return Fail(std::string(args.status().message()));
  if (args->Has("help")) {
    std::printf("%s", Args::Usage("export", "RESULT.h5ad --out DIR [--denoised D.h5ad]", specs).c_str());
    return 0;
  }
  if (args->positional().size() != 1) return Fail("give exactly one RESULT.h5ad (see --help)");
  const std::string dir = args->Get("out");
  if (dir.empty()) return Fail("--out is required (see --help)");
  auto result = ReadH5ad(args->positional()[0]);
  if (!result.ok()) return Fail(std::string(result.status().message()));
  const Column* domains = result->obs.Find("candies_cluster");
  auto sp = result->obsm.find("spatial");
  if (domains == nullptr || sp == result->obsm.end())
    return Fail("RESULT: obs[\"candies_cluster\"] or obsm[\"spatial\"] is missing (not a candies result?)");
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Fail(absl::StrCat(dir, ": ", ec.message()));

  // domains.csv: spot, x, y, domain.
  {
    const Matrix xy = ToDense(sp->second);
    std::ofstream f(dir + "/domains.csv");
    f << "spot,x,y,domain\n";
    for (int64_t i = 0; i < result->n_obs(); ++i)
      f << Csv(result->obs.index[i]) << ',' << xy.values[i * xy.n_cols] << ','
        << xy.values[i * xy.n_cols + 1] << ',' << Csv(domains->ValueAsString(i)) << '\n';
    if (!f.good()) return Fail(dir + "/domains.csv: cannot write");
    std::printf("wrote %s/domains.csv\n", dir.c_str());
  }
  // markers.csv: sc.get.rank_genes_groups_df's columns, every domain.
  if (const UnsValue* u = result->uns.Find("rank_genes_groups")) {
    auto r = RankGenesGroupsFromUns(*u);
    if (!r.ok()) return Fail(std::string(r.status().message()));
    std::ofstream f(dir + "/markers.csv");
    f << "group,names,scores,logfoldchanges,pvals,pvals_adj\n";
    for (const GroupMarkers& g : r->groups)
      for (size_t k = 0; k < g.names.size(); ++k)
        f << Csv(g.group) << ',' << Csv(g.names[k]) << ',' << g.scores[k] << ','
          << g.logfoldchanges[k] << ',' << g.pvals[k] << ',' << g.pvals_adj[k] << '\n';
    if (!f.good()) return Fail(dir + "/markers.csv: cannot write");
    std::printf("wrote %s/markers.csv\n", dir.c_str());
  }
  // denoised_domains.h5ad: the denoised modality with the domains and coordinates.
  if (const std::string d = args->Get("denoised"); !d.empty()) {
    auto den = ReadH5ad(d);
    if (!den.ok()) return Fail(std::string(den.status().message()));
    std::map<std::string, int64_t> row_of;
    for (int64_t i = 0; i < result->n_obs(); ++i) row_of[result->obs.index[i]] = i;
    std::vector<std::string> labels;
    std::vector<float> xy;
    const Matrix rxy = ToDense(sp->second);
    for (const std::string& s : den->obs.index) {
      auto it = row_of.find(s);
      if (it == row_of.end()) return Fail(absl::StrCat("--denoised: spot '", s, "' is not in the result"));
      labels.push_back(domains->ValueAsString(it->second));
      xy.push_back(rxy.values[it->second * rxy.n_cols]);
      xy.push_back(rxy.values[it->second * rxy.n_cols + 1]);
    }
    den->obs.Set(Column::Categorical("candies_cluster", labels));
    den->obsm["spatial"] = Matrix::Dense(den->n_obs(), 2, xy);
    const std::string path = dir + "/denoised_domains.h5ad";
    if (absl::Status st = WriteH5ad(*den, path); !st.ok()) return Fail(std::string(st.message()));
    std::printf("wrote %s\n", path.c_str());
  }
  return 0;
}

}  // namespace

CANDIES_CLI_COMMAND(export, "export", "write a result as CSV / .h5ad for downstream tools (domains, markers, denoised)",
                    RunExport);

}  // namespace candies::cli
