#!/usr/bin/env bash
# Validate every Kubernetes manifest ferry ships against the Kubernetes 1.33 schemas, offline:
# `kubectl kustomize` renders each kustomization under deploy/ and kubernetes-validate (PyPI,
# installed into a throw-away venv) checks the result with --strict (unknown fields fail).
# kubectl is the one scripts/testenv.sh builds from the pinned Kubernetes release (Debian's is
# 1.20, whose built-in kustomize is too old for deploy/).
# A stage of scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
KUBERNETES_VALIDATE_VERSION=1.37.0
scripts/install-deps.sh
scripts/testenv.sh build
kubectl="$(scripts/testenv.sh bin)/kubectl"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install -q --disable-pip-version-check \
  "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION"
# A kustomize Component cannot be rendered on its own (its patches need the resources they
# patch): each is validated composed onto deploy/base, through a throw-away kustomization whose
# paths are relative (kustomize refuses absolute ones).
render() {
  local dir=$1
  if grep -q '^kind: Component' "$dir/kustomization.yaml"; then
    local with="$work/with-$(basename "$dir")"
    mkdir -p "$with"
    printf 'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - %s\ncomponents:\n  - %s\n' \
      "$(realpath --relative-to="$with" deploy/base)" "$(realpath --relative-to="$with" "$dir")" \
      >"$with/kustomization.yaml"
    "$kubectl" kustomize "$with"
  else
    "$kubectl" kustomize "$dir"
  fi
}
found=0
while IFS= read -r kustomization; do
  dir=$(dirname "$kustomization")
  echo "validating $dir (kubectl kustomize | kubernetes-validate -k 1.33 --strict)"
  render "$dir" >"$work/rendered.yaml"
  "$work/venv/bin/kubernetes-validate" -k 1.33 --strict "$work/rendered.yaml"
  found=$((found + 1))
done < <(find deploy -name kustomization.yaml | sort)
[ "$found" -gt 0 ] || { echo "validate-manifests: no kustomization.yaml under deploy/" >&2; exit 1; }
echo "$found kustomization(s) valid"
