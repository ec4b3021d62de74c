// The job's pictures (core/plot) and HTML report (core/report) on a small
// synthetic result: four domains in the quadrants of a grid, per-modality
// clusters, labels, loss curves, a denoised modality and real marker features.
// With Chromium (Debian's `chromium`, scripts/setup.sh) the report is rendered
// headless: the screenshot is not blank, the domain map is not uniform, and
// the rendered DOM has every section.
#include <cairo.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include "core/analysis/domain_markers.h"
#include "core/io/h5ad.h"
#include "core/plot/plots.h"
#include "core/report/report.h"

namespace candies {
namespace {

constexpr int kSide = 24;  // spots per grid side

int Quadrant(int i) {
  const int r = i / kSide, c = i % kSide;
  return (r >= kSide / 2 ? 2 : 0) + (c >= kSide / 2 ? 1 : 0);
}

struct Fixture {
  AnnData result, denoised;
};

Fixture MakeFixture() {
  const int n = kSide * kSide, g = 12;
  Fixture f;
  std::vector<std::string> names, dom, mod1, mod2, truth;
  std::vector<float> xy, counts, noisy, clean;
  uint32_t state = 12345;
  auto uniform = [&] { state = state * 1664525u + 1013904223u; return (state >> 8) / 16777216.0; };
  for (int i = 0; i < n; ++i) {
    names.push_back("spot" + std::to_string(i));
    xy.push_back(10.0f * (i % kSide));
    xy.push_back(10.0f * (i / kSide));
    const int q = Quadrant(i);
    dom.push_back(std::to_string(q));
    mod1.push_back(std::to_string(q / 2));  // one modality sees rows only
    mod2.push_back(std::to_string(q));
    truth.push_back(std::string("layer_") + static_cast<char>('A' + q));
    for (int j = 0; j < g; ++j) {
      const double mean = (j / 3 == q) ? 8.0 : 1.0;  // three markers per quadrant
      counts.push_back(static_cast<float>(std::floor(mean * 2 * uniform())));
      clean.push_back(static_cast<float>(mean));
      noisy.push_back(static_cast<float>(mean + 6 * (uniform() - 0.5)));
    }
  }
  AnnData& a = f.result;
  a.has_x = false;
  a.obs.index = names;
  a.obs.Set(Column::Categorical("candies_cluster", dom));
  a.obs.Set(Column::Categorical("candies_cluster_mod1", mod1));
  a.obs.Set(Column::Categorical("candies_cluster_mod2", mod2));
  a.obs.Set(Column::Categorical("candies_truth", truth));
  a.obsm["spatial"] = Matrix::Dense(n, 2, xy);
  AnnData rna;
  rna.X = Matrix::Dense(n, g, counts);
  rna.obs.index = names;
  for (int j = 0; j < g; ++j) rna.var.index.push_back("gene" + std::to_string(j));
  std::vector<int32_t> domains;
  for (int i = 0; i < n; ++i) domains.push_back(Quadrant(i));
  auto markers = DomainMarkers(rna, {}, domains, "mod1");
  EXPECT_TRUE(markers.ok()) << markers.status();
  a.uns = UnsValue::Map();
  UnsValue c = UnsValue::Map();
  c.Set("version", UnsValue::String("test"));
  UnsValue params = UnsValue::Map();
  params.Set("preset", UnsValue::String("fast"));
  params.Set("n_clusters", UnsValue::Int(4));
  c.Set("params", params);
  UnsValue sel = UnsValue::Map();
  sel.Set("score_mod1", UnsValue::Float(0.41));
  sel.Set("score_mod2", UnsValue::Float(0.77));
  sel.Set("supervised", UnsValue::Bool(false));
  c.Set("selection", sel);
  c.Set("low_quality", UnsValue::String("mod1"));
  UnsValue secs = UnsValue::Map();
  secs.Set("preprocess", UnsValue::Float(0.5));
  secs.Set("total", UnsValue::Float(3.25));
  c.Set("seconds", secs);
  UnsValue mets = UnsValue::Map();
  mets.Set("ari", UnsValue::Float(0.93));
  c.Set("metrics", mets);
  c.Set("warnings", UnsValue::StringArray({"an example warning <b>escaped</b>"}));
  UnsValue losses = UnsValue::Map();
  std::vector<double> l1, l2;
  for (int e = 0; e < 50; ++e) l1.push_back(2.0 * std::exp(-e / 10.0) + 0.1), l2.push_back(1.0 / (1 + e));
  losses.Set("gae_mod1", UnsValue::FloatArray(l1));
  losses.Set("integrate", UnsValue::FloatArray(l2));
  c.Set("losses", losses);
  a.uns.Set("candies", c);
  a.uns.Set("rank_genes_groups", *markers);

  f.denoised.X = Matrix::Dense(n, g, clean);
  f.denoised.layers["raw"] = Matrix::Dense(n, g, noisy);
  f.denoised.obs.index = names;
  f.denoised.var.index = rna.var.index;
  return f;
}

std::string Dir(const std::string& name) {
  std::string d = ::testing::TempDir() + "/report_test_" + name;
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d);
  return d;
}

// Distinct colours among the pixels of a PNG's rectangle (whole image: w = 0).
struct PixelStats {
  int width = 0, height = 0;
  size_t distinct = 0;
  double non_white = 0;  // fraction
};

PixelStats Pixels(const std::string& png, int x0 = 0, int y0 = 0, int w = 0, int h = 0) {
  PixelStats s;
  cairo_surface_t* img = cairo_image_surface_create_from_png(png.c_str());
  if (cairo_surface_status(img) != CAIRO_STATUS_SUCCESS) {
    cairo_surface_destroy(img);
    return s;
  }
  s.width = cairo_image_surface_get_width(img);
  s.height = cairo_image_surface_get_height(img);
  const int stride = cairo_image_surface_get_stride(img);
  const unsigned char* data = cairo_image_surface_get_data(img);
  if (w == 0) w = s.width, h = s.height;
  std::set<uint32_t> colours;
  size_t non_white = 0, total = 0;
  for (int y = y0; y < std::min(y0 + h, s.height); ++y)
    for (int x = x0; x < std::min(x0 + w, s.width); ++x) {
      uint32_t p;
      std::memcpy(&p, data + y * stride + 4 * x, 4);
      p &= 0xffffff;
      colours.insert(p);
      non_white += p != 0xffffff;
      ++total;
    }
  s.distinct = colours.size();
  s.non_white = total ? static_cast<double>(non_white) / total : 0;
  cairo_surface_destroy(img);
  return s;
}

bool HasColour(const std::string& png, plot::Rgb want) {
  cairo_surface_t* img = cairo_image_surface_create_from_png(png.c_str());
  const int w = cairo_image_surface_get_width(img), h = cairo_image_surface_get_height(img);
  const int stride = cairo_image_surface_get_stride(img);
  const unsigned char* data = cairo_image_surface_get_data(img);
  bool found = false;
  for (int y = 0; y < h && !found; ++y)
    for (int x = 0; x < w && !found; ++x) {
      const unsigned char* p = data + y * stride + 4 * x;  // BGRx
      found = std::abs(p[2] - want.r * 255) < 2 && std::abs(p[1] - want.g * 255) < 2 &&
              std::abs(p[0] - want.b * 255) < 2;
    }
  cairo_surface_destroy(img);
  return found;
}

TEST(PlotsTest, WritesEveryPictureWithRealContent) {
  Fixture f = MakeFixture();
  const std::string dir = Dir("plots");
  auto plots = plot::WriteJobPlots(f.result, &f.denoised, dir);
  ASSERT_TRUE(plots.ok()) << plots.status();
  EXPECT_TRUE(plots->skipped.empty()) << plots->skipped[0];
  std::set<std::string> names;
  for (const auto& [name, path] : plots->files) {
    names.insert(name);
    PixelStats s = Pixels(path);
    EXPECT_GT(s.width, 100) << path;
    EXPECT_GT(s.distinct, 10u) << path;
  }
  EXPECT_EQ(names, (std::set<std::string>{"domains", "domains_by_modality", "denoising", "losses",
                                          "confusion"}));
  // The domain map uses the palette's first four colours, one per quadrant.
  for (size_t k = 0; k < 4; ++k)
    EXPECT_TRUE(HasColour(dir + "/domains.png", plot::CategoryColor(k))) << k;
  EXPECT_FALSE(HasColour(dir + "/domains.png", plot::CategoryColor(4)));
}

TEST(PlotsTest, MissingInputsAreSkippedWithAReason) {
  Fixture f = MakeFixture();
  f.result.uns.Find("candies")->children.pop_back();  // losses
  f.result.obs.columns.erase(f.result.obs.columns.begin() + 3);  // truth
  auto plots = plot::WriteJobPlots(f.result, nullptr, Dir("skipped"));
  ASSERT_TRUE(plots.ok()) << plots.status();
  EXPECT_EQ(plots->files.size(), 2u);
  ASSERT_EQ(plots->skipped.size(), 3u);
  EXPECT_EQ(plots->skipped[0], "denoising: no denoised matrix");
}

TEST(PlotsTest, NotAResultIsAnErrorNamingTheField) {
  AnnData a;
  auto plots = plot::WriteJobPlots(a, nullptr, Dir("bad"));
  ASSERT_FALSE(plots.ok());
  EXPECT_NE(std::string(plots.status().message()).find("obs[\"candies_cluster\"]"), std::string::npos);
}

const char* kSections[] = {"domains", "modalities", "denoising", "losses", "confusion",
                           "low-quality", "parameters", "seconds", "metrics", "warnings",
                           "markers"};

TEST(ReportTest, SelfContainedPageWithEverySection) {
  Fixture f = MakeFixture();
  const std::string dir = Dir("report");
  const std::string html_path = dir + "/report.html";
  ASSERT_TRUE(WriteJobReport(f.result, &f.denoised, dir + "/pictures", html_path, "job 7").ok());
  std::ifstream in(html_path);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string html = ss.str();
  for (const char* id : kSections)
    EXPECT_NE(html.find(std::string("<h2 id=\"") + id + "\">"), std::string::npos) << id;
  size_t images = 0;
  for (size_t at = html.find("src=\"data:image/png;base64,"); at != std::string::npos;
       at = html.find("src=\"data:image/png;base64,", at + 1))
    ++images;
  EXPECT_EQ(images, 5u);
  EXPECT_EQ(html.find("src=\"file:"), std::string::npos);
  EXPECT_NE(html.find("<b>mod1</b>: lower unsupervised quality score"), std::string::npos);
  EXPECT_NE(html.find("&lt;b&gt;escaped&lt;/b&gt;"), std::string::npos);
  EXPECT_NE(html.find("<td>gene0</td>"), std::string::npos);  // a real marker of domain 0
  EXPECT_NE(html.find("<th>ari</th><td>0.93</td>"), std::string::npos);
}

std::string Shell(const std::string& cmd) {
  std::string out;
  FILE* p = popen((cmd + " 2>/dev/null").c_str(), "r");
  if (p == nullptr) return out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  pclose(p);
  return out;
}

TEST(ReportTest, RendersInHeadlessChromium) {
  Fixture f = MakeFixture();
  const std::string dir = Dir("chromium");
  const std::string html_path = dir + "/report.html", shot = dir + "/shot.png";
  ASSERT_TRUE(WriteJobReport(f.result, &f.denoised, dir + "/pictures", html_path, "job 7").ok());
  const std::string chromium = std::string(CANDIES_CHROMIUM) +
                               " --headless --no-sandbox --disable-gpu --hide-scrollbars"
                               " --user-data-dir=" + dir + "/profile";
  Shell(chromium + " --window-size=1200,1000 --screenshot=" + shot + " file://" + html_path);
  PixelStats page = Pixels(shot);
  ASSERT_EQ(page.width, 1200) << "no screenshot from " << CANDIES_CHROMIUM;
  EXPECT_GT(page.non_white, 0.05);  // not blank
  // The domain map: the first picture, below the title; its area holds the
  // four palette colours and more (antialiased spot edges, legend, text).
  PixelStats map = Pixels(shot, 0, 120, 600, 500);
  EXPECT_GT(map.distinct, 20u);
  EXPECT_GT(map.non_white, 0.2);
  EXPECT_TRUE(HasColour(shot, plot::CategoryColor(0)));
  EXPECT_TRUE(HasColour(shot, plot::CategoryColor(3)));
  // Every section is in the rendered DOM.
  const std::string dom = Shell(chromium + " --dump-dom file://" + html_path);
  for (const char* id : kSections)
    EXPECT_NE(dom.find(std::string("id=\"") + id + "\""), std::string::npos) << id;
}

}  // namespace
}  // namespace candies
