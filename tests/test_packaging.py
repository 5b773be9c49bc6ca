"""The source distribution is the whole project: unpacked, it runs its own tests.

A user or a distribution packager who downloads the sdist should be able to
run ``pytest`` in it. That needs every file the tests import (``conftest.py``,
``helpers.py``, the reference parser, the forward proxy), not only the
``test_*.py`` files setuptools picks up by itself, so the sdist ships every
file git tracks (``MANIFEST.in``). These tests build it from this tree,
check its file list against git's, and run a fast part of the unpacked
copy's tests. (``.ci/run`` installs the sdist and runs its whole suite.)
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Optional

import pytest

from tests.helpers import ROOT, cli_env

#: Enough of the suite to run for real in the unpacked copy: the shared
#: fixtures, helpers, the loopback server, the reference parser and the proxy
#: (``.ci/run`` runs all of it).
QUICK_TESTS = [
    "tests/test_parser.py",
    "tests/test_client.py::test_http_stream_through_a_forwarding_proxy",
    "tests/test_cli.py::test_prints_one_compact_json_object_per_event_in_order",
]


def _tracked_files() -> Optional[list[str]]:
    """The files git tracks in this tree, or ``None`` outside a git checkout (in an sdist)."""
    try:
        result = subprocess.run(
            ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True, timeout=30
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return [name for name in result.stdout.decode().split("\0") if name]


def _clean_copy(dest: Path) -> Path:
    """This tree without build leftovers, to build from.

    setuptools adds the files listed in an ``*.egg-info/SOURCES.txt`` left
    by an earlier build (an editable install writes one) to the next sdist,
    so building in place could pass with a broken ``MANIFEST.in``.
    """
    tracked = _tracked_files()
    if tracked is None:
        ignore = shutil.ignore_patterns("*.egg-info", "__pycache__", ".*_cache", "_build")
        shutil.copytree(ROOT, dest, ignore=ignore)
        return dest
    for name in tracked:
        if (ROOT / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest / name)
    return dest


@pytest.fixture(scope="module")
def sdist(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """The sdist built from this tree, unpacked: its root and the names it holds."""
    out = tmp_path_factory.mktemp("sdist")
    source = _clean_copy(tmp_path_factory.mktemp("source") / "tree")
    build = (
        "import sys; from setuptools import build_meta; "
        "print(build_meta.build_sdist(sys.argv[1]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", build, str(out)],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    archive = out / result.stdout.strip().splitlines()[-1]
    with tarfile.open(archive) as tar:
        names = tar.getnames()
        tar.extractall(out, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
    (top,) = {name.split("/", 1)[0] for name in names}
    prefix = top + "/"
    files = [name[len(prefix):] for name in names if name.startswith(prefix)]
    return out / top, [name for name in files if (out / top / name).is_file()]


def test_sdist_ships_every_tracked_file(sdist: tuple[Path, list[str]]) -> None:
    tracked = _tracked_files()
    if tracked is None:
        pytest.skip("not a git checkout (this is the sdist itself): nothing to compare with")
    _, shipped = sdist
    missing = sorted(set(tracked) - set(shipped))
    assert not missing, f"tracked but not in the sdist: {missing}"
    junk = [name for name in shipped if re.search(r"__pycache__|\.py[cod]$|^docs/_build/", name)]
    assert not junk


def _pytest(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """pytest in the unpacked tree, importing its own copy of ssesync (cwd comes first)."""
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
        env=cli_env({"PYTHONPATH": str(root), "PYTHONDONTWRITEBYTECODE": "1"}),
        stdin=subprocess.DEVNULL,
    )


def _test_modules(root: Path) -> set[str]:
    """The test modules the default run collects (benchmarks and fuzzers are not)."""
    return {path.relative_to(root).as_posix() for path in (root / "tests").glob("test_*.py")}


@pytest.mark.slow
def test_unpacked_sdist_runs_its_tests(sdist: tuple[Path, list[str]]) -> None:
    root, _ = sdist
    located = subprocess.run(
        [sys.executable, "-c", "import ssesync; print(ssesync.__file__)"],
        cwd=root, capture_output=True, text=True, timeout=60,
        env=cli_env({"PYTHONPATH": str(root)}),
    )
    assert Path(located.stdout.strip()).resolve().is_relative_to(root.resolve())
    assert _test_modules(root) == _test_modules(ROOT)
    ran = _pytest(root, *QUICK_TESTS)
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    assert re.search(r"\d+ passed", ran.stdout)


@pytest.mark.slow
def test_declared_dependency_floors_can_be_installed_together() -> None:
    # requests before 2.30 pins urllib3 < 1.27: "requests>=2.28" beside
    # "urllib3>=2.3" promised a combination no one can install. .ci/run runs
    # the suite on these floors; this asks pip whether they resolve at all.
    floors = subprocess.run(
        [sys.executable, str(ROOT / ".ci" / "floors.py"), str(ROOT / "setup.cfg")],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout.split()
    assert {pin.split("==")[0] for pin in floors} == {"blinker", "requests", "urllib3"}
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed",
         "--quiet", "--disable-pip-version-check", *floors],
        capture_output=True, text=True, timeout=240, stdin=subprocess.DEVNULL,
    )
    if result.returncode != 0 and "ResolutionImpossible" not in result.stderr:
        pytest.skip(f"pip cannot reach a package index: {result.stderr.strip()[-300:]}")
    assert result.returncode == 0, result.stderr[-2000:]
