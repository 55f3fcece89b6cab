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
import gzip
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import anyio
import httpx2
from _common import Figure, Row, print_table, run_argv, timed

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "local"))
from oci_registry import LAYER_GZIP, OCI_CONFIG, OCI_MANIFEST, run_registry

from scenario_mcp.local.images import host_platform, pull_image
from scenario_mcp.local.layers import LayerStore

CACHE = Path(__file__).resolve().parents[1] / ".tools" / "bench-images"
REPO, TAG = "bench/minbase", "bookworm"


def minbase() -> tuple[Path, str]:
    """The gzip'd minbase tar and its diff_id, built once (mmdebstrap needs Debian's mirror)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    tar, packed, meta = CACHE / "minbase-bookworm.tar", CACHE / "minbase-bookworm.tar.gz", CACHE / "meta.json"
    if not tar.exists():
        print("building the minbase with mmdebstrap (once; cached in .tools/bench-images)", file=sys.stderr)
        scratch = CACHE / ".minbase-bookworm.tmp.tar"  # mmdebstrap picks its format by the suffix
        subprocess.run(["mmdebstrap", "--quiet", "--variant=minbase", "bookworm", str(scratch)], check=True)
        scratch.rename(tar)
    if not packed.exists() or not meta.exists():
        diff = hashlib.sha256()
        with tar.open("rb") as src, gzip.GzipFile(CACHE / ".packing", "wb", compresslevel=6, mtime=0) as out:
            while chunk := src.read(1 << 20):
                diff.update(chunk)
                out.write(chunk)
        (CACHE / ".packing").rename(packed)
        meta.write_text(json.dumps({"diff_id": f"sha256:{diff.hexdigest()}", "tar_bytes": tar.stat().st_size}))
    return packed, json.loads(meta.read_text())["diff_id"]


def push(address: str, packed: Path, diff_id: str) -> None:
    with httpx2.Client(base_url=f"http://{address}", timeout=300.0) as http:

        def blob(data: bytes | Path) -> tuple[str, int]:
            content = data.read_bytes() if isinstance(data, Path) else data
            digest = f"sha256:{hashlib.sha256(content).hexdigest()}"
            location = http.post(f"/v2/{REPO}/blobs/uploads/").headers["location"]
            sep = "&" if "?" in location else "?"
            http.put(f"{location}{sep}digest={digest}", content=content).raise_for_status()
            return digest, len(content)

        layer_digest, layer_size = blob(packed)
        os_name, _, arch = host_platform().partition("/")
        config = json.dumps(
            {
                "os": os_name,
                "architecture": arch,
                "config": {"Env": ["PATH=/usr/bin:/bin"]},
                "rootfs": {"type": "layers", "diff_ids": [diff_id]},
            }
        ).encode()
        config_digest, config_size = blob(config)
        manifest = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": config_size},
            "layers": [{"mediaType": LAYER_GZIP, "digest": layer_digest, "size": layer_size}],
        }
        http.put(
            f"/v2/{REPO}/manifests/{TAG}", content=json.dumps(manifest).encode(), headers={"Content-Type": OCI_MANIFEST}
        ).raise_for_status()


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
    packed, diff_id = minbase()
    with tempfile.TemporaryDirectory(prefix="bench-images-", dir=CACHE) as tmp:
        work = Path(tmp)
        (work / "registry").mkdir()
        with run_registry(work / "registry") as address:
            push(address, packed, diff_id)
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
