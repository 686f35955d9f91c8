#!/usr/bin/env python3
"""HTTP load: `usersync serve` against the Python `scim2-server`, same workload, one run.

Both servers get the same users and groups, then `wrk` drives each in turn:
GET by id, a `userName eq` filter, PATCH of one member on a 1,000-member group and on a
large group (100,000 members by default; each connection alternates adding and removing
its own user, so the group keeps its size), and POST /Users. The table prints requests
per second, p50 and p99 for both and the ratio of usersync to the peer.

    python3 benches/http_load.py                  # 100,000-member group, 10 s per run
    python3 benches/http_load.py --big 10000 --duration 5

Needs `wrk` (Debian: `apt-get install wrk`) and Python 3 with venv; scim2-server is
installed into a temporary virtual environment. usersync is built in release mode.
"""

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
BULK_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Endpoint:
    """A SCIM endpoint: its base URL and bearer token."""

    def __init__(self, name, base, token):
        self.name, self.base, self.token = name, base, token

    def call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(
            self.base + path,
            data=data,
            method=method,
            headers={
                "Authorization": f"Bearer {self.token}",
                "Content-Type": "application/scim+json",
            },
        )
        try:
            with urllib.request.urlopen(req, timeout=600) as r:
                text = r.read()
                return r.status, (json.loads(text) if text else None)
        except urllib.error.HTTPError as e:
            raise SystemExit(f"{self.name}: {method} {path} -> {e.code} {e.read()[:300]!r}")

    def create_users(self, names):
        """Creates users through Bulk, 1,000 at a time; returns their ids in order."""
        ids = []
        for start in range(0, len(names), 1000):
            chunk = names[start : start + 1000]
            ops = [
                {
                    "method": "POST",
                    "path": "/Users",
                    "bulkId": f"u{i}",
                    "data": {"schemas": [USER_SCHEMA], "userName": n},
                }
                for i, n in enumerate(chunk)
            ]
            _, reply = self.call(
                "POST", "/Bulk", {"schemas": [BULK_SCHEMA], "Operations": ops}
            )
            for op in reply["Operations"]:
                status = int(str(op["status"]).split()[0])
                if status != 201:
                    raise SystemExit(f"{self.name}: bulk create failed: {op}")
                ids.append(op["location"].rstrip("/").rsplit("/", 1)[1])
        return ids

    def create_group(self, name, member_ids):
        """A group, its members added 5,000 per PATCH (bodies stay under 1 MiB)."""
        _, g = self.call(
            "POST", "/Groups", {"schemas": [GROUP_SCHEMA], "displayName": name}
        )
        for start in range(0, len(member_ids), 5000):
            chunk = member_ids[start : start + 5000]
            self.call(
                "PATCH",
                f"/Groups/{g['id']}",
                {
                    "schemas": [PATCH_SCHEMA],
                    "Operations": [
                        {
                            "op": "add",
                            "path": "members",
                            "value": [{"value": m} for m in chunk],
                        }
                    ],
                },
            )
        return g["id"]


def wait_for(url, token, seconds=60):
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
            with urllib.request.urlopen(req, timeout=2):
                return
        except Exception:
            time.sleep(0.2)
    raise SystemExit(f"{url} did not come up")


def wait_idle(pid, seconds=900):
    """Waits until process `pid` stops using CPU: a threaded server may still be working
    through requests that a finished wrk run left queued."""
    def cpu():
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])

    deadline = time.time() + seconds
    last = cpu()
    while time.time() < deadline:
        time.sleep(1.0)
        now = cpu()
        if now - last <= 2:  # ticks: under 2% of a core
            return
        last = now
    raise SystemExit(f"process {pid} stayed busy for {seconds} s")


def start_usersync(work):
    subprocess.run(
        ["cargo", "build", "--release", "-q", "-p", "usersync-cli"], cwd=ROOT, check=True
    )
    port = free_port()
    proc = subprocess.Popen(
        [
            os.path.join(ROOT, "target", "release", "usersync"),
            "serve",
            "--db",
            os.path.join(work, "usersync.db"),
            "--listen",
            f"127.0.0.1:{port}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    for line in proc.stdout:
        if line.startswith("serving "):
            break
    # Into a pipe, `serve` prints no token (it could be logged): one is issued here.
    rotated = subprocess.run(
        [
            os.path.join(ROOT, "target", "release", "usersync"),
            "directory",
            "token",
            "rotate",
            "default",
            "--db",
            os.path.join(work, "usersync.db"),
            "--json",
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    token = json.loads(rotated.stdout)["token"]
    base = f"http://127.0.0.1:{port}/scim/v2/default"
    return proc, Endpoint("usersync", base, token)


def start_peer(work):
    venv = os.path.join(work, "venv")
    subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    pip = os.path.join(venv, "bin", "pip")
    subprocess.run([pip, "install", "-q", "scim2-server"], check=True)
    version = subprocess.run(
        [pip, "show", "scim2-server"], capture_output=True, text=True
    ).stdout
    version = re.search(r"Version: (\S+)", version).group(1)
    port = free_port()
    token = "peer-token"
    proc = subprocess.Popen(
        [
            os.path.join(venv, "bin", "scim2-server"),
            "--port",
            str(port),
            "--bearer-token",
            token,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}/v2"
    wait_for(base + "/ServiceProviderConfig", token)
    return proc, Endpoint(f"scim2-server {version}", base, token), version


LUA = r"""
local token = "%(token)s"
local prefix = "%(prefix)s"
local ids = {%(ids)s}
local names = {%(names)s}
local group = "%(group)s"
local outsiders = {%(outsiders)s}
local mode = "%(mode)s"
local counter = 0
-- `thread_no` is a global that setup() sets in each thread's own Lua state.
thread_no = 0
local threads = 0

function setup(thread)
  threads = threads + 1
  thread:set("thread_no", threads)
end

function init(args)
  math.randomseed(thread_no * 7919)
end

local headers = {["Authorization"] = "Bearer " .. token,
                 ["Content-Type"] = "application/scim+json"}

request = function()
  counter = counter + 1
  if mode == "get" then
    return wrk.format("GET", prefix .. "/Users/" .. ids[math.random(#ids)], headers)
  elseif mode == "filter" then
    local q = 'userName eq "' .. names[math.random(#names)] .. '"'
    q = q:gsub(" ", "%%%%20"):gsub('"', "%%%%22")
    return wrk.format("GET", prefix .. "/Users?filter=" .. q, headers)
  elseif mode == "patch" then
    -- Each request works on its own outsider: add it, and the next request removes it.
    local slot = ((thread_no - 1) * 1000003 + math.floor((counter - 1) / 2)) %% #outsiders + 1
    local user = outsiders[slot]
    local body
    if counter %% 2 == 1 then
      body = '{"schemas":["%(patch_schema)s"],"Operations":[{"op":"add","path":"members","value":[{"value":"' .. user .. '"}]}]}'
    else
      body = '{"schemas":["%(patch_schema)s"],"Operations":[{"op":"remove","path":"members[value eq \\"' .. user .. '\\"]"}]}'
    end
    return wrk.format("PATCH", prefix .. "/Groups/" .. group, headers, body)
  else
    local body = '{"schemas":["%(user_schema)s"],"userName":"load-' .. thread_no .. '-' .. counter .. '-' .. math.random(1000000000) .. '"}'
    return wrk.format("POST", prefix .. "/Users", headers, body)
  end
end
"""


def lua_list(items):
    return ",".join(json.dumps(i) for i in items)


def run_wrk(endpoint, mode, work, duration, ids, names, group, outsiders):
    path_prefix = re.sub(r"^https?://[^/]+", "", endpoint.base)
    script = os.path.join(work, f"{mode}.lua")
    with open(script, "w") as f:
        f.write(
            LUA
            % {
                "token": endpoint.token,
                "prefix": path_prefix,
                "ids": lua_list(ids),
                "names": lua_list(names),
                "group": group,
                "outsiders": lua_list(outsiders),
                "mode": mode,
                "patch_schema": PATCH_SCHEMA,
                "user_schema": USER_SCHEMA,
            }
        )
    origin = re.match(r"^https?://[^/]+", endpoint.base).group(0)
    out = subprocess.run(
        ["wrk", "-t2", "-c8", f"-d{duration}s", "--latency", "--timeout", "60s", "-s", script, origin],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        raise SystemExit(f"{endpoint.name} {mode}: {non2xx.group(1)} failed requests\n{out}")

    def pct(p):
        m = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        value, unit = float(m.group(1)), m.group(2)
        return value * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    return rps, pct(50), pct(99)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--big", type=int, default=100_000, help="members of the large group")
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is missing: apt-get install wrk")

    work = tempfile.mkdtemp(prefix="usersync-http-load-")
    procs = []
    try:
        ours, us = start_usersync(work)
        procs.append(ours)
        peer, them, version = start_peer(work)
        procs.append(peer)
        outsider_count = 2000
        names = [f"user{i:07}@example.com" for i in range(args.big + outsider_count)]
        rows = {}
        for ep, proc in ((us, ours), (them, peer)):
            t = time.time()
            ids = ep.create_users(names)
            small = ep.create_group("small", ids[:1000])
            big = ep.create_group("big", ids[: args.big])
            print(f"{ep.name}: loaded {len(ids)} users and the groups in {time.time() - t:.0f} s", flush=True)
            outsiders = ids[args.big :]
            sample = list(range(0, len(ids), max(1, len(ids) // 2000)))
            sample_ids = [ids[i] for i in sample]
            sample_names = [names[i] for i in sample]
            runs = [
                ("GET /Users/<id>", "get", ""),
                ("GET filter userName eq", "filter", ""),
                ("PATCH member, 1,000-member group", "patch", small),
                (f"PATCH member, {args.big:,}-member group", "patch", big),
                ("POST /Users", "post", ""),
            ]
            for label, mode, group in runs:
                # A slow server may still be working through the previous run's requests.
                wait_idle(proc.pid)
                rows.setdefault(label, {})[ep.name] = run_wrk(
                    ep, mode, work, args.duration, sample_ids, sample_names, group, outsiders
                )
                rps, p50, p99 = rows[label][ep.name]
                print(f"  {label}: {rps:.0f} req/s, p50 {p50:.2f} ms, p99 {p99:.2f} ms", flush=True)

        print()
        print(f"wrk -t2 -c8 -d{args.duration}s, {time.strftime('%Y-%m-%d')}, usersync vs scim2-server {version}")
        print(
            f"| operation | usersync req/s | p50 ms | p99 ms | {them.name} req/s | p50 ms | p99 ms | ratio |"
        )
        print("|---|---:|---:|---:|---:|---:|---:|---:|")
        for label, by in rows.items():
            a, b = by[us.name], by[them.name]
            if b[0] > 0:
                peer = f"{b[0]:,.1f} | {b[1]:.2f} | {b[2]:.2f} | {a[0] / b[0]:,.0f}x"
            else:
                # Not one request finished: the peer's rate is below one per run.
                peer = f"none in {args.duration} s | – | – | > {a[0] * args.duration:,.0f}x"
            print(f"| {label} | {a[0]:,.0f} | {a[1]:.2f} | {a[2]:.2f} | {peer} |")
    finally:
        for p in procs:
            p.terminate()
            p.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
