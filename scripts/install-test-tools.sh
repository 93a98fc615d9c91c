#!/usr/bin/env bash
# Installs the external programs the integration tests talk to, from Debian's packages:
# the distribution registry, skopeo and umoci as independent judges, htpasswd and openssl for the
# registry's auth variants, busybox-static for a real shell in test images, buildah as the peer.
set -euo pipefail
PACKAGES=(docker-registry skopeo umoci apache2-utils openssl busybox-static tar gzip bzip2 xz-utils zstd bubblewrap proot util-linux runc crun buildah pigz time curl git openssh-server openssh-client)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""
  [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
