#!/usr/bin/env bash
# System packages the workspace needs to build that cargo cannot fetch, installed with apt-get
# (as root, or through sudo) when missing. Quick and silent when everything is there; run
# before any cargo build by .ci/run, scripts/test.sh and scripts/dev-stack.sh (hence demo.sh
# and bench.sh).
#
#   - libssl-dev + pkg-config: librdkafka is built with OpenSSL (rdkafka's `ssl` feature, for
#     security.protocol SSL / SASL_SSL and SASL SCRAM) and `rediss://` uses native-tls, both
#     against the system OpenSSL that openssl-sys finds through pkg-config;
#   - zlib1g-dev, make, a C compiler: librdkafka itself (compiled from source by rdkafka-sys);
#   - openssl (the command): the TLS tests make throwaway certificates with it.
set -euo pipefail

say() { printf 'build-deps: %s\n' "$*"; }

missing=()
command -v pkg-config >/dev/null || missing+=(pkg-config)
if command -v pkg-config >/dev/null; then
  pkg-config --exists openssl || missing+=(libssl-dev)
  pkg-config --exists zlib || missing+=(zlib1g-dev)
else
  missing+=(libssl-dev zlib1g-dev)
fi
command -v make >/dev/null || missing+=(make)
command -v cc >/dev/null || missing+=(gcc)
command -v openssl >/dev/null || missing+=(openssl)

[ ${#missing[@]} -eq 0 ] && exit 0

"$(dirname "${BASH_SOURCE[0]}")/apt-install.sh" build-deps "${missing[@]}"
