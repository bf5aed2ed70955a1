"""python -m lamina.diagnostics turns any bad file into one line and exit 1; the report's data survives any
string."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from lamina import layers
from lamina.diagnostics import report
from test_signals import worker


def deep(depth: int):
    value = []
    for _ in range(depth):
        value = [value]
    return value


BAD = {
    "history not a dict": {"history": [1, 2]},
    "history lists of str": {"history": {"loss": ["abc", "def"]}},
    "history a number": {"history": {"loss": 3}},
    "history nested deep": {"history": {"loss": deep(60)}},
    "records not a dict": {"diagnostics": "records"},
    "records missing keys": {"diagnostics": {"step": [1]}},
    "records bad types": {"diagnostics": {"step": [1], "epoch": "x", "batch": [1], "layers": {},
                                          "parameters": {}}},
    "records deep": {"diagnostics": {"step": [1], "epoch": [1], "batch": [1], "layers": {"a": deep(60)},
                                     "parameters": {}}},
    "records layer stats wrong": {"diagnostics": {"step": [1], "epoch": [1], "batch": [1],
                                                  "layers": {"a": {"dead": "many"}}, "parameters": {"w": 3}}},
}


def run(path, out):
    return subprocess.run([sys.executable, "-m", "lamina.diagnostics", str(path), "--out", str(out)],
                          capture_output=True, text=True)


@pytest.mark.parametrize("name", sorted(BAD))
def test_a_file_with_unexpected_history_or_records_gives_one_line_and_exit_1(tmp_path, name):
    path = tmp_path / "bad.npz"
    layers.save(path, worker.problem()[0], **BAD[name])
    done = run(path, tmp_path / "r.html")
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.count("\n") == 1 and str(path) in done.stderr and done.stdout == ""
    assert not (tmp_path / "r.html").exists()


def test_a_damaged_or_missing_file_gives_one_line_and_exit_1(tmp_path):
    (tmp_path / "junk.npz").write_bytes(b"PK\x03\x04 not really")
    for path in (tmp_path / "junk.npz", tmp_path / "missing.npz"):
        done = run(path, tmp_path / "r.html")
        assert done.returncode == 1 and done.stderr.count("\n") == 1 and str(path) in done.stderr


def test_a_string_value_is_named_by_its_field(tmp_path):
    path = tmp_path / "bad.npz"
    layers.save(path, worker.problem()[0], history={"loss": [0.5, "0.4x"]})
    done = run(path, tmp_path / "r.html")
    assert "history['loss'][1] is str '0.4x'" in done.stderr


def test_the_embedded_json_escapes_comments_and_scripts(tmp_path):
    hostile = "<!--<script>alert(1)</script></script><!--"
    path = report(tmp_path / "r.html", worker.problem()[0], history={"loss": [0.5], "note": [hostile]})
    page = path.read_text()
    found = re.search(r'<script type="application/json" id="lamina-data">(.*?)</script>', page, re.S)
    embedded = found.group(1)
    assert "<!--" not in embedded and "<script" not in embedded and "</" not in embedded
    assert json.loads(embedded)["history"]["note"] == [hostile]
