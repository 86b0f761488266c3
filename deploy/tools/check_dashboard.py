#!/usr/bin/env python3
"""Checks a Grafana dashboard JSON the way Grafana would load it, and hands its queries to
promtool.

- the JSON parses, has a uid, title and schemaVersion, and the `datasource`, `job` and
  `instance` variables every query relies on;
- panel ids are unique and no two panels overlap on Grafana's 24-column grid;
- every query panel and target uses the `${datasource}` variable (an imported dashboard then
  works against any Prometheus), has a unique refId and a non-empty expression;
- every expression, Grafana's variables replaced by values Prometheus accepts, is written as a
  recording rule to OUT, so `promtool check rules OUT` parses each one as PromQL.

Usage: check_dashboard.py DASHBOARD.json OUT.rules.yaml
"""

import json
import re
import sys

GRID_COLUMNS = 24
REQUIRED_VARIABLES = ("datasource", "job", "instance")
DATASOURCE_UID = "${datasource}"
# Grafana's built-in range variables become durations; template variables become regexes.
RANGE_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}
TEMPLATE_VARIABLE = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?")


def fail(problems):
    for problem in problems:
        print(f"dashboard: {problem}", file=sys.stderr)
    sys.exit(1)


def promql(expr):
    for name, value in RANGE_VARIABLES.items():
        expr = expr.replace(name, value)
    return TEMPLATE_VARIABLE.sub(".+", expr)


def overlaps(a, b):
    return (
        a["x"] < b["x"] + b["w"]
        and b["x"] < a["x"] + a["w"]
        and a["y"] < b["y"] + b["h"]
        and b["y"] < a["y"] + a["h"]
    )


def check(dashboard):
    problems = []
    for key in ("uid", "title", "schemaVersion", "panels"):
        if not dashboard.get(key):
            problems.append(f"missing {key}")
    variables = {v.get("name") for v in dashboard.get("templating", {}).get("list", [])}
    for name in REQUIRED_VARIABLES:
        if name not in variables:
            problems.append(f"no template variable {name}")

    panels = dashboard.get("panels", [])
    ids, placed, exprs = set(), [], []
    for panel in panels:
        title = panel.get("title", "?")
        pid = panel.get("id")
        if pid in ids:
            problems.append(f"panel {title!r}: id {pid} used twice")
        ids.add(pid)
        grid = panel.get("gridPos", {})
        if not all(isinstance(grid.get(k), int) for k in ("x", "y", "w", "h")):
            problems.append(f"panel {title!r}: gridPos needs integer x, y, w, h")
            continue
        if grid["x"] < 0 or grid["w"] < 1 or grid["x"] + grid["w"] > GRID_COLUMNS:
            problems.append(f"panel {title!r}: outside the {GRID_COLUMNS}-column grid")
        for other_title, other in placed:
            if overlaps(grid, other):
                problems.append(f"panels {other_title!r} and {title!r} overlap")
        placed.append((title, grid))
        if panel.get("type") == "row":
            continue
        if panel.get("datasource", {}).get("uid") != DATASOURCE_UID:
            problems.append(f"panel {title!r}: datasource is not {DATASOURCE_UID}")
        targets = panel.get("targets", [])
        if not targets:
            problems.append(f"panel {title!r}: no queries")
        refs = [t.get("refId") for t in targets]
        if len(set(refs)) != len(refs):
            problems.append(f"panel {title!r}: refIds {refs} repeat")
        for target in targets:
            if target.get("datasource", {}).get("uid") != DATASOURCE_UID:
                problems.append(f"panel {title!r} {target.get('refId')}: datasource is not {DATASOURCE_UID}")
            expr = (target.get("expr") or "").strip()
            if not expr:
                problems.append(f"panel {title!r} {target.get('refId')}: empty expression")
            else:
                exprs.append((title, target.get("refId"), expr))
    return problems, exprs


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    path, out = sys.argv[1:]
    try:
        with open(path, encoding="utf-8") as f:
            dashboard = json.load(f)
    except (OSError, ValueError) as e:
        fail([f"{path}: {e}"])
    problems, exprs = check(dashboard)
    if problems:
        fail(problems)
    with open(out, "w", encoding="utf-8") as f:
        f.write(f"# The queries of {path}, for promtool check rules.\ngroups:\n  - name: dashboard\n    rules:\n")
        for i, (title, ref, expr) in enumerate(exprs):
            f.write(f"      # {title} {ref}\n      - record: dashboard:query_{i}\n")
            f.write(f"        expr: {json.dumps(promql(expr))}\n")
    print(f"dashboard: {path}: {len(dashboard['panels'])} panels, {len(exprs)} queries, grid and data sources ok")


if __name__ == "__main__":
    main()
