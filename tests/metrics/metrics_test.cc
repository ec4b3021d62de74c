#include "core/metrics/metrics.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace candies::metrics {
namespace {

// The reference file written by tests/metrics/make_reference.py (sklearn).
struct Reference {
  std::map<std::string, std::vector<int32_t>> labels;
  std::map<std::string, std::pair<std::vector<int64_t>, std::vector<float>>> embeddings;
  std::map<std::string, std::pair<int64_t, std::vector<int64_t>>> neighbors;  // k, list
  std::map<std::string, std::vector<double>> values;
  std::vector<std::tuple<std::string, std::string, double>> expected;  // metric, case, value
};

double ParseDouble(const std::string& token) {
  if (token == "nan") return std::nan("");
  return std::stod(token);
}

const Reference& LoadReference() {
  static const Reference* ref = [] {
    auto* r = new Reference;
    const char* env = std::getenv("CANDIES_METRICS_REFERENCE");
    const std::string path =
        env != nullptr ? env : std::string(CANDIES_SOURCE_DIR) + "/tests/metrics/reference.txt";
    std::ifstream in(path);
    EXPECT_TRUE(in.good()) << "cannot read " << path;
    std::string line;
    while (std::getline(in, line)) {
      if (line.empty() || line[0] == '#') continue;
      std::istringstream s(line);
      std::string kind, name, token;
      s >> kind >> name;
      if (kind == "labels") {
        int64_t n;
        s >> n;
        auto& v = r->labels[name];
        for (int64_t i = 0; i < n; ++i) {
          s >> token;
          v.push_back(std::stoi(token));
        }
      } else if (kind == "embedding") {
        int64_t n, d;
        s >> n >> d;
        auto& e = r->embeddings[name];
        e.first = {n, d};
        for (int64_t i = 0; i < n * d; ++i) {
          s >> token;
          e.second.push_back(std::stof(token));
        }
      } else if (kind == "neighbors") {
        int64_t n, k;
        s >> n >> k;
        auto& e = r->neighbors[name];
        e.first = k;
        for (int64_t i = 0; i < n * k; ++i) {
          s >> token;
          e.second.push_back(std::stoll(token));
        }
      } else if (kind == "values") {
        int64_t n;
        s >> n;
        auto& v = r->values[name];
        for (int64_t i = 0; i < n; ++i) {
          s >> token;
          v.push_back(ParseDouble(token));
        }
      } else if (kind == "value") {
        std::string case_name;
        s >> case_name >> token;
        r->expected.emplace_back(name, case_name, ParseDouble(token));
      }
    }
    return r;
  }();
  return *ref;
}

void ExpectClose(double expected, double actual, const std::string& what) {
  if (std::isnan(expected)) {
    EXPECT_TRUE(std::isnan(actual)) << what << ": expected NaN, got " << actual;
    return;
  }
  EXPECT_NEAR(actual, expected, 1e-9 + 1e-9 * std::abs(expected)) << what;
}

TEST(MetricsReference, FileHasEveryMetric) {
  const Reference& ref = LoadReference();
  std::map<std::string, int> count;
  for (const auto& [metric, c, v] : ref.expected) ++count[metric];
  for (const char* m : {"ARI", "MI", "NMI", "AMI", "homogeneity", "completeness", "v_measure",
                        "FMI", "silhouette", "davies_bouldin", "calinski_harabasz", "morans_i",
                        "morans_i_labels"}) {
    EXPECT_GT(count[m], 0) << m;
  }
}

TEST(MetricsReference, SupervisedMatchSklearn) {
  const Reference& ref = LoadReference();
  int checked = 0;
  for (const auto& [metric, c, expected] : ref.expected) {
    if (!ref.labels.count(c + ".truth")) continue;
    const auto& truth = ref.labels.at(c + ".truth");
    const auto& pred = ref.labels.at(c + ".pred");
    double actual = 0;
    if (metric == "ARI") actual = AdjustedRandIndex(truth, pred);
    else if (metric == "MI") actual = MutualInformation(truth, pred);
    else if (metric == "NMI") actual = NormalizedMutualInformation(truth, pred);
    else if (metric == "AMI") actual = AdjustedMutualInformation(truth, pred);
    else if (metric == "homogeneity") actual = Homogeneity(truth, pred);
    else if (metric == "completeness") actual = Completeness(truth, pred);
    else if (metric == "v_measure") actual = VMeasure(truth, pred);
    else if (metric == "FMI") actual = FowlkesMallows(truth, pred);
    else FAIL() << "unknown metric " << metric;
    ExpectClose(expected, actual, metric + " on " + c);
    ++checked;
  }
  EXPECT_GE(checked, 80);
}

TEST(MetricsReference, UnsupervisedMatchSklearn) {
  const Reference& ref = LoadReference();
  int checked = 0;
  for (const auto& [metric, c, expected] : ref.expected) {
    if (!ref.embeddings.count(c)) continue;
    const auto& [shape, x] = ref.embeddings.at(c);
    const auto& labels = ref.labels.at(c + ".labels");
    double actual = 0;
    if (metric == "silhouette") actual = Silhouette(x, shape[0], shape[1], labels);
    else if (metric == "davies_bouldin") actual = DaviesBouldin(x, shape[0], shape[1], labels);
    else if (metric == "calinski_harabasz")
      actual = CalinskiHarabasz(x, shape[0], shape[1], labels);
    else FAIL() << "unknown metric " << metric;
    ExpectClose(expected, actual, metric + " on " + c);
    ++checked;
  }
  EXPECT_GE(checked, 9);
}

TEST(MetricsReference, MoransIMatchesTextbookFormula) {
  const Reference& ref = LoadReference();
  const auto& [k, nbrs] = ref.neighbors.at("grid");
  int checked = 0;
  for (const auto& [metric, c, expected] : ref.expected) {
    if (metric == "morans_i") {
      ExpectClose(expected, MoransI(ref.values.at(c), nbrs, k), metric + " on " + c);
      ++checked;
    } else if (metric == "morans_i_labels") {
      ExpectClose(expected, MoransIOfLabels(ref.labels.at(c), nbrs, k), metric + " on " + c);
      ++checked;
    }
  }
  EXPECT_EQ(checked, 4);
}

TEST(Metrics, PermutedLabelsScorePerfectly) {
  std::vector<int32_t> a = {0, 0, 1, 1, 2, 2, 2};
  std::vector<int32_t> b = {7, 7, -3, -3, 5, 5, 5};
  for (const auto& [name, value] : SupervisedReport(a, b)) {
    if (name != "MI") {
      EXPECT_DOUBLE_EQ(value, 1.0) << name;
    }
  }
}

TEST(Metrics, ReportOrderAndLengthMismatch) {
  auto report = SupervisedReport({0, 1}, {0, 1});
  std::vector<std::string> names;
  for (const auto& [name, v] : report) names.push_back(name);
  EXPECT_EQ(names, (std::vector<std::string>{"ARI", "NMI", "AMI", "MI", "homogeneity",
                                             "completeness", "v_measure", "FMI"}));
  EXPECT_TRUE(std::isnan(AdjustedRandIndex({0, 1}, {0})));
  EXPECT_TRUE(std::isnan(NormalizedMutualInformation({0, 1}, {0})));
}

TEST(Metrics, UnsupervisedNeedTwoToNMinusOneClusters) {
  std::vector<float> x = {0, 0, 1, 1, 2, 2};
  EXPECT_TRUE(std::isnan(Silhouette(x, 3, 2, {0, 0, 0})));
  EXPECT_TRUE(std::isnan(DaviesBouldin(x, 3, 2, {0, 1, 2})));
  EXPECT_TRUE(std::isnan(CalinskiHarabasz(x, 3, 2, {0, 1})));  // wrong length
  EXPECT_FALSE(std::isnan(Silhouette(x, 3, 2, {0, 0, 1})));
}

TEST(Metrics, SilhouetteSampleOfAllRowsIsExactAndSampleIsClose) {
  const Reference& ref = LoadReference();
  const auto& [shape, x] = ref.embeddings.at("blobs");
  const auto& labels = ref.labels.at("blobs.labels");
  const double exact = Silhouette(x, shape[0], shape[1], labels);
  SilhouetteOptions all;
  all.sample_size = shape[0];
  EXPECT_DOUBLE_EQ(Silhouette(x, shape[0], shape[1], labels, all), exact);
  SilhouetteOptions sample;
  sample.sample_size = 120;
  sample.seed = 3;
  const double s1 = Silhouette(x, shape[0], shape[1], labels, sample);
  EXPECT_DOUBLE_EQ(s1, Silhouette(x, shape[0], shape[1], labels, sample));  // seeded
  EXPECT_NEAR(s1, exact, 0.05);
  EXPECT_NE(s1, exact);
}

TEST(Metrics, MoransIPaddingAndConstant) {
  // Path 0-1-2-3 with padded (-1) neighbour slots.
  std::vector<int64_t> nbrs = {1, -1, 0, 2, 1, 3, 2, -1};
  const double i = MoransI({1, 2, 3, 4}, nbrs, 2);
  // Textbook: z = (-1.5,-.5,.5,1.5); W rows (0:{1}) (1:{0,2}/2) (2:{1,3}/2) (3:{2}).
  const double zwz = -1.5 * -0.5 + -0.5 * 0.5 * (-1.5 + 0.5) + 0.5 * 0.5 * (-0.5 + 1.5) +
                     1.5 * 0.5;
  EXPECT_NEAR(i, 4.0 / 4.0 * zwz / 5.0, 1e-12);
  EXPECT_TRUE(std::isnan(MoransI({2, 2, 2, 2}, nbrs, 2)));
  EXPECT_TRUE(std::isnan(MoransIOfLabels({1, 1, 1, 1}, nbrs, 2)));
}

TEST(Metrics, EncodeLabelsByFirstAppearance) {
  EXPECT_EQ(EncodeLabels({"b", "a", "b", "c", "a"}), (std::vector<int32_t>{0, 1, 0, 2, 1}));
  EXPECT_TRUE(EncodeLabels({}).empty());
}

}  // namespace
}  // namespace candies::metrics
