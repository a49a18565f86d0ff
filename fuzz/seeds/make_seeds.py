#!/usr/bin/env python3
"""Writes the committed seed corpora (fuzz/corpus/<target>/): small inputs
in each parser's real format, from the protocols' documentation and the
payloads Hearth's own tests and twin use. Run from fuzz/; idempotent."""
import hashlib, json, os, shutil, struct

ROOT = os.path.dirname(os.path.abspath(__file__)) + "/.."
C = ROOT + "/corpus"

def put(target, name, data):
    d = f"{C}/{target}"
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    open(f"{d}/{name}", "wb").write(data)

def copy(target, path, name=None):
    src = f"{ROOT}/../{path}"
    put(target, name or os.path.basename(path), open(src, "rb").read())

# ESP32 node: topic \n payload.
put("esp32_node", "announce", 'hearth-node/house/announce\n' + json.dumps({
    "id": "house", "name": "House", "model": "ESP32-C3 sensor node", "sw_version": "0.1.0",
    "sensors": ["temperature", "humidity", "rssi", "uptime"], "interval_s": 30,
    "valve": {"travel_s": 120}}))
put("esp32_node", "telemetry", 'hearth-node/house/telemetry\n{"temperature":21.5,"humidity":40.2,"rssi":-61,"uptime":3600}')
put("esp32_node", "telemetry_late", 'hearth-node/house/telemetry\n{"temperature":20.1,"age_ms":90000}')
put("esp32_node", "valve_state", 'hearth-node/house/valve/state\n{"position":40,"target":70}')
put("esp32_node", "status", 'hearth-node/house/status\nonline')

# Tasmota strip: first byte picks the outlet count; topic-level \n text.
put("tasmota", "result", '{"POWER1":"ON","POWER2":"OFF","POWER3":"ON"}')
put("tasmota", "state", '{"Time":"2026-01-01T00:00:00","Uptime":"0T01:00:00","POWER1":"ON","POWER2":"ON","POWER3":"OFF","POWER4":"ON","Wifi":{"RSSI":70}}')
put("tasmota", "sensor_per_channel", '{"Time":"2026-01-01T00:00:00","ENERGY":{"Total":[1.2,0.5,0.0],"Power":[60,12,0],"Current":[0.27,0.02,0.0],"Voltage":230}}')
put("tasmota", "sensor_total", '{"ENERGY":{"Total":3.25,"Power":150,"Current":0.65}}')
put("tasmota", "power_topic", 'POWER2\nON')

# Shelly Gen1: topic \n payload (base shellies/plug), or an HTTP body.
put("shelly_gen1", "relay", 'shellies/plug/relay/0\non')
put("shelly_gen1", "power", 'shellies/plug/relay/0/power\n60.25')
put("shelly_gen1", "energy", 'shellies/plug/relay/0/energy\n12345')
put("shelly_gen1", "emeter", 'shellies/plug/emeter/1/power\n-512.3')
put("shelly_gen1", "online", 'shellies/plug/online\ntrue')
put("shelly_gen1", "status", '{"relays":[{"ison":true,"has_timer":false,"timer_started":0,"timer_duration":0,"overpower":false,"source":"http"}],"meters":[{"power":60.25,"overpower":0.0,"is_valid":true,"timestamp":1765000000,"counters":[60.1,60.0,59.9],"total":7200}]}')
put("shelly_gen1", "status_em", '{"relays":[{"ison":false}],"emeters":[{"power":-512.3,"reactive":0,"voltage":231.2,"is_valid":true,"total":1234.5,"total_returned":10.0},{"power":0,"voltage":231,"is_valid":false,"total":0,"total_returned":0}]}')
put("shelly_gen1", "shelly", '{"type":"SHPLG-S","mac":"A4CF12F4A1B2","auth":false,"fw":"20230913-112003/v1.14.0-gcb84623","num_outputs":1,"num_meters":1}')

# Shelly Gen2 (first byte picks the switch count).
put("shelly_gen2", "notify_status", '{"src":"shellyplugs-1","dst":"hearth","method":"NotifyStatus","params":{"ts":1765000000.5,"switch:0":{"id":0,"output":true,"apower":60.2,"voltage":230.1,"current":0.27,"aenergy":{"total":1234.5}}}}')
put("shelly_gen2", "notify_full", '{"src":"pro4pm","dst":"hearth","method":"NotifyFullStatus","params":{"switch:0":{"id":0,"output":false,"apower":0,"voltage":230,"current":0,"aenergy":{"total":1.0},"temperature":{"tC":41.2}},"switch:1":{"id":1,"output":true,"apower":100,"voltage":230,"current":0.44,"aenergy":{"total":2.0},"errors":["overpower"]}}}')
put("shelly_gen2", "response", '{"id":7,"src":"shellyplugs-1","dst":"hearth","result":{"id":0,"source":"init","output":true,"apower":60.2,"voltage":230.1,"current":0.27,"aenergy":{"total":1234.5,"by_minute":[0,0,0],"minute_ts":1765000000}}}')
put("shelly_gen2", "response_em", '{"id":3,"result":{"id":0,"a_current":1.2,"a_voltage":230.1,"a_act_power":250.5,"a_aprt_power":260,"a_pf":0.95,"b_current":0,"b_voltage":229,"b_act_power":0,"c_current":0,"c_voltage":231,"c_act_power":0,"total_current":1.2,"total_act_power":250.5,"total_aprt_power":260}}')
put("shelly_gen2", "response_em1", '{"id":4,"result":{"id":0,"current":1.2,"voltage":230.1,"act_power":250.5,"aprt_power":260,"pf":0.95,"total_act_energy":1234.5,"total_act_ret_energy":0.0}}')
put("shelly_gen2", "response_limits", '{"id":5,"result":{"id":0,"name":null,"in_mode":"follow","initial_state":"restore_last","auto_on":false,"auto_off":false,"power_limit":2500,"voltage_limit":280,"current_limit":12.0}}')
put("shelly_gen2", "error", '{"id":8,"src":"shellyplugs-1","error":{"code":-103,"message":"Invalid argument"}}')
put("shelly_gen2", "online", 'true')

# Meross: answers signed with the harness's key (hearth::fuzzing::meross).
MID, KEY, TS = "0123456789abcdef0123456789abcdef", "fuzz-key", 1765000000
sign = hashlib.md5(f"{MID}{KEY}{TS}".encode()).hexdigest()
def meross(method, ns, payload):
    return json.dumps({"header": {"from": "/appliance/x/publish", "messageId": MID, "method": method,
        "namespace": ns, "payloadVersion": 1, "sign": sign, "timestamp": TS}, "payload": payload})
put("meross", "system_all", meross("GETACK", "Appliance.System.All", {"all": {"system": {"hardware": {"type": "mss310", "version": "6.0.0", "macAddress": "48:e1:e9:00:00:01"}, "firmware": {"version": "6.1.8"}}, "digest": {"togglex": [{"channel": 0, "onoff": 1}]}}}))
put("meross", "ability", meross("GETACK", "Appliance.System.Ability", {"ability": {"Appliance.Control.ToggleX": {}, "Appliance.Control.Electricity": {}, "Appliance.Encrypt.ECDHE": {}}}))
put("meross", "electricity", meross("GETACK", "Appliance.Control.Electricity", {"electricity": {"channel": 0, "current": 270, "voltage": 2301, "power": 60250}}))
put("meross", "togglex", meross("SETACK", "Appliance.Control.ToggleX", {"togglex": [{"channel": 0, "onoff": 1}]}))
put("meross", "consumption", meross("GETACK", "Appliance.Control.ConsumptionX", {"consumptionx": [{"date": "2026-12-06", "time": 1765000000, "value": 1200}]}))
put("meross", "error", json.dumps({"header": {"method": "ERROR", "messageId": MID, "namespace": "Appliance.System.All", "timestamp": TS, "sign": sign}, "payload": {"error": {"code": 5001, "detail": "sign error"}}}))

# Broadlink: a discovery reply and a command reply (checksums right;
# the first byte's low bit also asks the harness to fix the checksum).
def csum(b):
    return (0xBEAF + sum(b)) & 0xFFFF
hello = bytearray(0x80)
hello[0x34:0x36] = struct.pack("<H", 0x6026)
hello[0x3a:0x40] = bytes([6, 5, 4, 3, 2, 1])
hello[0x40:0x40 + 6] = b"RM4 ir"
hello[0x20:0x22] = struct.pack("<H", csum(hello))
put("broadlink", "hello_reply", bytes(hello))
pkt = bytearray(0x38 + 32)
pkt[0:8] = bytes([0x5a, 0xa5, 0xaa, 0x55, 0x5a, 0xa5, 0xaa, 0x55])
pkt[0x24:0x26] = struct.pack("<H", 0x6026)
pkt[0x26:0x28] = struct.pack("<H", 0x3ee)
pkt[0x28:0x2a] = struct.pack("<H", 0x8001)
pkt[0x2a:0x30] = bytes([1, 2, 3, 4, 5, 6])
pkt[0] |= 0
pkt[0x20:0x22] = struct.pack("<H", csum(pkt))
put("broadlink", "command_reply", bytes(pkt))
put("broadlink", "rm4_frame", struct.pack("<HI", 10, 0xd0) + bytes([0x26, 0, 4, 0, 1, 2]))
put("broadlink", "mac", "01:02:03:04:05:06")

# WebSocket frames.
ws = {
 "call_service": {"id": 1, "type": "call_service", "domain": "switch", "service": "turn_on", "service_data": {"entity_id": "switch.heater"}, "target": {"area_id": ["kitchen"]}},
 "call_service_response": {"id": 2, "type": "call_service", "domain": "climate", "service": "set_temperature", "service_data": {"temperature": 21.5}, "target": {"entity_id": "climate.office"}, "return_response": False},
 "history": {"id": 3, "type": "history/history_during_period", "start_time": "2026-12-01T00:00:00Z", "end_time": "2026-12-02T00:00:00+01:00", "entity_ids": ["sensor.t"], "minimal_response": True, "no_attributes": True, "significant_changes_only": False},
 "subscribe_entities": {"id": 4, "type": "subscribe_entities", "entity_ids": ["sensor.a", "switch.b"]},
 "subscribe_events": {"id": 5, "type": "subscribe_events", "event_type": "state_changed"},
 "ping": {"id": 6, "type": "ping"},
}
for k, v in ws.items():
    put("websocket_frame", k, json.dumps(v))
put("websocket_frame", "batch", json.dumps([ws["ping"], ws["call_service"], {"id": 0, "type": ""}]))

# REST: entity id \n body.
put("rest_body", "post_state", 'sensor.laptop_battery\n{"state":"87","attributes":{"unit_of_measurement":"%","device_class":"battery","state_class":"measurement","friendly_name":"Laptop"}}')
put("rest_body", "post_binary", 'binary_sensor.door\n{"state":"on"}')
put("rest_body", "post_number", 'sensor.x\n{"state":21.5,"attributes":null}')
put("rest_body", "segment", 'sensor.server%5Froom\n')

# MQTT: topic \n payload.
put("mqtt_request", "plugin_list", 'list\n{"transaction":"t1"}')
put("mqtt_request", "plugin_load", 'load\n{"name":"thermostat","wasm":"builtin:thermostat","config":{"target":21}}')
put("mqtt_request", "switch_cmd", 'hearth/switch/heater/set\nON')
put("mqtt_request", "climate_cmd", 'hearth/climate/office/set\n{"temperature":22.5,"hvac_mode":"cool"}')
put("mqtt_request", "valve_cmd", 'hearth/valve/house/set\n70')
put("mqtt_request", "number_cmd", 'hearth/number/x/set\n12.5')
put("mqtt_request", "foreign_config", 'homeassistant/sensor/other_bridge/power/config\n{"name":"Power","unique_id":"ob_power","state_topic":"other/power/state","unit_of_measurement":"W","device_class":"power","value_template":"{{ value_json.power }}","device":{"identifiers":["ob"],"name":"Other"}}')

# Config files and scenarios: the repository's examples.
for f in ["examples/house.toml", "examples/plugs.toml", "examples/coworking.toml",
          "examples/server-room.toml", "deploy/hearth.docker.toml"]:
    copy("config", f)
for f in ["examples/scenarios/house.toml", "examples/scenarios/red-day.toml",
          "examples/scenarios/year.toml"]:
    copy("scenario", f)

# detect CSV.
put("detect_csv", "small", "timestamp,value\n2026-12-01T00:00:00Z,21.5\n2026-12-01T00:05:00Z,21.7\n2026-12-01 00:10:00,22\n2026-12-01T00:15:00+01:00,\n")
put("detect_csv", "nab", "timestamp,value\n2014-04-02 14:29:00,42.652\n2014-04-02 14:34:00,41.361\n")

# ICS.
for f in ["bridge/tests/fixtures/calendar/opening-hours.ics", "bridge/tests/fixtures/calendar/club-utc.ics",
          "bridge/tests/fixtures/calendar/special-days.ics", "examples/scenarios/coworking-hours.ics"]:
    copy("ics", f)

# Templates.
tpl = {
 "states": "{{ states('sensor.t') | float(0) + 1 }}",
 "loop": "{% for s in states.sensor %}{{ s.entity_id }}={{ s.state }};{% endfor %}",
 "now": "{{ now().hour }} {{ as_timestamp(now()) | int }} {{ today_at('08:00') }}",
 "filters": "{{ [1,2,3] | sum }} {{ 'a,b' | split(',') | list }} {{ value_json.x | default(3) | round(1) }} {{ 1.23456 | round(2) }} {{ 'x' | regex_replace('x', 'y') }}",
 "macro": "{% macro f(x) %}{{ x * 2 }}{% endmacro %}{{ f(21) }} {{ is_state('switch.a', 'on') }} {{ area_entities('kitchen') }}",
 "time": "{{ strptime('2026-12-01 10:00', '%Y-%m-%d %H:%M') }} {{ relative_time(now()) }} {{ (now() - timedelta(hours=1)).isoformat() }}",
}
for k, v in tpl.items():
    put("template", k, v)
