#!/usr/bin/env python3
"""Checks deploy/grafana/candies.json and deploy/prometheus/alerts.yml against
what candiesd really exports.

Usage: check_dashboard.py REPO_ROOT

- the dashboard is JSON with Grafana's required keys (uid, title, schemaVersion,
  panels), every panel has id, type, title, gridPos and at least one target
  with a PromQL expr, ids are unique;
- the panels the operators asked for are there (queue length, jobs by state,
  stage seconds, GPU memory, resident models, upload throughput, errors by RPC);
- every candies_* series the dashboard and the alerts name is a family that
  server/metrics.cc registers (histograms: with _bucket / _sum / _count).
"""
import json
import re
import sys

root = sys.argv[1]
exported = set(re.findall(r'\.Name\("(candies_[a-z_]+)"\)', open(root + "/server/metrics.cc").read()))
assert exported, "no metric families found in server/metrics.cc"


def check_names(text, where):
    for name in set(re.findall(r"\bcandies_[a-z_]+", text)):
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        assert name in exported or base in exported, "%s: %s is not exported by server/metrics.cc" % (where, name)


dash = json.load(open(root + "/deploy/grafana/candies.json"))
for key in ("uid", "title", "schemaVersion", "panels"):
    assert key in dash, "dashboard: missing key %r" % key
ids = set()
for p in dash["panels"]:
    for key in ("id", "type", "title", "gridPos", "targets", "datasource"):
        assert key in p, "panel %r: missing %r" % (p.get("title"), key)
    assert p["id"] not in ids, "panel id %r twice" % p["id"]
    ids.add(p["id"])
    assert set(p["gridPos"]) >= {"x", "y", "w", "h"}, p["title"]
    assert p["targets"], p["title"]
    for t in p["targets"]:
        assert t.get("expr"), "panel %r: a target without expr" % p["title"]
        check_names(t["expr"], "panel %r" % p["title"])
titles = {p["title"] for p in dash["panels"]}
for want in ("Queue length", "Jobs by state", "Stage seconds (p90)", "GPU / device memory",
             "Resident models", "Upload throughput", "Errors by RPC"):
    assert want in titles, "dashboard: no panel %r" % want

alerts = open(root + "/deploy/prometheus/alerts.yml").read()
check_names(alerts, "alerts.yml")
for want in ("CandiesdDown", "CandiesQueueStuck", "CandiesRpcErrorRate", "CandiesDiskNearlyFull"):
    assert "alert: " + want in alerts, "alerts.yml: no alert " + want
print("dashboard: %d panels; alerts ok; exported families: %d" % (len(ids), len(exported)))
