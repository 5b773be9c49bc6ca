"""Print the declared floors of ssesync's dependencies as pip constraints.

Each ``name>=version`` among ``install_requires`` and the ``requests`` extra
in ``setup.cfg`` becomes ``name==version``: the oldest releases a user may
get. ``.ci/run`` installs the test environment of the oldest Python with
these constraints, so a floor that cannot be installed, or that ssesync no
longer works with, fails CI; ``tests/test_packaging.py`` checks that pip can
resolve them together.

Usage: ``python .ci/floors.py [setup.cfg]``
"""

from __future__ import annotations

import configparser
import re
import sys
from pathlib import Path

#: The extras whose floors count: the optional runtime dependencies.
RUNTIME_EXTRAS = ("requests",)
_FLOOR = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)\s*>=\s*([0-9][^,;\s]*)\s*$")


def floors(setup_cfg: Path) -> list[str]:
    """``name==version`` for every ``name>=version`` runtime requirement of ``setup_cfg``."""
    config = configparser.ConfigParser()
    config.read(setup_cfg, encoding="utf-8")
    lines = config.get("options", "install_requires", fallback="").splitlines()
    for extra in RUNTIME_EXTRAS:
        lines += config.get("options.extras_require", extra, fallback="").splitlines()
    pins: dict[str, str] = {}
    for line in lines:
        match = _FLOOR.match(line.split("#", 1)[0].strip())
        if match:
            pins.setdefault(match.group(1).lower(), match.group(2))
    return [f"{name}=={version}" for name, version in sorted(pins.items())]


if __name__ == "__main__":
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent.parent / "setup.cfg"
    print("\n".join(floors(path)))
