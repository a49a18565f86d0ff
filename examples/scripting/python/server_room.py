#!/usr/bin/env python3
"""Script Hearth over Home Assistant's WebSocket API with plain `websockets`.

The same messages work against Home Assistant itself: authenticate with a
long-lived token, read every state (`get_states`), follow the server room's
temperature (`subscribe_events` for `state_changed`), and set the AC's
target (`call_service` `climate.set_temperature`).

    pip install -r requirements.txt
    HEARTH_TOKEN=<secret> python3 server_room.py            # watch, set the target once
    HEARTH_TOKEN=<secret> python3 server_room.py --check    # self-test: one JSON line, exit 0/1

Environment: HEARTH_URL (default http://127.0.0.1:8099), HEARTH_TOKEN
(`hearth token create --name me --data-dir hearth-data` prints one),
HEARTH_SENSOR and HEARTH_CLIMATE (the demo's entity ids by default).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import sys
from datetime import datetime

try:
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed, InvalidStatus, InvalidURI
except ImportError:  # pragma: no cover - tells the user what to do
    sys.exit("server_room.py needs websockets >= 13: pip install -r requirements.txt")

SENSOR = os.environ.get("HEARTH_SENSOR", "sensor.server_room_temperature")
CLIMATE = os.environ.get("HEARTH_CLIMATE", "climate.server_room_ac")


class HaError(Exception):
    """An error result: HA's `{"code", "message"}`."""

    def __init__(self, error: dict):
        self.code = error.get("code", "unknown_error")
        super().__init__(f"{self.code}: {error.get('message', '')}")


class Client:
    """HA's WebSocket protocol: the auth phase, then commands with
    increasing ids, their results, and events for subscriptions."""

    def __init__(self, ws):
        self.ws = ws
        self.ids = itertools.count(1)
        self.pending: dict[int, asyncio.Future] = {}
        self.subscriptions: dict[int, asyncio.Queue] = {}
        self.reader = asyncio.create_task(self._read())
        self.ha_version = "?"

    @classmethod
    async def connect(cls, url: str, token: str) -> "Client":
        ws = await connect(ws_url(url), max_size=16 * 1024 * 1024)
        hello = json.loads(await ws.recv())
        if hello.get("type") != "auth_required":
            raise RuntimeError(f"expected auth_required, got {hello}")
        await ws.send(json.dumps({"type": "auth", "access_token": token}))
        answer = json.loads(await ws.recv())
        if answer.get("type") != "auth_ok":
            raise PermissionError(answer.get("message", answer))
        client = cls(ws)
        client.ha_version = answer.get("ha_version", "?")
        return client

    async def _read(self) -> None:
        try:
            async for frame in self.ws:
                msg = json.loads(frame)
                # A server may join messages into one array (coalesce_messages,
                # only if asked for; harmless to accept).
                for m in msg if isinstance(msg, list) else [msg]:
                    self._dispatch(m)
        except ConnectionClosed:
            pass
        finally:
            for fut in self.pending.values():
                if not fut.done():
                    fut.set_exception(ConnectionError("connection closed"))
            for q in self.subscriptions.values():
                q.put_nowait(None)

    def _dispatch(self, m: dict) -> None:
        if m.get("type") == "event" and m.get("id") in self.subscriptions:
            self.subscriptions[m["id"]].put_nowait(m["event"])
        elif m.get("type") == "result":
            fut = self.pending.pop(m.get("id"), None)
            if fut and not fut.done():
                if m.get("success"):
                    fut.set_result(m.get("result"))
                else:
                    fut.set_exception(HaError(m.get("error") or {}))

    async def command(self, kind: str, **fields):
        msg_id = next(self.ids)
        fut = asyncio.get_running_loop().create_future()
        self.pending[msg_id] = fut
        await self.ws.send(json.dumps({"id": msg_id, "type": kind, **fields}))
        return await fut

    async def subscribe(self, kind: str, **fields) -> asyncio.Queue:
        """Subscribes; events arrive on the returned queue (None: closed)."""
        msg_id = next(self.ids)
        queue: asyncio.Queue = asyncio.Queue()
        # Registered first: the server may send events right after the result.
        self.subscriptions[msg_id] = queue
        fut = asyncio.get_running_loop().create_future()
        self.pending[msg_id] = fut
        await self.ws.send(json.dumps({"id": msg_id, "type": kind, **fields}))
        await fut
        return queue

    async def close(self) -> None:
        await self.ws.close()
        self.reader.cancel()


def ws_url(url: str) -> str:
    url = url.rstrip("/")
    if url.startswith("http://") or url.startswith("https://"):
        url = "ws" + url[len("http"):]
    if not url.startswith(("ws://", "wss://")):
        raise ValueError(f"HEARTH_URL must start with http:// or https:// (got `{url}`)")
    return url + "/api/websocket"


def now() -> str:
    return datetime.now().isoformat(timespec="seconds")


async def changes(queue: asyncio.Queue, entity_id: str):
    """New states of one entity from a `state_changed` subscription."""
    while True:
        event = await queue.get()
        if event is None:
            raise ConnectionError("connection closed")
        data = event.get("data", {})
        if data.get("entity_id") == entity_id and data.get("new_state"):
            yield data["new_state"]


def pick_target(climate: dict | None, requested: float | None) -> float:
    if requested is not None:
        return requested
    current = (climate or {}).get("attributes", {}).get("temperature")
    return 21.0 if current == 22 else 22.0


async def set_target(client: Client, target: float) -> dict:
    return await client.command(
        "call_service",
        domain="climate",
        service="set_temperature",
        service_data={"temperature": target},
        target={"entity_id": CLIMATE},
    )


async def check(client: Client, requested: float | None) -> dict:
    states = await client.command("get_states")
    by_id = {s["entity_id"]: s for s in states}
    print(f"get_states: {len(states)} entities (ha_version {client.ha_version})")
    events = await client.subscribe("subscribe_events", event_type="state_changed")
    sensor = by_id.get(SENSOR)
    if sensor is None:
        sensor = await anext(changes(events, SENSOR))
    print(f"{SENSOR} = {sensor['state']}")
    climate = by_id.get(CLIMATE)
    if climate is None:
        raise RuntimeError(f"{CLIMATE} is not among the states")
    before = climate["attributes"].get("temperature")
    target = pick_target(climate, requested)
    lo, hi = climate["attributes"].get("min_temp"), climate["attributes"].get("max_temp")
    if (lo is not None and target < lo) or (hi is not None and target > hi):
        raise RuntimeError(f"--target {target} is outside {CLIMATE}'s range {lo}–{hi} °C (the bridge would clamp it)")
    result = await set_target(client, target)
    print(f"climate.set_temperature {target} °C: ok (was {before})")
    async for state in changes(events, CLIMATE):
        if state["attributes"].get("temperature") == target:
            return {
                "ha_version": client.ha_version,
                "states": len(states),
                "temperature_entity": SENSOR,
                "temperature": sensor["state"],
                "climate_entity": CLIMATE,
                "target_before": before,
                "target_seen": state["attributes"]["temperature"],
                "call_context": (result or {}).get("context", {}).get("id"),
                "state_context": state.get("context", {}).get("id"),
            }
    raise ConnectionError("connection closed")


async def demo(client: Client, requested: float | None) -> None:
    states = await client.command("get_states")
    by_id = {s["entity_id"]: s for s in states}
    print(f"connected (ha_version {client.ha_version}); {len(states)} entities")
    for entity_id in (SENSOR, CLIMATE):
        s = by_id.get(entity_id)
        print(f"{entity_id}: {s['state'] if s else 'not there yet'}")
    events = await client.subscribe("subscribe_events", event_type="state_changed")

    target = pick_target(by_id.get(CLIMATE), requested)
    try:
        await set_target(client, target)
        print(f"set {CLIMATE} to {target} °C")
    except HaError as e:
        print(f"climate.set_temperature {target} °C failed: {e}", file=sys.stderr)

    print("watching the server room; Ctrl-C to stop")
    last = {}
    while True:
        event = await events.get()
        if event is None:
            raise ConnectionError("connection closed")
        new = event["data"].get("new_state")
        if not new:
            continue
        if new["entity_id"] == SENSOR and new["state"] != last.get(SENSOR):
            last[SENSOR] = new["state"]
            unit = new["attributes"].get("unit_of_measurement", "")
            print(f"{now()}  room {new['state']} {unit}".rstrip())
        elif new["entity_id"] == CLIMATE:
            a = new["attributes"]
            line = f"AC {new['state']}, {a.get('hvac_action', '?')}, target {a.get('temperature')} °C"
            if line != last.get(CLIMATE):
                last[CLIMATE] = line
                print(f"{now()}  {line}")


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="self-test: print one JSON line and exit")
    parser.add_argument("--target", type=float, help="target temperature to set (°C)")
    parser.add_argument("--timeout", type=float, default=20.0, help="--check gives up after this many seconds")
    args = parser.parse_args()

    url = os.environ.get("HEARTH_URL", "http://127.0.0.1:8099")
    token = os.environ.get("HEARTH_TOKEN")
    if not token:
        print(
            "server_room.py: HEARTH_TOKEN is not set; create one with "
            "`cargo run -- token create --name script --data-dir hearth-data`",
            file=sys.stderr,
        )
        return 2
    try:
        client = await Client.connect(url, token)
    except PermissionError as e:
        print(f"server_room.py: {url} refused the token: {e}", file=sys.stderr)
        return 1
    except (OSError, InvalidStatus, InvalidURI, ValueError) as e:
        print(f"server_room.py: cannot connect to {url}: {e} (is the bridge running?)", file=sys.stderr)
        return 1
    try:
        if args.check:
            try:
                summary = await asyncio.wait_for(check(client, args.target), args.timeout)
            except asyncio.TimeoutError:
                print(f"server_room.py: --check timed out after {args.timeout} s", file=sys.stderr)
                return 1
            print(json.dumps(summary))
        else:
            await demo(client, args.target)
    except (HaError, ConnectionError, RuntimeError) as e:
        print(f"server_room.py: {e}", file=sys.stderr)
        return 1
    finally:
        await client.close()
    return 0


if __name__ == "__main__":
    try:
        sys.exit(asyncio.run(main()))
    except KeyboardInterrupt:
        sys.exit(0)
