"""The client's wheel: what `pip install ./client` installs into a user's environment."""

from __future__ import annotations

import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _uv() -> str | None:
    local = ROOT / ".tools" / "uv" / "bin" / "uv"  # what `make install` uses
    return str(local) if local.is_file() else shutil.which("uv")


@pytest.mark.skipif(_uv() is None, reason="uv builds the wheel (make install puts it in .tools/uv)")
def test_wheel_ships_the_py_typed_marker_the_modules_and_the_console_script(tmp_path):
    built = subprocess.run(
        [_uv(), "build", "--wheel", "--out-dir", str(tmp_path), str(ROOT / "client")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr
    [wheel] = tmp_path.glob("assay-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    # PEP 561: type checkers use the package's annotations only when py.typed is installed with it
    assert "assay/py.typed" in names
    sources = {f"assay/{p.name}" for p in (ROOT / "client" / "src" / "assay").glob("*.py")}
    assert sources <= names, sources - names
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "assay = assay.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()
    assert not any(n.startswith(("tests/", "assay_local/", "assay_service/")) for n in names)
