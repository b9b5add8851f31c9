"""Every Python folder ships in the wheel under the single `tessera` namespace."""

import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _source_packages() -> dict[str, Path]:
    """Import name -> folder for every folder with an __init__.py under the mapped roots."""
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    roots = {name: ROOT / path for name, path in cfg["package-dir"].items() if "." not in name
             or name.count(".") == 1}
    found = {}
    for name, folder in roots.items():
        for init in folder.rglob("__init__.py"):
            rel = init.parent.relative_to(folder)
            if "tests" in rel.parts:
                continue
            found[".".join([name, *rel.parts])] = init.parent
    return found


def test_every_package_is_listed():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())
                 ["tool"]["setuptools"]["packages"])
    missing = sorted(set(_source_packages()) - listed)
    assert not missing, f"add to [tool.setuptools] packages in pyproject.toml: {missing}"


def test_wheel_contains_every_package(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(tmp_path), str(ROOT)], check=True)
    wheel, = tmp_path.glob("tessera-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for package in _source_packages():
        init = package.replace(".", "/") + "/__init__.py"
        assert init in names, f"{package} missing from the wheel"
    assert "tessera/data/smartdeal-28nm.toml" in names
    # No top-level hdl/sim/compiler modules may be installed.
    assert not [n for n in names if n.split("/")[0] in ("hdl", "sim", "compiler", "boards",
                                                       "asic_flow")]
