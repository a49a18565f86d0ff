#!/usr/bin/env bash
# Stages the `hearth` binaries the add-on's Dockerfile copies:
# bin/amd64/hearth and bin/aarch64/hearth, release builds from this
# repository (aarch64 cross-built with Debian's gcc-aarch64-linux-gnu, see
# .cargo/config.toml). Then copy this folder to the HA host's /addons/hearth
# (Settings → Add-ons → Add-on store → ⋮ → Check for updates → Local add-ons).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$here/../.."
cd "$root"
for pair in amd64:x86_64-unknown-linux-gnu aarch64:aarch64-unknown-linux-gnu; do
  arch="${pair%%:*}"
  triple="${pair#*:}"
  rustup target add "$triple"
  cargo build --release --locked --target "$triple" -p hearth
  install -D -m 0755 "target/$triple/release/hearth" "$here/bin/$arch/hearth"
done
ls -l "$here"/bin/*/hearth
