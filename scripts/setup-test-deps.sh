#!/usr/bin/env bash
# Installs the Debian packages some tests need, only those missing; safe to run again and again.
# Tests that need a package it could not install skip and say why, so a machine without root still runs the rest.
set -euo pipefail

# Debian packages the tests need, with the command that shows each is present ("-" to check with dpkg only).
# Add a line per package; keep the reason next to it.
PACKAGES=(
  "chromium chromium"   # test/sim/report.browser.test.ts: screenshots of the `sim --report` page
  # test/harness (src/harness): the real-OS harness for the node agent, apt/dpkg and dnf/rpm side by side.
  "debootstrap debootstrap"          # builds the Debian bookworm node image
  "apt-utils apt-ftparchive"         # publishes the local apt repository (Packages, Release)
  "dpkg-dev dpkg-scanpackages"       # dpkg-deb options and helpers for the synthetic .debs
  "socat socat"                      # unix-socket bridge from a node's loopback to the host's repository server
  "dnf dnf"                          # the RPM node's package manager
  "rpm rpmbuild"                     # rpmbuild for the synthetic RPMs
  "createrepo-c createrepo_c"        # RPM repository metadata (+ modifyrepo_c for updateinfo.xml)
  "dnf-plugins-core -"               # needs-restarting, versionlock
  "zstd zstd"                        # the cached node image is a .tar.zst
  "gnupg gpg"                        # signs the local apt repository
  "iproute2 ip"                      # brings a node namespace's loopback up
  "util-linux unshare"               # unshare --mount --pid --net
  "python3 python3"                  # the loopback repository server (http.server)
  # kubectl against the simulator's sandbox API and the kind/k3s suites' clusters. Checked by command, so a kubectl
  # from anywhere else (a CI image, kind's tooling) is kept and Debian's older client is only the fallback.
  "kubernetes-client kubectl"
  # A Kubernetes client no one here wrote, driving the sandbox (test/clients). Its module belongs to /usr/bin/python3.
  "python3-kubernetes -"
  # A real Prometheus: scrapes /metrics and evaluates alert rules (blockers, metrics tests); promtool checks deploy/'s rules.
  "prometheus prometheus"
)

missing=()
for entry in "${PACKAGES[@]}"; do
  read -r package command <<<"$entry"
  if [[ "$command" != "-" ]] && command -v "$command" >/dev/null 2>&1; then continue; fi
  if dpkg -s "$package" >/dev/null 2>&1; then continue; fi
  missing+=("$package")
done

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "setup-test-deps: all present (${PACKAGES[*]%% *})"
  exit 0
fi

if [[ $(id -u) -eq 0 ]]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  as_root=(sudo -n)
else
  echo "setup-test-deps: not root and no passwordless sudo; these packages are missing: ${missing[*]}"
  echo "  install them with: sudo apt-get update && sudo apt-get install -y --no-install-recommends ${missing[*]}"
  echo "  (tests that need them will be skipped)"
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "setup-test-deps: apt-get not found (not Debian/Ubuntu?); install these yourself: ${missing[*]}"
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive
install() { "${as_root[@]}" apt-get install -y --no-install-recommends "${missing[@]}"; }
echo "setup-test-deps: installing ${missing[*]}"
# The package lists are usually fresh enough; refresh them only when the first attempt fails.
if install; then
  echo "setup-test-deps: installed ${missing[*]}"
  exit 0
fi
"${as_root[@]}" apt-get update
if install; then
  echo "setup-test-deps: installed ${missing[*]}"
  exit 0
fi
# One package this distribution lacks (Ubuntu has no `chromium` deb, only a snap) must not cost all the others.
failed=()
for package in "${missing[@]}"; do
  "${as_root[@]}" apt-get install -y --no-install-recommends "$package" || failed+=("$package")
done
if [[ ${#failed[@]} -eq 0 ]]; then
  echo "setup-test-deps: installed ${missing[*]}"
else
  echo "setup-test-deps: could not install ${failed[*]} (tests that need them will be skipped)"
fi
