#!/usr/bin/env bash
# kubejudge on kind:
#   scripts/kind.sh up     create the cluster (kind-config.yaml), build and load the images, install
#                          kube-prometheus-stack (KIND_MONITORING=0 skips it) and the chart, apply
#                          examples/judgecluster.yaml, and print how to reach the api, page and Grafana
#   scripts/kind.sh down   delete the cluster
# Needs kind, kubectl, helm and docker or podman. Idempotent: `up` again upgrades in place.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

CLUSTER="kubejudge"  # the name in kind-config.yaml
NAMESPACE="${KIND_NAMESPACE:-kubejudge}"
TAG="${IMAGE_TAG:-dev}"
MONITORING="${KIND_MONITORING:-1}"
KPS_VERSION="${KPS_VERSION:-75.15.1}"
JUDGE="judge"  # metadata.name in examples/judgecluster.yaml

need() {
  for tool in "$@"; do
    command -v "$tool" >/dev/null || { echo "kind.sh: $tool is not installed" >&2; exit 2; }
  done
}

up() {
  need kind kubectl helm
  local built engine
  built="$(scripts/images.sh "$TAG")"
  engine="$(tail -n 1 <<<"$built")"
  if [[ "$engine" == podman ]]; then
    export KIND_EXPERIMENTAL_PROVIDER=podman
  fi
  if ! kind get clusters | grep -qx "$CLUSTER"; then
    kind create cluster --config kind-config.yaml --wait 120s
  fi
  kubectl config use-context "kind-$CLUSTER" >/dev/null
  # Every role's image and the managed stores' (the lines before the engine's).
  while IFS= read -r image; do
    kind load docker-image --name "$CLUSTER" "$image"
  done < <(head -n -1 <<<"$built")

  local monitors=()
  if [[ "$MONITORING" == 1 ]]; then
    helm repo add prometheus-community https://prometheus-community.github.io/helm-charts >/dev/null
    helm repo update prometheus-community >/dev/null
    # Select every ServiceMonitor/PodMonitor/PrometheusRule, and load dashboards from any namespace.
    helm upgrade --install kps prometheus-community/kube-prometheus-stack \
      --version "$KPS_VERSION" --namespace monitoring --create-namespace --wait --timeout 10m \
      --set prometheus.prometheusSpec.serviceMonitorSelectorNilUsesHelmValues=false \
      --set prometheus.prometheusSpec.podMonitorSelectorNilUsesHelmValues=false \
      --set prometheus.prometheusSpec.ruleSelectorNilUsesHelmValues=false \
      --set grafana.sidecar.dashboards.searchNamespace=ALL
    monitors=(--set metrics.serviceMonitor.enabled=true --set metrics.podMonitor.enabled=true
              --set prometheusRule.enabled=true)
  fi

  helm upgrade --install kubejudge charts/kubejudge --namespace "$NAMESPACE" --create-namespace \
    --wait --timeout 5m \
    --set images.operator.tag="$TAG" --set images.api.tag="$TAG" \
    --set images.gateway.tag="$TAG" --set images.worker.tag="$TAG" \
    "${monitors[@]}"
  kubectl apply --namespace "$NAMESPACE" -f examples/judgecluster.yaml
  echo "waiting for the JudgeCluster's api and gateway..." >&2
  for component in api gateway; do
    until kubectl -n "$NAMESPACE" get deployment "$JUDGE-$component" >/dev/null 2>&1; do sleep 2; done
    kubectl -n "$NAMESPACE" rollout status "deployment/$JUDGE-$component" --timeout=10m
  done

  cat <<INFO

kubejudge is up on kind (cluster $CLUSTER, namespace $NAMESPACE).

  api and page:  kubectl -n $NAMESPACE port-forward svc/$JUDGE-api 2358:2358
                 then open http://127.0.0.1:2358/   (Judge0 API on the same port, docs at /docs)
  WebSocket:     kubectl -n $NAMESPACE port-forward svc/$JUDGE-gateway 2359:2359
  status:        kubectl -n $NAMESPACE get jc $JUDGE -w
INFO
  if [[ "$MONITORING" == 1 ]]; then
    cat <<INFO
  Grafana:       kubectl -n monitoring port-forward svc/kps-grafana 3000:80
                 then open http://127.0.0.1:3000/  (user admin, password:
                 kubectl -n monitoring get secret kps-grafana -o jsonpath='{.data.admin-password}' | base64 -d)
                 dashboard "kubejudge / overview"
INFO
  fi
  cat <<INFO
  load test:     KUBEJUDGE_JWT_SECRET=\$(kubectl -n $NAMESPACE get secret kubejudge-jwt -o jsonpath='{.data.key}' | base64 -d) \\
                 kubejudge loadtest --burst 200 --work-s 1 --judgecluster $NAMESPACE/$JUDGE
INFO
}

down() {
  need kind
  kind delete cluster --name "$CLUSTER"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  *) echo "usage: scripts/kind.sh up|down" >&2; exit 2 ;;
esac
