"""Loaders bound their memory by the file's size: a manifest that would explode when parsed is refused."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from lamina import layers
from lamina.layers.files import stored_zip
from lamina.layers.files.json_budget import parsed_bytes, too_large
from lamina.layers.files.model_file import FORMAT, MANIFEST, MAX_MANIFEST_BYTES

MB = 1 << 20


def manifest_file(path, extra_text: str):
    head = json.dumps({"format": FORMAT, "version": 2, "kind": "model", "records": {}})[:-1]
    data = f'{head}, "extra": {{"x": {extra_text}}}}}'.encode()
    with open(path, "wb") as file:
        stored_zip.write_archive(file, [(MANIFEST, [data])])
    return path


LOADER = textwrap.dedent("""
    import os, resource, sys
    from lamina import layers, optim
    from lamina.layers.errors import ModelFileError
    path, load = sys.argv[1], sys.argv[2]
    status = open("/proc/self/status").read()
    size = int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmSize:"))) * 1024
    limit = size + 4 * os.path.getsize(path) + 100 * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    try:
        loaders = {"load": layers.load, "load_extra": layers.load_extra,
                   "load_checkpoint": optim.load_checkpoint}
        loaders[load](path)
    except ModelFileError as error:
        print("ModelFileError", str(error)[:300])
    except MemoryError:
        print("MemoryError")
""")


@pytest.mark.parametrize("loader", ["load", "load_extra", "load_checkpoint"])
def test_a_64_mb_manifest_of_empty_objects_is_refused_under_a_memory_limit(tmp_path_factory, loader):
    path = tmp_path_factory.getbasetemp() / "nested.npz"
    if not path.exists():
        count = (MAX_MANIFEST_BYTES - 200) // 3
        manifest_file(path, "[" + ",".join(["{}"] * count) + "]")
    env = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-c", LOADER, str(path), loader], capture_output=True, text=True,
                            env=env, cwd=str(__import__("pathlib").Path(__file__).parents[1]))
    assert result.stdout.startswith("ModelFileError"), result.stdout + result.stderr[-2000:]
    assert str(path) in result.stdout and "too large to load" in result.stdout


def test_ordinary_manifests_are_far_inside_the_budget(tmp_path):
    history = {"loss": [0.123456789] * 100_000, "threads": [1] * 100_000, "best_epoch": 3}
    path = tmp_path / "model.npz"
    from test_signals import worker
    layers.save(path, worker.problem()[0], history=history)
    assert layers.load_extra(path)["history"] == history
    floats = ("[" + ",".join(["0.1234567891234"] * 100_000) + "]").encode()
    assert too_large(floats) is None and parsed_bytes(floats) < 3 * len(floats)


def test_the_estimate_is_never_below_what_parsing_takes():
    import tracemalloc
    items = ("{}", "[]", '{"a":1}', '{"a":[1,{}],"b":"x"}', '"abcdef"', '"a,b:c"', "1.5", "1234567890123",
             "[[[]]]")
    for text in ["[" + ",".join([item] * 50_000) + "]" for item in items]:
        tracemalloc.start()
        json.loads(text)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert parsed_bytes(text.encode()) >= peak - len(text), text[:30]
