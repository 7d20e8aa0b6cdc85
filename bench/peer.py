"""The peer: the same order-to-cash cycle in Tryton 8.2 (../shared/peers/tryton, README
there), its cycles per second read from the results its script writes, or measured now.

Tryton's `server` mode drives trytond's model API in process (its lower bound: no client, no
network), which compares with tekil's Application; its `proteus` mode is the client library
an integration uses (in process, without JSON-RPC over the network), which compares with
tekil over HTTP. Tryton's figures are one client process.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from bench.harness import ROOT

DEFAULT_DIR = ROOT.parent / "shared" / "peers" / "tryton"
MODES = ("server", "proteus")


def read_results(directory: Path) -> dict[str, Any]:
    """Per backend and mode: cycles/s at the largest N measured, from
    `results_<backend>.json` (results/ under the peer's folder, or the folder itself)."""
    found: dict[str, Any] = {}
    folder = directory / "results" if (directory / "results").is_dir() else directory
    for backend in ("sqlite", "postgresql"):
        path = folder / f"results_{backend}.json"
        if not path.exists():
            continue
        found[backend] = summarise(json.loads(path.read_text()), os.path.relpath(path, ROOT))
    return found


def summarise(data: dict[str, Any], source: str) -> dict[str, Any]:
    modes: dict[str, Any] = {}
    for run in data.get("runs", []):
        mode = run["mode"]
        if mode not in MODES or run.get("profiled"):
            continue
        if mode not in modes or run["n"] > modes[mode]["n"]:
            modes[mode] = {
                "n": run["n"],
                "cycles_per_s": run["cycles_per_s"],
                "ms_per_cycle": run["ms_per_cycle"],
            }
    return {"source": source, "trytond": data.get("trytond"), "modes": modes}


def run_peer(directory: Path, cycles: int = 20, backend: str = "sqlite") -> dict[str, Any]:
    """Run the peer's script now (`./setup.sh` once, then `BACKENDS=<backend> ./run.sh` with N
    = `cycles`); its summary, read from the JSON line it prints. Takes minutes."""
    work = Path(os.environ.get("TRYTON_PEER_DIR", "/tmp/tryton-peer"))
    if not (work / "venv" / "bin" / "python").exists():
        subprocess.run(["./setup.sh"], cwd=directory, check=True)
    env = {
        **os.environ,
        "BACKENDS": backend,
        "NS": str(cycles),
        "EXTRA": f"--required-ns {cycles} --modes {','.join(MODES)}",
    }
    done = subprocess.run(
        ["./run.sh"], cwd=directory, env=env, capture_output=True, text=True, check=True
    )
    line = [row for row in done.stdout.splitlines() if row.startswith("{")][-1]
    run = os.path.relpath(directory / "run.sh", ROOT)
    return summarise(json.loads(line), f"measured during this run (`{run}`, N={cycles})")


def ratios(ours: dict[str, float], peer: dict[str, Any]) -> dict[str, Any]:
    """tekil's cycles/s over Tryton's: the Application against `server`, HTTP against
    `proteus`, per backend where both were measured."""
    out: dict[str, Any] = {}
    pairs = (("application", "server"), ("http", "proteus"))
    for backend, summary in peer.items():
        for ours_key, mode in pairs:
            mine = ours.get(f"{ours_key}:{backend}")
            theirs = summary["modes"].get(mode, {}).get("cycles_per_s")
            if mine and theirs:
                out[f"{ours_key}:{backend}"] = {
                    "tekil_cycles_per_s": mine,
                    "tryton_mode": mode,
                    "tryton_cycles_per_s": theirs,
                    "times": round(mine / theirs, 1),
                }
    return out
