#include "core/report/report.h"

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <tuple>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/analysis/rank_genes_groups.h"

namespace candies {
namespace {

std::string Html(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string Scalar(const UnsValue& v) {
  switch (v.kind) {
    case UnsValue::Kind::kString: return v.str;
    case UnsValue::Kind::kFloat: return absl::StrFormat("%.6g", v.f);
    case UnsValue::Kind::kInt: return absl::StrCat(v.i);
    case UnsValue::Kind::kBool: return v.b ? "true" : "false";
    default: return "";
  }
}

// A two-column table of a uns map's scalar children.
std::string KeyValueTable(const UnsValue* map, const char* empty) {
  if (map == nullptr || map->children.empty()) return absl::StrCat("<p>", empty, "</p>\n");
  std::string out = "<table>\n";
  for (const auto& [k, v] : map->children) {
    const std::string s = Scalar(v);
    if (v.kind == UnsValue::Kind::kMap || v.kind == UnsValue::Kind::kRecArray) continue;
    absl::StrAppend(&out, "<tr><th>", Html(k), "</th><td>", Html(s), "</td></tr>\n");
  }
  return out + "</table>\n";
}

absl::StatusOr<std::string> InlinePng(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot read the picture"));
  std::stringstream ss;
  ss << in.rdbuf();
  return absl::StrCat("data:image/png;base64,", absl::Base64Escape(ss.str()));
}

constexpr const char* kStyle = R"(<style>
body{font-family:sans-serif;margin:2em;color:#222;max-width:1400px}
h1{font-size:1.6em} h2{font-size:1.25em;border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;margin:.5em 0} th,td{border:1px solid #ddd;padding:.25em .6em;text-align:left}
th{background:#f4f4f4} img{max-width:100%;border:1px solid #eee} .warn{color:#a33}
</style>
)";

}  // namespace

absl::StatusOr<std::string> JobReportHtml(const AnnData& result, const plot::JobPlots& plots,
                                          const std::string& title) {
  const UnsValue empty = UnsValue::Map();
  const UnsValue* c = result.uns.Find("candies");
  if (c == nullptr) c = &empty;
  std::string out = absl::StrCat("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>",
                                 Html(title), "</title>\n", kStyle, "</head><body>\n<h1>",
                                 Html(title), "</h1>\n");
  const UnsValue* version = c->Find("version");
  absl::StrAppend(&out, "<p>", result.n_obs(), " spots; candies ",
                  Html(version != nullptr ? version->str : "?"), "</p>\n");

  auto picture = [&](const char* name, const char* heading, const char* id) -> absl::Status {
    absl::StrAppend(&out, "<h2 id=\"", id, "\">", heading, "</h2>\n");
    for (const auto& [n, path] : plots.files) {
      if (n != name) continue;
      absl::StatusOr<std::string> uri = InlinePng(path);
      if (!uri.ok()) return uri.status();
      absl::StrAppend(&out, "<img id=\"img-", id, "\" alt=\"", heading, "\" src=\"", *uri, "\">\n");
      return absl::OkStatus();
    }
    for (const std::string& why : plots.skipped)
      if (why.rfind(name, 0) == 0) absl::StrAppend(&out, "<p>Not drawn: ", Html(why), "</p>\n");
    return absl::OkStatus();
  };
  for (auto [name, heading, id] :
       {std::tuple<const char*, const char*, const char*>{"domains", "Spatial domains", "domains"},
        {"domains_by_modality", "Domains of each modality", "modalities"},
        {"denoising", "Denoising: raw vs denoised marker features", "denoising"},
        {"losses", "Training loss", "losses"},
        {"confusion", "Confusion matrix against labels", "confusion"}}) {
    absl::Status st = picture(name, heading, id);
    if (!st.ok()) return st;
  }

  absl::StrAppend(&out, "<h2 id=\"low-quality\">Low-quality modality</h2>\n");
  const UnsValue* low = c->Find("low_quality");
  const UnsValue* sel = c->Find("selection");
  std::string why = "fixed by the job's settings or a trained model (no comparison ran)";
  if (sel != nullptr) {
    const UnsValue* s1 = sel->Find("score_mod1");
    const UnsValue* s2 = sel->Find("score_mod2");
    const UnsValue* sup = sel->Find("supervised");
    const bool supervised = sup != nullptr && sup->b;
    why = absl::StrCat(supervised ? "lower ARI against the labels" : "lower unsupervised quality score",
                       " of its embedding's clusters: mod1 ", s1 ? Scalar(*s1) : "?", ", mod2 ",
                       s2 ? Scalar(*s2) : "?");
  }
  absl::StrAppend(&out, "<p><b>", Html(low != nullptr && !low->str.empty() ? low->str : "none"),
                  "</b>: ", Html(why), "</p>\n");

  absl::StrAppend(&out, "<h2 id=\"parameters\">Parameters</h2>\n",
                  KeyValueTable(c->Find("params"), "none recorded"));
  absl::StrAppend(&out, "<h2 id=\"seconds\">Seconds per stage</h2>\n",
                  KeyValueTable(c->Find("seconds"), "none recorded"));
  absl::StrAppend(&out, "<h2 id=\"metrics\">Metrics</h2>\n",
                  KeyValueTable(c->Find("metrics"), "none (the job had no labels)"));

  absl::StrAppend(&out, "<h2 id=\"warnings\">Warnings</h2>\n");
  const UnsValue* warnings = c->Find("warnings");
  if (warnings == nullptr || warnings->strings.empty()) {
    absl::StrAppend(&out, "<p>none</p>\n");
  } else {
    absl::StrAppend(&out, "<ul>\n");
    for (const std::string& w : warnings->strings)
      absl::StrAppend(&out, "<li class=\"warn\">", Html(w), "</li>\n");
    absl::StrAppend(&out, "</ul>\n");
  }

  absl::StrAppend(&out, "<h2 id=\"markers\">Marker features</h2>\n");
  const UnsValue* rgg = result.uns.Find("rank_genes_groups");
  if (rgg == nullptr) {
    absl::StrAppend(&out, "<p>none computed</p>\n");
  } else {
    absl::StatusOr<RankGenesGroupsResult> r = RankGenesGroupsFromUns(*rgg, kReportMarkersPerDomain);
    if (!r.ok()) return r.status();
    absl::StrAppend(&out, "<p>Wilcoxon rank-sum, each domain against the rest (scanpy's "
                          "rank_genes_groups; uns[\"rank_genes_groups\"]).</p>\n<table>\n"
                          "<tr><th>domain</th><th>rank</th><th>feature</th><th>z-score</th>"
                          "<th>log2 fold change</th><th>p</th><th>adjusted p</th></tr>\n");
    for (const GroupMarkers& g : r->groups)
      for (size_t k = 0; k < g.names.size(); ++k) {
        auto at = [&](const std::vector<double>& v, const char* fmt) {
          return k < v.size() ? absl::StrFormat(fmt, v[k]) : std::string("");
        };
        absl::StrAppend(&out, "<tr><td>", Html(g.group), "</td><td>", k + 1, "</td><td>",
                        Html(g.names[k]), "</td><td>", at(g.scores, "%.3f"), "</td><td>",
                        at(g.logfoldchanges, "%.3f"), "</td><td>", at(g.pvals, "%.3g"),
                        "</td><td>", at(g.pvals_adj, "%.3g"), "</td></tr>\n");
      }
    absl::StrAppend(&out, "</table>\n");
  }
  absl::StrAppend(&out, "</body></html>\n");
  return out;
}

absl::Status WriteJobReport(const AnnData& result, const AnnData* denoised,
                            const std::string& picture_dir, const std::string& html_path,
                            const std::string& title) {
  absl::StatusOr<plot::JobPlots> plots = plot::WriteJobPlots(result, denoised, picture_dir);
  if (!plots.ok()) return plots.status();
  absl::StatusOr<std::string> html = JobReportHtml(result, *plots, title);
  if (!html.ok()) return html.status();
  const std::string tmp = absl::StrCat(html_path, ".tmp.", getpid());
  {
    std::ofstream f(tmp, std::ios::binary);
    f << *html;
    if (!f.good()) return absl::InternalError(absl::StrCat(html_path, ": cannot write the report"));
  }
  if (std::rename(tmp.c_str(), html_path.c_str()) != 0)
    return absl::InternalError(absl::StrCat(html_path, ": cannot rename the report into place"));
  return absl::OkStatus();
}

}  // namespace candies
