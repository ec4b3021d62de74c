// `candies run`: the whole CANDIES job on two modalities (two .h5ad files or one
// .h5mu), writing OUT.h5ad (core/pipeline/pipeline.h, ResultToAnnData).
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "client/cli/args.h"
#include "client/cli/command.h"
#include "client/cli/remote.h"
#include "core/cluster/cluster.h"
#include "core/io/h5ad.h"
#include "core/pipeline/pipeline.h"
#include "core/report/report.h"

namespace candies::cli {
namespace {

std::vector<FlagSpec> Specs() {
  return {
      {"mod1", true, "modality 1: an .h5ad path, or a modality name with --mudata", ""},
      {"mod2", true, "modality 2: an .h5ad path, or a modality name with --mudata", ""},
      {"mudata", true, "one .h5mu holding both modalities", ""},
      {"mod1-kind", true, "rna | protein | atac", "rna"},
      {"mod2-kind", true, "rna | protein | atac", "protein"},
      {"n-clusters", true, "number of spatial domains (required)", ""},
      {"out", true, "output .h5ad (required)", ""},
      {"low-quality", true, "auto | mod1 | mod2", "auto"},
      {"labels-key", true, "obs column with true domains (prints ARI, NMI, ...)", ""},
      {"preset", true, "fast | paper", "fast"},
      {"device", true, "auto | cpu | cuda | cuda:N", "auto"},
      {"seed", true, "random seed", "0"},
      {"threads", true, "CPU threads (0: the cores available to the process)", "0"},
      {"cluster-method", true, "mclust | leiden | kmeans (default: the preset's: kmeans for fast, mclust for paper)", ""},
      {"no-denoise", false, "skip the diffusion denoiser (integrate the GAE embeddings)", ""},
      {"out-denoised", true, "also write the denoised low-quality modality (.h5ad; input values in layers[\"raw\"])", ""},
      {"save-model", true, "save the trained model (encoders, denoiser, decoder) to this folder (with --server: any value keeps it on the server)", ""},
      {"load-model", true, "apply a saved model to this section instead of training the denoiser (with --server: a model id)", ""},
      {"report", true, "also write the job's HTML report (pictures inline) to this file", ""},
      {"server", true, "run on candiesd at this address instead of here (same output)", ""},
      {"owner", true, "with --server: owner name (only a daemon in insecure-dev-mode honours it)", ""},
      {"token", true, "with --server: bearer token (default: $CANDIES_TOKEN)", ""},
      {"tls-ca", true, "with --server: PEM CA of the server certificate (turns TLS on)", ""},
      {"tls-cert", true, "with --server: PEM client certificate for mTLS", ""},
      {"tls-key", true, "with --server: PEM key of --tls-cert", ""},
      {"help", false, "show this help", ""},
  };
}

int Fail(const std::string& msg) {
  std::fprintf(stderr, "candies run: %s\n", msg.c_str());
  return 1;
}
int Fail(const absl::Status& s) { return Fail(std::string(s.message())); }

// Renders progress events: a bar when stderr is a terminal, else one line per stage.
class ProgressPrinter {
 public:
  ProgressPrinter() : tty_(isatty(fileno(stderr)) != 0) {}
  void operator()(const ProgressEvent& ev) {
    if (ev.step == 0) {  // a stage finished
      if (tty_) std::fprintf(stderr, "\r\033[K");
      std::fprintf(stderr, "[%s] %s\n", ev.stage.c_str(), ev.message.c_str());
      return;
    }
    if (!tty_) {
      if (ev.stage != last_stage_) {
        std::fprintf(stderr, "[%s] training %lld epochs...\n", ev.stage.c_str(),
                     static_cast<long long>(ev.total_steps));
        last_stage_ = ev.stage;
      }
      return;
    }
    const int width = 30;
    const int filled = ev.total_steps > 0
                           ? static_cast<int>(width * ev.step / ev.total_steps)
                           : 0;
    std::string bar(filled, '#');
    bar.resize(width, '.');
    std::fprintf(stderr, "\r\033[K[%s] %s %lld/%lld loss %.4g ETA %.0fs", ev.stage.c_str(),
                 bar.c_str(), static_cast<long long>(ev.step),
                 static_cast<long long>(ev.total_steps), ev.loss,
                 ev.eta_seconds < 0 ? 0.0 : ev.eta_seconds);
    std::fflush(stderr);
  }

 private:
  bool tty_;
  std::string last_stage_;
};

// --report: the page is made from the written result (and denoised matrix), so
// a local and a --server run give the same report.
int WriteReportIfAsked(const Args& args) {
  const std::string report = args.Get("report");
  if (report.empty()) return 0;
  auto result = ReadH5ad(args.Get("out"));
  if (!result.ok()) return Fail(result.status());
  absl::StatusOr<AnnData> denoised = absl::NotFoundError("");
  if (!args.Get("out-denoised").empty()) {
    denoised = ReadH5ad(args.Get("out-denoised"));
    if (!denoised.ok()) return Fail(denoised.status());
  }
  const std::string pictures = report + ".pictures";
  if (auto s = WriteJobReport(*result, denoised.ok() ? &*denoised : nullptr, pictures, report,
                              args.Get("out"));
      !s.ok())
    return Fail(s);
  std::printf("wrote %s (pictures in %s)\n", report.c_str(), pictures.c_str());
  return 0;
}

int RunRun(const std::vector<std::string>& argv) {
  const auto specs = Specs();
  auto args = Args::Parse(argv, specs);
  if (!args.ok()) return Fail(args.status());
  if (args->Has("help")) {
    std::printf("%s", Args::Usage("run",
                                  "--mod1 A.h5ad --mod2 B.h5ad --n-clusters K --out OUT.h5ad "
                                  "[flags]  |  --mudata F.h5mu --mod1 rna --mod2 prot ...",
                                  specs).c_str());
    return 0;
  }
  for (const char* f : {"mod1", "mod2", "n-clusters", "out"})
    if (args->Get(f).empty()) return Fail(absl::StrCat("--", f, " is required (see --help)"));

  // The job's settings, parsed and validated as candiesd does (core/util/job_options.h):
  // the same input is accepted or refused with the same text locally and with --server.
  JobSettingsText text;
  text.kind = args->Has("no-denoise") ? "integrate" : "full";
  text.preset = args->Get("preset");
  text.low_quality = args->Get("low-quality");
  text.cluster_method = args->Get("cluster-method");  // empty: the preset's
  text.mod1_kind = args->Get("mod1-kind");
  text.mod2_kind = args->Get("mod2-kind");
  auto k = args->GetInt("n-clusters");
  if (!k.ok()) return Fail(k.status());
  text.n_clusters = *k;
  text.apply_model = !args->Get("load-model").empty();
  text.save_model = !args->Get("save-model").empty();
  PipelineOptions o;
  o.kind = args->Has("no-denoise") ? JobKind::kIntegrate : JobKind::kFull;
  o.save_model_dir = args->Get("save-model");
  o.load_model_dir = args->Get("load-model");
  if (o.kind == JobKind::kIntegrate &&
      (!o.save_model_dir.empty() || !o.load_model_dir.empty() || !args->Get("out-denoised").empty()))
    return Fail("--no-denoise: cannot be combined with --save-model, --load-model or --out-denoised");
  if (!o.save_model_dir.empty() && !o.load_model_dir.empty())
    return Fail("--save-model and --load-model: give one (a loaded model is not retrained)");
  auto settings = ParseJobSettings(text);
  if (!settings.ok()) return Fail(settings.status());
  {
    const std::string save = o.save_model_dir, load = o.load_model_dir;
    o = PipelineOptions::FromPreset(settings->preset);
    o.kind = settings->kind;
    o.save_model_dir = save;
    o.load_model_dir = load;
  }
  o.n_clusters = settings->n_clusters;
  o.low_quality = settings->low_quality;
  if (settings->cluster_method.has_value()) o.cluster.method = *settings->cluster_method;  // else the preset's
  o.labels_key = args->Get("labels-key");
  o.device = args->Get("device");
  auto seed = args->GetInt("seed");
  if (!seed.ok()) return Fail(seed.status());
  if (*seed < 0) return Fail("--seed: must be >= 0");
  o.seed = static_cast<uint64_t>(*seed);
  auto threads = args->GetInt("threads");
  if (!threads.ok()) return Fail(threads.status());
  o.threads = static_cast<int>(*threads);

  ModalityInput m1, m2;
  m1.kind = settings->mod1_kind;
  m2.kind = settings->mod2_kind;
  m1.name = args->Get("mod1");
  m2.name = args->Get("mod2");
  if (!args->Get("mudata").empty()) {
    auto mu = ReadH5mu(args->Get("mudata"));
    if (!mu.ok()) return Fail(mu.status());
    for (auto* m : {&m1, &m2}) {
      const AnnData* a = mu->Find(m->name);
      if (a == nullptr) return Fail(absl::StrCat("--mudata: no modality \"", m->name, "\" in the file"));
      auto copy = std::make_shared<AnnData>(*a);
      // MuData may keep the coordinates globally.
      if (copy->obsm.count("spatial") == 0 && mu->obsm.count("spatial") > 0 &&
          mu->obsm.at("spatial").n_rows == copy->n_obs())
        copy->obsm["spatial"] = mu->obsm.at("spatial");
      m->adata = copy;
    }
  } else {
    for (auto* m : {&m1, &m2}) {
      auto a = ReadH5ad(m->name);
      if (!a.ok()) return Fail(a.status());
      m->adata = std::make_shared<AnnData>(std::move(*a));
    }
  }

  if (const std::string server = args->Get("server"); !server.empty()) {
    // The daemon runs the same pipeline; --load-model names a server model id
    // and --save-model keeps the trained model there (its id is printed).
    if (args->Get("threads") != "0" || args->Get("device") != "auto") {
      return Fail("--server: --threads and --device are the server's settings (candiesd --device)");
    }
    RemoteRun rr;
    rr.connection = {server, args->Get("owner"), args->Get("token"),
                     args->Get("tls-ca"), args->Get("tls-cert"), args->Get("tls-key")};
    rr.mod1 = m1.adata;
    rr.mod2 = m2.adata;
    rr.mod1_name = m1.name;
    rr.mod2_name = m2.name;
    rr.settings = *settings;
    rr.labels_key = o.labels_key;
    rr.seed = o.seed;
    rr.load_model = o.load_model_dir;
    rr.save_model = !o.save_model_dir.empty();
    rr.out = args->Get("out");
    rr.out_denoised = args->Get("out-denoised");
    if (int rc = RunOnServer(rr); rc != 0) return rc;
    return WriteReportIfAsked(*args);
  }

  ProgressPrinter printer;
  auto result = RunPipeline(m1, m2, o, [&](const ProgressEvent& ev) { printer(ev); });
  if (!result.ok()) return Fail(result.status());
  if (auto s = WriteH5ad(ResultToAnnData(*result), args->Get("out")); !s.ok()) return Fail(s);
  if (const std::string d = args->Get("out-denoised"); !d.empty()) {
    if (result->denoised_expression == nullptr) return Fail("--out-denoised: no denoised matrix was made");
    if (auto s = WriteH5ad(*result->denoised_expression, d); !s.ok()) return Fail(s);
    std::printf("wrote %s (denoised %s)\n", d.c_str(), result->low_quality.c_str());
  }
  if (!o.save_model_dir.empty()) std::printf("saved model to %s\n", o.save_model_dir.c_str());
  std::printf("low-quality modality: %s\n", result->low_quality.c_str());
  for (const auto& [name, v] : result->metrics) std::printf("%s\t%.4f\n", name.c_str(), v);
  for (const auto& [name, v] : result->stage_seconds)
    std::fprintf(stderr, "seconds %-12s %.2f\n", name.c_str(), v);
  std::printf("wrote %s\n", args->Get("out").c_str());
  return WriteReportIfAsked(*args);
}

}  // namespace

CANDIES_CLI_COMMAND(run, "run", "denoise + integrate two modalities and find spatial domains", RunRun);

}  // namespace candies::cli
