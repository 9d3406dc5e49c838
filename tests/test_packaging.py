"""The package ships: every import declared and locked, a licence, SecantusDB out of process.

Reads pyproject.toml and the lock files, the top-level imports of crawler/, pipelines/
and storage/ (ast), and the installed distributions' metadata (importlib.metadata).
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
import tomllib
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.helpers import ROOT

PACKAGES = ("crawler", "pipelines", "storage")
LOCK = ROOT / "requirements.lock"
TEST_LOCK = ROOT / "requirements-test.lock"
#: Extras the default install (scripts/setup.sh) adds.
INSTALLED_EXTRAS = ("embedded",)
#: The one module allowed to import SecantusDB: the embedded store's server process.
SECANTUS_HOME = "storage/mongo/server.py"
#: Copyleft licences in the locked tree, each with why the combination is fine (NOTICE).
COPYLEFT_OK = {
    "secantusdb": "GPL-2.0-only: a separate server process spoken to over the wire",
    "surt": "AGPL-3.0: Apache-2.0 is compatible with it (one way); said in NOTICE",
    "python-crontab": "LGPL-3.0: used as a library, compatible with Apache-2.0",
    "text-unidecode": "Artistic License or GPL-2.0+: taken under the Artistic License",
}


@cache
def pyproject() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def declared() -> dict[str, Requirement]:
    """Requirements of the default install: dependencies plus INSTALLED_EXTRAS."""
    project = pyproject()["project"]
    reqs = list(project["dependencies"])
    for extra in INSTALLED_EXTRAS:
        reqs += project["optional-dependencies"][extra]
    return {canonicalize_name(r.name): r for r in map(Requirement, reqs)}


def read_lock(path: Path) -> dict[str, str]:
    pins: dict[str, str] = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;]+)", line)
        assert match, f"{path.name}: not an exact pin: {raw!r}"
        pins[canonicalize_name(match[1])] = match[2]
    return pins


def imports_of(path: Path) -> set[str]:
    """Top-level names of the absolute imports in one file (function bodies too)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def third_party_imports() -> dict[str, set[str]]:
    """Import name -> files importing it, for crawler/, pipelines/ and storage/."""
    found: dict[str, set[str]] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            for name in imports_of(path):
                if name in sys.stdlib_module_names or name in PACKAGES:
                    continue
                found.setdefault(name, set()).add(str(path.relative_to(ROOT)))
    return found


def test_every_import_is_declared_and_locked() -> None:
    deps = declared()
    lock = read_lock(LOCK)
    providers = metadata.packages_distributions()
    imports = third_party_imports()
    assert {"scrapy", "pymongo", "warcio", "filelock", "numpy", "lxml"} <= set(imports)
    problems = []
    for name, files in sorted(imports.items()):
        dists = {canonicalize_name(d) for d in providers.get(name, [])}
        where = ", ".join(sorted(files)[:3])
        if not dists:
            problems.append(f"{name} ({where}): no installed distribution provides it")
        elif not dists & set(deps):
            problems.append(f"{name} ({where}): from {sorted(dists)}, not in pyproject.toml")
        elif not dists & set(lock):
            problems.append(f"{name} ({where}): {sorted(dists)} not pinned in {LOCK.name}")
    assert not problems, "\n".join(problems)


def test_declared_requirements_are_pinned_within_their_ranges() -> None:
    lock = read_lock(LOCK)
    for name, req in declared().items():
        assert name in lock, f"{name} is declared but not in {LOCK.name}"
        assert req.specifier.contains(lock[name], prereleases=True), (
            f"{LOCK.name} pins {name}=={lock[name]}, outside {req}")


def _closure() -> dict[str, set[str]]:
    """Every distribution the default install needs -> the extras asked of it."""
    env = default_environment()
    need: dict[str, set[str]] = {}
    todo = [(n, set(r.extras)) for n, r in declared().items()]
    while todo:
        name, extras = todo.pop()
        if name in need and extras <= need[name]:
            continue
        need.setdefault(name, set()).update(extras)
        for raw in metadata.distribution(name).requires or []:
            req = Requirement(raw)
            wanted = [""] + sorted(need[name])
            if req.marker is None or any(req.marker.evaluate({**env, "extra": e})
                                         for e in wanted):
                todo.append((canonicalize_name(req.name), set(req.extras)))
    return need


def test_lock_pins_the_whole_tree_as_installed() -> None:
    lock = read_lock(LOCK)
    tree = _closure()
    missing = sorted(set(tree) - set(lock))
    assert not missing, f"needed but not locked in {LOCK.name}: {missing}"
    drift = {name: (lock[name], metadata.version(name)) for name in tree
             if metadata.version(name) != lock[name]}
    assert not drift, f"installed versions differ from {LOCK.name} (locked, installed): {drift}"


def test_test_lock_keeps_the_runtime_pins() -> None:
    lock, test_lock = read_lock(LOCK), read_lock(TEST_LOCK)
    changed = {n: (v, test_lock.get(n)) for n, v in lock.items() if test_lock.get(n) != v}
    assert not changed, f"{TEST_LOCK.name} differs from {LOCK.name}: {changed}"
    for raw in pyproject()["project"]["optional-dependencies"]["test"]:
        assert canonicalize_name(Requirement(raw).name) in test_lock
    assert "requirements-test.lock" in (ROOT / "scripts" / "setup.sh").read_text()


def test_licence_declared_and_copyleft_accounted_for() -> None:
    assert pyproject()["project"]["license"] == "Apache-2.0"
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert text.split()[:4] == ["Apache", "License", "Version", "2.0,"]
    notice = (ROOT / "NOTICE").read_text(encoding="utf-8")
    unexplained = []
    for name in read_lock(LOCK):
        meta = metadata.metadata(name)
        # "License" is sometimes the whole licence text (quoting others): names only
        short = meta.get("License") or ""
        licence = " ".join([meta.get("License-Expression") or (short if len(short) < 100
                                                                else ""),
                            *(c for c in meta.get_all("Classifier") or []
                              if c.startswith("License"))])
        if re.search(r"\b(A|L)?GPL|General Public License", licence):
            if name not in COPYLEFT_OK:
                unexplained.append(f"{name}: {licence[:120]}")
    assert not unexplained, "copyleft packages not accounted for:\n" + "\n".join(unexplained)
    for name in ("SecantusDB", "surt"):
        assert name in notice
    # SecantusDB is an extra of the default install, never a plain dependency
    assert not any(canonicalize_name(Requirement(r).name) == "secantusdb"
                   for r in pyproject()["project"]["dependencies"])


def test_secantus_is_imported_only_by_the_server_process_module() -> None:
    users = third_party_imports().get("secantus", set())
    assert users == {SECANTUS_HOME}
    # ...and there only inside a function, so importing the module does not load it
    tree = ast.parse((ROOT / SECANTUS_HOME).read_text(encoding="utf-8"))
    top = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    assert "secantus" not in {imp for n in top for imp in imports_of_node(n)}


def imports_of_node(node: ast.Import | ast.ImportFrom) -> set[str]:
    if isinstance(node, ast.Import):
        return {a.name.split(".")[0] for a in node.names}
    return {node.module.split(".")[0]} if node.module else set()


IMPORT_ALL = """
import importlib, json, pkgutil, sys
wanted = sys.argv[1:]
if wanted == ["*"]:
    wanted = []
    for pkg in ("crawler", "pipelines", "storage"):
        wanted.append(pkg)
        path = importlib.import_module(pkg).__path__
        wanted += [m.name for m in pkgutil.walk_packages(path, pkg + ".")
                   if not m.name.endswith("__main__")]
for name in wanted:
    importlib.import_module(name)
loaded = sorted(m for m in sys.modules if m.split(".")[0] == "secantus")
print(json.dumps({"imported": len(wanted), "secantus": loaded}))
"""


@pytest.mark.parametrize("modules", [
    ["crawler.cli"],
    # every module of the three packages (the crawl's spider, middlewares, pipelines,
    # the storage clients, the embedded store's client and even its server module)
    ["*"],
])
def test_importing_the_crawler_does_not_load_secantus(modules: list[str]) -> None:
    proc = subprocess.run([sys.executable, "-c", IMPORT_ALL, *modules], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["secantus"] == []
    assert result["imported"] >= (30 if modules == ["*"] else 1)
