#!/bin/sh
# Host tests of the firmware's TLS and MQTT code against Mosquitto (needs
# mosquitto, mosquitto_passwd and openssl on PATH).
set -eu
cd "$(dirname "$0")"
host=$(rustc -vV | sed -n 's/^host: //p')
exec cargo test --locked --target "$host" "$@"
