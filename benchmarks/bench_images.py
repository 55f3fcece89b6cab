"""Image pull benchmark: pull + unpack of a Debian minbase image from a loopback registry.

    bash benchmarks/setup-images.sh      # docker-registry, skopeo, mmdebstrap (root, apt)
    .venv/bin/python benchmarks/bench_images.py [--runs N]

(p) `pull_image` of a one-layer ~180 MB Debian bookworm minbase (`mmdebstrap --variant=minbase`,
    built once and cached under .tools/bench-images/, gzip-packed and pushed to docker-registry on
    a free loopback port) into a fresh layer store: manifest, config, the blob streamed through
    its digest check, gunzip, the diff_id check and the unpacker into a scratch dir renamed into
    place. Floor: `skopeo copy docker://... dir:DIR` followed by `tar -xzf` of its layer blob,
    what a pull does with tools written in Go and C. Goal: <= 1.2x the floor.

Runs alternate measured and floor; each starts from nothing on the same disk (the trees are
removed between runs, untimed). Docker's `docker pull` is not measured here (no daemon).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

import anyio
from _common import Figure, Row, print_table, run_argv, timed

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "local"))
from oci_registry import MINBASE_CACHE, Pusher, minbase, push_minbase, run_registry

from scenario_mcp.local.images import pull_image
from scenario_mcp.local.layers import LayerStore

CACHE = MINBASE_CACHE
REPO, TAG = "bench/minbase", "bookworm"


async def floor_pull(address: str, work: Path) -> None:
    await run_argv(
        [
            "skopeo",
            "copy",
            "--quiet",
            "--src-tls-verify=false",
            f"docker://{address}/{REPO}:{TAG}",
            f"dir:{work / 'dir'}",
        ]
    )
    manifest = json.loads((work / "dir" / "manifest.json").read_text())
    for layer in manifest["layers"]:
        (work / "root").mkdir()
        await run_argv(["tar", "-xzf", str(work / "dir" / layer["digest"].split(":")[1]), "-C", str(work / "root")])


async def main(runs: int) -> None:
    packed, _diff_id = minbase()
    with tempfile.TemporaryDirectory(prefix="bench-images-", dir=CACHE) as tmp:
        work = Path(tmp)
        (work / "registry").mkdir()
        with run_registry(work / "registry") as address:
            pusher = Pusher(address)
            push_minbase(pusher, REPO, TAG)
            pusher.http.close()
            print(
                f"image: {address}/{REPO}:{TAG}, {packed.stat().st_size / 1e6:.0f} MB gzip, one layer", file=sys.stderr
            )
            measured = Figure("pull_image(...) into a fresh LayerStore: fetch, verify, gunzip, unpack")
            floor = Figure("skopeo copy docker://... dir:DIR && tar -xzf <layer>")
            for i in range(runs + 1):  # the first of each is a warm-up
                store_dir, floor_dir = work / f"store{i}", work / f"floor{i}"
                floor_dir.mkdir()
                pull_ms = await timed(lambda s=store_dir: pull_image(f"{address}/{REPO}:{TAG}", LayerStore(s)))
                floor_ms = await timed(lambda f=floor_dir: floor_pull(address, f))
                if i:
                    measured.samples.append(pull_ms)
                    floor.samples.append(floor_ms)
                print(f"  run {i}: pull {pull_ms:.0f} ms, floor {floor_ms:.0f} ms", file=sys.stderr)
                await anyio.to_thread.run_sync(shutil.rmtree, store_dir)
                await anyio.to_thread.run_sync(shutil.rmtree, floor_dir)
                await anyio.sleep(0.5)
    row = Row("(p) pull + unpack, 180 MB minbase", measured, floor, goal_ms=None)
    print_table(f"image benchmarks (p50 over {runs} runs, after 1 warm-up run)", [row])
    ok = "yes" if measured.p50 <= 1.2 * floor.p50 else "NO"
    print(f"  goal: <= 1.2x the floor, i.e. <= {1.2 * floor.p50:.0f} ms: {ok}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="timed runs (default 5)")
    anyio.run(main, parser.parse_args().runs)
