#!/usr/bin/with-contenv bashio
# Starts Hearth on Home Assistant's MQTT broker: the broker's address and
# credentials come from the Supervisor's services API (`services: mqtt:need`),
# the rest of the config from the add-on's options and /config/<devices_file>.
set -euo pipefail

bashio::services.available "mqtt" \
  || bashio::exit.nok "No MQTT service: install and start the Mosquitto broker add-on."

host="$(bashio::services mqtt "host")"
port="$(bashio::services mqtt "port")"
user="$(bashio::services mqtt "username")"
password="$(bashio::services mqtt "password")"
scheme="mqtt"
if bashio::var.true "$(bashio::services mqtt "ssl")"; then
  scheme="mqtts"
fi

data=/data/hearth
mkdir -p "$data"
umask 077
# The password stays out of the config file and the command line.
printf '%s\n' "$password" > /data/mqtt-password

# The user part of the URL, percent-encoded.
user_enc="$(jq -rn --arg u "$user" '$u|@uri')"
prefix="$(bashio::config 'discovery_prefix')"

config=/data/hearth.toml
{
  echo "# Written by the add-on's run.sh at every start; edit /config/$(bashio::config 'devices_file') instead."
  echo "data_dir = \"$data\""
  echo
  echo "[mqtt]"
  echo "url = \"${scheme}://${user_enc}@${host}:${port}\""
  echo "password = { file = \"/data/mqtt-password\" }"
  echo
  echo "[homeassistant]"
  echo "discovery_prefix = \"${prefix}\""
  echo
  echo "[http]"
  echo "# Ingress reaches the add-on on its container address."
  echo "bind = \"0.0.0.0\""
  echo "port = 8099"
} > "$config"

# Devices, plugins, [influxdb], [[alert]]…: the user's own TOML, appended
# (it must not repeat [mqtt], [homeassistant], [http] or data_dir).
if bashio::config.has_value 'devices_file'; then
  devices="/config/$(bashio::config 'devices_file')"
  if [ -f "$devices" ]; then
    bashio::log.info "Devices from ${devices}"
    { echo; cat "$devices"; } >> "$config"
  else
    bashio::log.info "No ${devices} yet: Hearth starts with no devices (see examples/*.toml)"
  fi
fi

bashio::log.info "Hearth on ${scheme}://${host}:${port} as ${user}"
exec hearth run --config "$config" --data-dir "$data" --log-level "$(bashio::config 'log_level')"
