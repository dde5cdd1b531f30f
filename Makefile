# kubejudge: `make demo` runs the whole judge on this machine, `make test` runs every test tier.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint unit install system-deps controlplane-build \
        controlplane-up controlplane-down cluster-up cluster-down bench clean images kind-up kind-down

# DEMO_ARGS: more `kubejudge dev` options, e.g. DEMO_ARGS="--api-port 8358 --gateway-port 8359".
demo: install
	$(VENV)/bin/kubejudge dev $(DEMO_ARGS)

test: install lint controlplane-build
	$(PY) -m pytest tests

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

unit: install
	$(PY) -m pytest tests/unit

install: system-deps $(STAMP)

system-deps:
	@scripts/install-system-deps.sh

# Every distribution, editable: the core (.), each role, and the development tools with the
# test tools. An image installs only the core and its own role (images/Dockerfile).
DISTRIBUTIONS := . images/api images/gateway images/worker operator devtools
$(STAMP): $(addsuffix /pyproject.toml,$(DISTRIBUTIONS))
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip==26.3
	$(PY) -m pip install -q $(addprefix -e ,$(filter-out devtools,$(DISTRIBUTIONS))) -e 'devtools[test]'
	touch $(STAMP)

controlplane-build:
	tests/controlplane/build.sh

controlplane-up: controlplane-build
	tests/controlplane/start.sh .controlplane

controlplane-down:
	tests/controlplane/stop.sh .controlplane

# A real single-node cluster (tests/node/README.md), as root; state and kubeconfig in .cluster/.
cluster-up:
	tests/node/start.sh .cluster

cluster-down:
	tests/node/stop.sh .cluster

# Every image of images/Dockerfile: with docker or podman, else with buildah on bases made here,
# imported into a `make cluster-up` node when one runs (scripts/images.sh). IMAGE_TAG=dev
# matches examples/judgecluster.yaml.
IMAGE_TAG ?= dev
images: system-deps
	scripts/images.sh $(IMAGE_TAG)

# A kind cluster with the images, the chart, kube-prometheus-stack (KIND_MONITORING=0 skips it)
# and examples/judgecluster.yaml; prints how to reach the api, the page and Grafana.
kind-up:
	IMAGE_TAG=$(IMAGE_TAG) scripts/kind.sh up

kind-down:
	scripts/kind.sh down

bench: install
	for b in bench/*.py; do $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) .controlplane .kubejudge .cluster
