"""What `pip install .` puts on the path: one package, `agentlog`, and nothing else.

A team runs its own agent module in agentlog's process; if installing agentlog claimed the
names `domain`, `infra`, `transport` or `projections`, a team package of the same name would
break one or the other.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from ..conftest import ROOT

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Built from a copy of the tracked files: building in the checkout would leave build/ in it.
    source = tmp_path_factory.mktemp("source")
    tracked = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.decode()
    for name in filter(None, tracked.split("\0")):
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, source / name)
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(source)],
        check=True,
        capture_output=True,
        timeout=240,
    )
    (built,) = out.glob("agentlog-*.whl")
    return built


def test_the_wheel_holds_only_the_agentlog_package_and_its_metadata(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/")[0] for name in names}
    assert {top for top in tops if not top.endswith(".dist-info")} == {"agentlog"}
    for folder in ("domain", "projections", "transport", "infra"):
        assert f"agentlog/{folder}/__init__.py" in names
    # The live page's static files travel with the code that serves them.
    assert "agentlog/transport/web/app.js" in names
    assert "agentlog/transport/web/index.html" in names
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "agentlog = agentlog.transport.cli.main:main" in text


def test_installed_agentlog_imports_by_its_own_name_and_leaves_domain_free(
    wheel: Path, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    # A team's own `domain` package beside the installed agentlog: both must import.
    team = tmp_path / "team"
    (team / "domain").mkdir(parents=True)
    (team / "domain" / "__init__.py").write_text("OWNER = 'the team'\n")
    probe = (
        "import sys\n"
        f"sys.path[:0] = [{str(site)!r}, {str(team)!r}]\n"
        "import agentlog.transport.app, agentlog.domain.events\n"
        f"assert agentlog.domain.events.__file__.startswith({str(site)!r}), "
        "agentlog.domain.events.__file__\n"
        "import domain\n"
        "assert domain.OWNER == 'the team', domain\n"
        "import importlib.util\n"
        "for name in ('infra', 'transport', 'projections'):\n"
        "    assert importlib.util.find_spec(name) is None, name\n"
        "print('ok')\n"
    )
    # -I: no current directory on the path, so the checkout's own folders are not importable.
    done = subprocess.run(
        [sys.executable, "-I", "-c", probe], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
