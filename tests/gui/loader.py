"""Imports for the GUI tests: the toolkits (or a skip), and the documentation's examples."""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"


def load_example(name: str) -> ModuleType:
    """Import ``docs/examples/<name>`` as a module of its own (not as ``__main__``)."""
    path = EXAMPLES / name
    spec = importlib.util.spec_from_file_location(f"docs_example_{path.stem}", path)
    assert spec is not None, path
    assert spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def import_or_skip(name: str, hint: str) -> ModuleType:
    """Import ``name``, or skip the tests that need it, saying why and how to get it.

    Unlike ``pytest.importorskip`` (pytest 8.2 and later) this also skips
    when the module is installed but fails to import, as PySide6 does on a
    host without the system libraries Qt needs.
    """
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        pytest.skip(f"{name} cannot be imported ({exc}); {hint}", allow_module_level=True)
