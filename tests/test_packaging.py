"""Packaging and layering promises: what ships in the wheel, and who may import Textual."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORE_PACKAGES = [
    "imgen_tui.config",
    "imgen_tui.comfy",
    "imgen_tui.graphs",
    "imgen_tui.sim",
    "imgen_tui.cli",
    "imgen_tui.commands.nodes",
    "imgen_tui.commands.sim",
]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (built,) = out.glob("imgen_tui-*.whl")
    return built


def test_wheel_carries_workflows_config_and_themes(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert "imgen_tui/_bundled/workflows/manifest.yaml" in names
    assert "imgen_tui/_bundled/workflows/sd15_txt2img.json" in names
    assert "imgen_tui/_bundled/config/gpus.yaml" in names
    assert "imgen_tui/_bundled/config/demo.yaml" in names
    assert "imgen_tui/sim/data/object_info.json" in names


def test_installed_wheel_finds_its_folders_the_same_way(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    script = (
        "import imgen_tui, imgen_tui.locations as l;"
        "from imgen_tui.graphs import load_library;"
        "print(imgen_tui.__file__);"
        "print(l.bundled_dir('workflows'));"
        "print(len(load_library([l.bundled_dir('workflows')])))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(target)},
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    package_file, workflows, count = result.stdout.split()
    assert package_file.startswith(str(target)) and workflows.startswith(str(target))
    assert int(count) >= 7


def test_the_core_never_imports_textual() -> None:
    """Only imgen_tui.ui may import Textual: the core must load with Textual blocked."""
    script = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'textual' or name.startswith('textual.') or name.startswith('textual_image'):\n"
        "            raise ImportError('textual is blocked outside imgen_tui.ui')\n"
        "sys.meta_path.insert(0, Block())\n" + "".join(f"import {name}\n" for name in CORE_PACKAGES)
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
