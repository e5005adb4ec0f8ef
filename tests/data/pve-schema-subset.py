#!/usr/bin/env python3
"""Derives tests/data/pve-schema-subset.json from the official PVE 8.4 API
schema (pve-docs api-viewer/apidata.js, a JS file holding one JSON array).

    python3 tests/data/pve-schema-subset.py \
        /work/shared/research/pve-apidata-8.4.js > tests/data/pve-schema-subset.json

Only the endpoints oxbake calls are kept, and of each parameter only what the
simulator checks: type, enum, minimum, maximum, maxLength, format (a name, or
"property-string" for structured formats), optional, and whether unknown
parameters are allowed.
"""
import json
import sys

ENDPOINTS = [
    ("GET", "/cluster/nextid"),
    ("GET", "/cluster/resources"),
    ("POST", "/nodes/{node}/qemu/{vmid}/clone"),
    ("GET", "/nodes/{node}/qemu/{vmid}/config"),
    ("POST", "/nodes/{node}/qemu/{vmid}/config"),
    ("PUT", "/nodes/{node}/qemu/{vmid}/resize"),
    ("POST", "/nodes/{node}/qemu/{vmid}/status/start"),
    ("POST", "/nodes/{node}/qemu/{vmid}/status/shutdown"),
    ("POST", "/nodes/{node}/qemu/{vmid}/status/stop"),
    ("GET", "/nodes/{node}/qemu/{vmid}/status/current"),
    ("POST", "/nodes/{node}/qemu/{vmid}/agent/ping"),
    ("GET", "/nodes/{node}/qemu/{vmid}/agent/network-get-interfaces"),
    ("POST", "/nodes/{node}/qemu/{vmid}/template"),
    ("DELETE", "/nodes/{node}/qemu/{vmid}"),
    ("GET", "/nodes/{node}/tasks/{upid}/status"),
    ("POST", "/nodes/{node}/storage/{storage}/upload"),
    ("GET", "/nodes/{node}/storage/{storage}/content"),
    ("DELETE", "/nodes/{node}/storage/{storage}/content/{volume}"),
    ("GET", "/nodes/{node}/storage/{storage}/status"),
    ("POST", "/nodes/{node}/qemu"),
    ("GET", "/version"),
    ("GET", "/access/permissions"),
]
KEEP = ("type", "enum", "minimum", "maximum", "maxLength", "optional")


def walk(nodes, found):
    for node in nodes:
        for method, info in node.get("info", {}).items():
            found[(method, node["path"])] = info
        walk(node.get("children", []), found)


def param(spec):
    out = {k: spec[k] for k in KEEP if k in spec}
    fmt = spec.get("format")
    if isinstance(fmt, str):
        out["format"] = fmt
    elif fmt is not None:
        out["format"] = "property-string"
        out["format_keys"] = sorted(fmt.keys())
    return out


def main():
    text = open(sys.argv[1], encoding="utf-8").read()
    start = text.index("[")
    end = text.rindex("]") + 1
    found = {}
    walk(json.loads(text[start:end]), found)
    subset = {
        "_source": "pve-docs api-viewer/apidata.js, PVE 8.4; made by tests/data/pve-schema-subset.py",
    }
    for method, path in ENDPOINTS:
        info = found[(method, path)]
        params = info.get("parameters", {})
        subset[f"{method} {path}"] = {
            "additionalProperties": bool(params.get("additionalProperties", 1)),
            "properties": {
                name: param(spec)
                for name, spec in sorted(params.get("properties", {}).items())
            },
        }
    json.dump(subset, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")


main()
