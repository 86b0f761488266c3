#!/usr/bin/env python3
"""Validate rendered Kubernetes manifests (kustomize build / helm template output).

Run by scripts/validate-deploy inside its tool venv (kubernetes-validate, PyYAML, jsonschema).

Every document of every file is checked:

1. Against the Kubernetes JSON schemas bundled in kubernetes-validate, strict (unknown fields
   are errors), for each --k8s version. A kind with no bundled schema is an error, except the
   CRDs listed in CRD_SCHEMAS, which are checked against the small schemas committed in
   deploy/schemas/ (kubernetes-validate only warns about unknown kinds; we never let one pass
   unchecked).
2. Against rocketgate's deployment rules, for every pod template with a container named
   "rocketgate": port 4180 named http; liveness /ping, readiness /ready, a startup probe; the
   hardened securityContext; resource requests and limits; a native sidecar has
   restartPolicy Always; the mounted config parses as TOML, listens on 0.0.0.0:4180 and reads
   its secrets from files under a mounted Secret; terminationGracePeriodSeconds is larger than
   shutdown_delay + shutdown_timeout of that config.
3. With --require-checksums (Helm): the pod template carries checksum/config and
   checksum/secret annotations.
4. With --same-container: the rocketgate container is identical in every file given (minus
   the native sidecar's restartPolicy), so the overlays cannot drift apart.

Prints one line per file and a last line "validated N manifests"; exits 1 on any problem.
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import sys
import tomllib
from pathlib import Path

import jsonschema
import yaml
from kubernetes_validate import utils as kv

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schemas"
# (apiVersion, kind) -> committed JSON schema for CRDs kubernetes-validate does not know.
CRD_SCHEMAS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): "servicemonitor-monitoring.coreos.com-v1.json",
}
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}
# rocketgate's defaults (config/rocketgate.toml), used when the shipped config omits them.
DEFAULT_SHUTDOWN_DELAY = 5.0
DEFAULT_SHUTDOWN_TIMEOUT = 30.0

UNITS = {
    "ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1, "sec": 1, "secs": 1, "m": 60, "min": 60,
    "mins": 60, "h": 3600, "hr": 3600, "hrs": 3600, "d": 86400, "days": 86400,
}


def seconds(text: str) -> float:
    """A humantime duration ("5s", "1m 30s", "300ms") in seconds."""
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*([a-z]+)", text)
    if not parts or "".join(n + u for n, u in parts) != re.sub(r"\s+", "", text):
        raise ValueError(f"not a duration: {text!r}")
    return sum(float(n) * UNITS[u] for n, u in parts)


class Problems:
    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, where: str, what: str) -> None:
        self.items.append(f"{where}: {what}")


def load_documents(path: Path) -> list[dict]:
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    for d in docs:
        if not isinstance(d, dict):
            raise SystemExit(f"{path}: a document is not a mapping")
    return docs


def name_of(doc: dict) -> str:
    return f"{doc.get('kind', '?')}/{(doc.get('metadata') or {}).get('name', '?')}"


def check_schema(doc: dict, versions: list[str], where: str, problems: Problems) -> None:
    key = (doc.get("apiVersion"), doc.get("kind"))
    if key in CRD_SCHEMAS:
        schema = json.loads((SCHEMA_DIR / CRD_SCHEMAS[key]).read_text())
        validator = jsonschema.Draft202012Validator(schema)
        for err in sorted(validator.iter_errors(doc), key=lambda e: list(e.path)):
            path = ".".join(str(p) for p in err.path)
            problems.add(where, f"{path}: {err.message} (schema deploy/schemas/{CRD_SCHEMAS[key]})")
        return
    for version in versions:
        try:
            kv.validate(doc, version, strict=True)
        except kv.ValidationError as err:
            path = ".".join(str(p) for p in err.path)
            problems.add(where, f"Kubernetes {err.version}: {path}: {err.message}")
        except kv.SchemaNotFoundError as err:
            problems.add(where, f"no schema for {doc.get('apiVersion')} {doc.get('kind')} in "
                                f"Kubernetes {err.version} (a typo, or a CRD without a schema "
                                "in deploy/schemas/)")


def pod_templates(doc: dict):
    kind = doc.get("kind")
    if kind in WORKLOAD_KINDS:
        yield (doc.get("spec") or {}).get("template") or {}
    elif kind == "CronJob":
        yield (((doc.get("spec") or {}).get("jobTemplate") or {}).get("spec") or {}).get("template") or {}
    elif kind == "Pod":
        yield doc


def find_rocketgate(pod_spec: dict):
    for field in ("initContainers", "containers"):
        for c in pod_spec.get(field) or []:
            if c.get("name") == "rocketgate":
                return field, c
    return None, None


def probe_path(probe: dict | None) -> str | None:
    return ((probe or {}).get("httpGet") or {}).get("path")


def check_rocketgate(template: dict, docs: list[dict], where: str, problems: Problems,
                     require_checksums: bool):
    spec = template.get("spec") or {}
    field, c = find_rocketgate(spec)
    if c is None:
        return None
    if field == "initContainers" and c.get("restartPolicy") != "Always":
        problems.add(where, "rocketgate in initContainers needs restartPolicy: Always (native sidecar)")
    ports = {p.get("name"): p.get("containerPort") for p in c.get("ports") or []}
    if ports.get("http") != 4180:
        problems.add(where, "rocketgate must expose containerPort 4180 named http")
    for probe, path in (("livenessProbe", "/ping"), ("readinessProbe", "/ready"), ("startupProbe", None)):
        got = probe_path(c.get(probe))
        if c.get(probe) is None:
            problems.add(where, f"rocketgate has no {probe}")
        elif path and got != path:
            problems.add(where, f"rocketgate {probe} must GET {path}, not {got}")
        elif (c[probe].get("httpGet") or {}).get("port") not in ("http", 4180):
            problems.add(where, f"rocketgate {probe} must use the http port (4180)")
    sc = c.get("securityContext") or {}
    pod_sc = spec.get("securityContext") or {}
    if sc.get("runAsNonRoot") is not True and pod_sc.get("runAsNonRoot") is not True:
        problems.add(where, "rocketgate needs runAsNonRoot: true")
    if sc.get("readOnlyRootFilesystem") is not True:
        problems.add(where, "rocketgate needs readOnlyRootFilesystem: true")
    if sc.get("allowPrivilegeEscalation") is not False:
        problems.add(where, "rocketgate needs allowPrivilegeEscalation: false")
    if "ALL" not in ((sc.get("capabilities") or {}).get("drop") or []):
        problems.add(where, "rocketgate must drop ALL capabilities")
    seccomp = (sc.get("seccompProfile") or pod_sc.get("seccompProfile") or {}).get("type")
    if seccomp != "RuntimeDefault":
        problems.add(where, "rocketgate needs seccompProfile RuntimeDefault")
    res = c.get("resources") or {}
    for part in ("requests", "limits"):
        for r in ("cpu", "memory"):
            if r not in (res.get(part) or {}):
                problems.add(where, f"rocketgate has no resources.{part}.{r}")
    image = c.get("image") or ""
    if image.endswith(":latest") or ":" not in image.rsplit("/", 1)[-1]:
        problems.add(where, f"rocketgate image must have a pinned tag, got {image!r}")
    if require_checksums:
        annotations = (template.get("metadata") or {}).get("annotations") or {}
        for a in ("checksum/config", "checksum/secret"):
            if not re.fullmatch(r"[0-9a-f]{64}", str(annotations.get(a, ""))):
                problems.add(where, f"pod template lacks a sha256 {a} annotation")

    # The configuration the container reads.
    mounts = {m.get("name"): m.get("mountPath") for m in c.get("volumeMounts") or []}
    volumes = {v.get("name"): v for v in spec.get("volumes") or []}
    args = c.get("args") or []
    config_path = None
    if "--config" in args and args.index("--config") + 1 < len(args):
        config_path = args[args.index("--config") + 1]
    for e in c.get("env") or []:
        if e.get("name") == "ROCKETGATE_CONFIG" and config_path is None:
            config_path = e.get("value")
    if not config_path:
        problems.add(where, "rocketgate gets no --config (or ROCKETGATE_CONFIG)")
        return None
    toml_text = None
    secret_dirs = []
    for vname, mpath in mounts.items():
        vol = volumes.get(vname) or {}
        if "secret" in vol:
            secret_dirs.append(mpath.rstrip("/") + "/")
        if "configMap" in vol and config_path.startswith(mpath.rstrip("/") + "/"):
            key = config_path[len(mpath.rstrip("/")) + 1:]
            cm_name = vol["configMap"].get("name")
            for d in docs:
                if d.get("kind") == "ConfigMap" and d["metadata"].get("name") == cm_name:
                    toml_text = (d.get("data") or {}).get(key)
    if toml_text is None:
        problems.add(where, f"{config_path} is not a key of a ConfigMap in this rendering")
        return None
    try:
        cfg = tomllib.loads(toml_text)
    except tomllib.TOMLDecodeError as err:
        problems.add(where, f"{config_path}: not valid TOML: {err}")
        return None
    if cfg.get("listen") != "0.0.0.0:4180":
        problems.add(where, f"{config_path}: listen must be 0.0.0.0:4180 in a container, got {cfg.get('listen')!r}")
    for section, key in (("provider", "client_secret_file"), ("cookie", "secret_file")):
        path = (cfg.get(section) or {}).get(key)
        if not path:
            problems.add(where, f"{config_path}: {section}.{key} must be set (secrets come from a mounted Secret)")
        elif not any(path.startswith(d) for d in secret_dirs):
            problems.add(where, f"{config_path}: {section}.{key} = {path} is not under a mounted Secret")
    for section, key in (("session", "redis_url_file"), ("session", "redis_password_file"), ("admin", "token_file")):
        path = (cfg.get(section) or {}).get(key)
        if path and not any(path.startswith(d) for d in secret_dirs):
            problems.add(where, f"{config_path}: {section}.{key} = {path} is not under a mounted Secret")
    if (cfg.get("session") or {}).get("store", "cookie") not in ("cookie", "redis"):
        problems.add(where, f"{config_path}: session.store must be cookie or redis")
    try:
        budget = seconds(cfg.get("shutdown_delay", "5s")) + seconds(cfg.get("shutdown_timeout", "30s"))
    except (ValueError, KeyError) as err:
        problems.add(where, f"{config_path}: {err}")
        return None
    grace = spec.get("terminationGracePeriodSeconds", 30)
    if not grace > budget:
        problems.add(where, f"terminationGracePeriodSeconds {grace} must exceed shutdown_delay + "
                            f"shutdown_timeout = {budget:g}s")
    return c


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--k8s", action="append", required=True, help="Kubernetes version (repeat)")
    ap.add_argument("--require-checksums", action="store_true")
    ap.add_argument("--same-container", action="store_true")
    ap.add_argument("--expect-rocketgate", action="store_true",
                    help="fail a file that has no pod template with a rocketgate container")
    ap.add_argument("files", nargs="+", type=Path)
    args = ap.parse_args()

    problems = Problems()
    total = 0
    containers: dict[str, dict] = {}
    for path in args.files:
        docs = load_documents(path)
        if not docs:
            problems.add(str(path), "renders no manifests")
        found = 0
        for doc in docs:
            where = f"{path} {name_of(doc)}"
            for f in ("apiVersion", "kind"):
                if f not in doc:
                    problems.add(where, f"no {f}")
            if not (doc.get("metadata") or {}).get("name"):
                problems.add(where, "no metadata.name")
            check_schema(doc, args.k8s, where, problems)
            for template in pod_templates(doc):
                c = check_rocketgate(template, docs, where, problems, args.require_checksums)
                if c is not None:
                    found += 1
                    c = copy.deepcopy(c)
                    c.pop("restartPolicy", None)
                    containers[str(path)] = c
        if args.expect_rocketgate and not found:
            problems.add(str(path), "no pod template with a rocketgate container")
        kinds = sorted({d.get("kind", "?") for d in docs})
        print(f"  {path}: {len(docs)} manifests ({', '.join(kinds)})")
        total += len(docs)
    if args.same_container and len(containers) > 1:
        (first_file, first), *rest = containers.items()
        for other_file, other in rest:
            if other != first:
                problems.add(other_file, f"the rocketgate container differs from the one in {first_file}")
    for p in problems.items:
        print(f"ERROR {p}")
    if problems.items:
        print(f"{len(problems.items)} problem(s) in {total} manifests")
        return 1
    print(f"validated {total} manifests")
    return 0


if __name__ == "__main__":
    sys.exit(main())
