"""A normal (non-editable) install: the wheel holds every library module and the shipped MNIST files, and the
installed lamina imports and loads MNIST with no checkout beside it. Built offline from a copy of the
checkout."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("layers", "losses", "optim", "data", "estimators", "diagnostics")
LEFT_OUT = ("tests", "bench", "examples", "docs", ".git", "build", "dist", "runs", "__pycache__",
            ".hypothesis",
            ".ruff_cache", "*.egg-info")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel ``pip wheel`` builds from a copy of the checkout (so no build/ or egg-info lands in it)."""
    folder = tmp_path_factory.mktemp("wheel")
    source = folder / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(*LEFT_OUT))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                    "--quiet", "-w", str(folder / "dist"), str(source)], check=True, capture_output=True)
    [built] = (folder / "dist").glob("lamina-*.whl")
    return built


def library_files() -> set[str]:
    """Where each library module and MNIST file of the checkout goes in the wheel (lamina/<package>/...)."""
    files = {"lamina/__init__.py"}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*"):
            shipped = path.suffix == ".py" or path.parent.name == "mnist-idx"
            if path.is_file() and shipped and "__pycache__" not in path.parts:
                files.add(f"lamina/{package}/{path.relative_to(ROOT / package).as_posix()}")
    return files


def test_the_checkout_has_subpackages_and_mnist_files_to_look_for():
    files = library_files()
    assert {"lamina/layers/records/__init__.py", "lamina/layers/files/__init__.py"} <= files
    assert sum(name.startswith("lamina/data/mnist-idx/") and name.endswith(".gz") for name in files) == 4


def test_the_wheel_holds_every_library_module_and_the_mnist_files(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = sorted(library_files() - names)
    assert not missing, f"{wheel.name} lacks {missing} (a subpackage missing from setup.cfg's packages?)"


def test_the_installed_wheel_imports_every_subpackage_and_loads_mnist(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--quiet",
                    "--target", str(target), str(wheel)], check=True, capture_output=True)
    modules = sorted(name[:-len("/__init__.py")].replace("/", ".") for name in library_files()
                     if name.endswith("/__init__.py"))
    script = (f"import importlib, lamina\n"
              f"for name in {modules!r}:\n"
              f"    assert importlib.import_module(name).__file__.startswith({str(target)!r}), name\n"
              f"(x, y), _ = lamina.data.mnist()\n"
              f"print(lamina.__version__, x.shape, y.shape)\n")
    environment = {**os.environ, "PYTHONPATH": str(target)}
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=environment, capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[1:] == ["(60000,", "784)", "(60000,)"]
