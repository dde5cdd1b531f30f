"""The chart renders, lints, and every object it renders is valid: built-in kinds against the
Kubernetes schemas, JudgeClusters (the chart's and the example) against our CRD's schema."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from tests.chart.paths import ALL_FEATURES, CHART, KUBERNETES_VERSION, REPO, Render, run_helm

CRD = CHART / "crds" / "judgecluster.yaml"
EXAMPLE = REPO / "examples" / "judgecluster.yaml"
PROMETHEUS_OPERATOR = "monitoring.coreos.com/v1"


def judgecluster_schema() -> dict[str, Any]:
    crd = yaml.safe_load(CRD.read_text())
    (version,) = [v for v in crd["spec"]["versions"] if v["storage"]]
    return version["schema"]["openAPIV3Schema"]


def test_helm_lint_default_and_all_features(helm: str) -> None:
    run_helm(helm, "lint", "--strict", str(CHART))
    run_helm(helm, "lint", "--strict", str(CHART), "--values", str(ALL_FEATURES))


def test_every_rendered_object_is_valid(rendered: list[dict[str, Any]]) -> None:
    schema = judgecluster_schema()
    for obj in rendered:
        where = f"{obj['kind']}/{obj['metadata']['name']}"
        if obj["kind"] == "JudgeCluster":
            jsonschema.validate(obj, schema)
        elif obj["apiVersion"] == PROMETHEUS_OPERATOR:
            # No offline schema for the Prometheus Operator's CRDs: check what it requires.
            assert obj["spec"], where
        else:
            try:
                kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
            except kubernetes_validate.ValidationError as error:
                pytest.fail(f"{where}: {error.message} at {list(error.path)}")


def test_values_schema_refuses_bad_values(helm: str) -> None:
    for bad in ("operator.logLevel=LOUD", "imagePullPolicy=Sometimes", "judgeCluster.name=A_B"):
        result = subprocess.run(
            [helm, "template", "kj", str(CHART), "--set", bad],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode != 0 and "schema" in result.stderr, bad


def test_operator_deployment_is_single_and_recreated(render: Render) -> None:
    (deployment,) = [o for o in render() if o["kind"] == "Deployment"]
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    (container,) = pod["containers"]
    assert container["args"][0] == "operator"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}


def test_no_service_link_variable_reaches_the_operators_settings(render: Render) -> None:
    """Kubernetes puts <SERVICE>_PORT=tcp://... into every pod that keeps service links; the
    chart's own Service `kj-kubejudge-operator-metrics` would become
    KUBEJUDGE_OPERATOR_METRICS_PORT, a setting of the operator, which then refuses to start."""
    (deployment,) = [o for o in render() if o["kind"] == "Deployment"]
    assert deployment["spec"]["template"]["spec"]["enableServiceLinks"] is False


def test_crd_ships_from_the_crds_folder(render: Render) -> None:
    crds = [o for o in render() if o["kind"] == "CustomResourceDefinition"]
    assert crds == [yaml.safe_load(CRD.read_text())]


def test_watch_namespaces_bind_only_there(render: Render) -> None:
    objects = render(ALL_FEATURES)
    bindings = [o for o in objects if o["kind"] == "RoleBinding"]
    assert sorted(b["metadata"]["namespace"] for b in bindings) == ["judges", "judges-staging"]
    cluster_bindings = [o["roleRef"]["name"] for o in objects if o["kind"] == "ClusterRoleBinding"]
    assert cluster_bindings == ["kj-kubejudge-operator-observer"]


def test_example_judgecluster_matches_the_crd() -> None:
    if not EXAMPLE.exists():
        pytest.fail(f"{EXAMPLE.relative_to(REPO)} is missing")
    for obj in yaml.safe_load_all(EXAMPLE.read_text()):
        if obj and obj.get("kind") == "JudgeCluster":
            jsonschema.validate(obj, judgecluster_schema())


def test_dashboards_are_grafana_json_in_labelled_configmaps(render: Render) -> None:
    maps = [o for o in render() if o["kind"] == "ConfigMap"]
    assert maps, "no dashboard ConfigMap rendered"
    for config_map in maps:
        assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
        for name, text in config_map["data"].items():
            dashboard = json.loads(text)
            assert name.endswith(".json") and dashboard["uid"] and dashboard["panels"]
    assert len(list(Path(CHART / "dashboards").glob("*.json"))) == sum(len(m["data"]) for m in maps)
