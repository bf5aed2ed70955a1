"""A layers.save killed mid-write leaves no temporary behind for long: the next save to the folder removes the
temporaries of dead writers, never a live writer's."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import numpy as np

from test_signals import ENV, read_line

from lamina import layers

WRITER = textwrap.dedent("""
    import sys, time
    import numpy as np
    from lamina import layers
    from lamina.layers.files import model_file

    def stuck(file, members):
        file.write(b"half a model file" * 1000)
        file.flush()
        print("writing", flush=True)
        time.sleep(120)

    model_file.write_archive = stuck
    layers.save(sys.argv[1], layers.Dense.init(np.random.default_rng(0), 3, 2))
""")


def temporaries(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def age(folder, seconds=60):
    for name in temporaries(folder):
        stat = (folder / name).stat()
        os.utime(folder / name, (stat.st_atime - seconds, stat.st_mtime - seconds))


def test_a_killed_writers_temporary_is_removed_by_the_next_save_and_a_live_ones_is_not(tmp_path):
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path / "big.npz")],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              env={**ENV, "PYTHONPATH": os.getcwd()})
    try:
        assert read_line(writer) == "writing"
        [left] = temporaries(tmp_path)
        assert left.startswith(".big.npz.") and len(left) == len(".big.npz.") + 16 + len(".tmp")
        age(tmp_path)
        model = layers.Dense.init(np.random.default_rng(1), 3, 2)
        layers.save(tmp_path / "other.npz", model)
        assert temporaries(tmp_path) == [left]                      # its writer lives: kept
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait()
    layers.save(tmp_path / "other.npz", model)
    assert temporaries(tmp_path) == [] and sorted(os.listdir(tmp_path)) == ["other.npz"]


def test_other_hidden_files_are_never_touched(tmp_path):
    for name in (".notes.tmp", ".a.npz.0123456789abcdeg.tmp", ".a.npz.0123456789abcdef.tmp.keep", "x.tmp"):
        (tmp_path / name).write_text("mine")
    age(tmp_path)
    layers.save(tmp_path / "m.npz", layers.Dense.init(np.random.default_rng(1), 3, 2))
    assert len(os.listdir(tmp_path)) == 5
