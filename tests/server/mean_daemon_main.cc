// candiesd with a small backend that computes per-gene means of mod1 (one row,
// obs "mean", also as obsm["X_candies"], obs["candies_cluster"] = "0"), records
// the mean of all values as uns["candies"]["metrics"]["mean_x"] (with stage
// seconds, like the real pipeline) and writes a small HTML report naming it.
// Lets the CLI's client commands and the JSON API be tested over a real
// process without LibTorch; the real daemon is server/main.cc.
// CANDIES_TEST_ROW_DELAY_MS=N makes each row take N ms, so that tests can catch
// jobs running and queued (e.g. to kill -9 the daemon under them).
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "core/io/h5ad.h"
#include "server/config.h"
#include "server/daemon.h"

namespace {

class MeanBackend : public candies::server::JobBackend {
 public:
  absl::StatusOr<std::string> Run(const candies::server::JobSpec& spec,
                                  const candies::ProgressSink& progress,
                                  const candies::CancelToken* cancel) override {
    const absl::Time t0 = absl::Now();
    auto a = candies::ReadH5ad(spec.mod1_path);
    if (!a.ok()) return a.status();
    const candies::Matrix x = candies::ToDense(a->X);
    std::vector<double> sum(static_cast<size_t>(x.n_cols), 0.0);
    const char* delay = std::getenv("CANDIES_TEST_ROW_DELAY_MS");
    const int delay_ms = delay != nullptr ? std::atoi(delay) : 0;
    for (int64_t i = 0; i < x.n_rows; ++i) {
      if (delay_ms > 0) absl::SleepFor(absl::Milliseconds(delay_ms));
      for (int64_t j = 0; j < x.n_cols; ++j) sum[j] += x.values[i * x.n_cols + j];
      candies::ProgressEvent e;
      e.stage = "mean";
      e.step = i + 1;
      e.total_steps = x.n_rows;
      if (candies::ReportAndCheckCancel(progress, cancel, e)) return absl::CancelledError("cancelled");
    }
    std::vector<float> mean;
    for (double s : sum) mean.push_back(static_cast<float>(s / x.n_rows));
    candies::AnnData out;
    out.X = candies::Matrix::Dense(1, x.n_cols, mean);
    out.obs.index = {"mean"};
    out.obs.Set(candies::Column::Categorical("candies_cluster", {"0"}));
    out.obsm["X_candies"] = candies::Matrix::Dense(1, x.n_cols, mean);
    out.var.index = a->var.index;
    double total = 0;
    for (double v : sum) total += v;
    const double mean_x = x.n_rows * x.n_cols > 0 ? total / static_cast<double>(x.n_rows * x.n_cols) : 0;
    const double seconds = absl::ToDoubleSeconds(absl::Now() - t0);
    candies::UnsValue metrics = candies::UnsValue::Map(), secs = candies::UnsValue::Map();
    metrics.Set("mean_x", candies::UnsValue::Float(mean_x));
    secs.Set("mean", candies::UnsValue::Float(seconds));
    secs.Set("total", candies::UnsValue::Float(seconds));
    candies::UnsValue job = candies::UnsValue::Map();
    job.Set("metrics", metrics);
    job.Set("seconds", secs);
    job.Set("low_quality", candies::UnsValue::String("mod2"));
    out.uns = candies::UnsValue::Map();
    out.uns.Set("candies", job);
    if (!spec.report_path.empty()) {
      std::ofstream(spec.report_path) << "<!DOCTYPE html><html><body><h1>candies job " << spec.id
                                      << "</h1><p>mean_x = " << mean_x << "</p></body></html>\n";
    }
    if (auto s = candies::WriteH5ad(out, spec.result_path); !s.ok()) return s;
    return spec.result_path;
  }
};

}  // namespace

int main(int argc, char** argv) {
  auto config = candies::server::ParseDaemonConfig(std::vector<std::string>(argv + 1, argv + argc));
  if (!config.ok()) {
    std::fprintf(stderr, "%s\n", std::string(config.status().message()).c_str());
    return 2;
  }
  MeanBackend backend;
  return candies::server::RunDaemon(*config, &backend);
}
