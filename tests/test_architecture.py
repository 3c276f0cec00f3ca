"""The shape of the code, checked from its source (``ast``; nothing is imported or run).

* no import cycle among the modules of ``mmf_core``;
* no upward import between the layers of ``docs/DESIGN.md`` (bottom to top: base helpers,
  data and models, training and analysis, experiments, runs, serving and commands,
  dashboard, pages); ``mmf_core`` never imports Streamlit or the dashboard;
* no module of ``mmf_core`` over 500 lines;
* no ``sys.path`` edit anywhere, and no ``PYTHONPATH`` set outside the tests (the project
  is installed: ``pyproject.toml``);
* no dead function: every module-level function and method of ``mmf_core`` and
  ``dashboard`` is named somewhere else in the repository's Python files.

Every import counts, also one inside a function: a deferred import still is a dependency.
``from package import name`` depends on ``package.name`` when that is a module, else on
the package itself.
"""

from __future__ import annotations

import ast
from collections import Counter
from functools import lru_cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SKIP_DIRS = {".venv", ".git", "__pycache__", "build", "dist", "node_modules", ".hypothesis", ".pytest_cache"}
MAX_LINES = 500

#: bottom to top; a module may import its own layer and the layers below it. A module of
#: ``mmf_core`` must be placed here (by itself or by a package prefix) to be checked.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("base", ("mmf_core", "mmf_core.errors", "mmf_core.units", "mmf_core.fileio", "mmf_core.device",
              "mmf_core.threads", "mmf_core.memory")),
    ("data/models", ("mmf_core.data", "mmf_core.models")),
    ("train/analysis", ("mmf_core.train", "mmf_core.lazy_adam", "mmf_core.gibbs", "mmf_core.analysis", "mmf_core.plots")),
    ("experiments", ("mmf_core.experiments",)),
    ("runs", ("mmf_core.runs",)),
    ("serving/commands", ("mmf_core.serving", "mmf_core.identify_sweep", "mmf_core.tune", "mmf_core.commands", "mmf_core.cli",
                          "mmf_core.__main__")),
    ("dashboard", ("dashboard",)),
    ("pages", ("pages",)),
]

#: Functions that are called by name from outside the Python source, or by a framework.
CALLED_BY_NAME = {
    "register",  # mmf_core/cli.py discovers mmf_core/commands/<name>.py and calls register(subparsers)
    "main",  # console scripts (pyproject.toml) and ``python -m``
    "validate", "run", "plan",  # an experiment module's entry points, looked up on the module
    "forward", "backward", "setup_context",  # torch.autograd.Function / nn.Module: called by torch
    "readable", "seekable", "readinto",  # io.RawIOBase protocol: called by io.BufferedReader
}


def _python_files(*tops: str) -> list[Path]:
    out = []
    for top in tops or ("",):
        base = ROOT / top
        for path in sorted(base.rglob("*.py")):
            rel = path.relative_to(ROOT)
            if set(rel.parts) & SKIP_DIRS or rel.parts[0].endswith(".egg-info"):
                continue
            out.append(path)
    return out


@lru_cache(maxsize=None)
def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@lru_cache(maxsize=None)
def _modules() -> dict[str, Path]:
    """Module name -> file, for mmf_core, dashboard and pages."""
    return {_module_name(p): p for p in _python_files("mmf_core", "dashboard", "pages")}


def _imports(name: str, path: Path) -> set[str]:
    """The modules (and outside packages, by top-level name) that module ``name`` imports."""
    mods, out = _modules(), set()
    is_package = path.name == "__init__.py"
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                out.add(alias.name if alias.name in mods else alias.name.split(".")[0])
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            for alias in node.names:
                full = f"{module}.{alias.name}"
                if full in mods:
                    out.add(full)
                elif module in mods:
                    out.add(module)
                else:
                    out.add(module.split(".")[0])
    out.discard(name)
    return out


@lru_cache(maxsize=None)
def _graph() -> dict[str, set[str]]:
    return {name: _imports(name, path) for name, path in _modules().items()}


def _layer(module: str) -> int | None:
    """The index in :data:`LAYERS` of ``module``: the longest entry that names it or a
    package above it (the root packages ``mmf_core`` stands only for its ``__init__``)."""
    best, index = -1, None
    for i, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            inside = module.startswith(prefix + ".") and prefix != "mmf_core"
            if (module == prefix or inside) and len(prefix) > best:
                best, index = len(prefix), i
    return index


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, on_stack, stack, out, counter = {}, {}, set(), [], [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in graph:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


# ------------------------------------------------------------------------------- the checks
def test_every_engine_module_has_a_layer():
    unplaced = sorted(m for m in _modules() if _layer(m) is None)
    assert unplaced == [], f"place these modules in LAYERS of {Path(__file__).name}: {unplaced}"


def test_no_import_cycle_in_the_engine():
    engine = {m: {d for d in deps if d.startswith("mmf_core")} for m, deps in _graph().items() if m.startswith("mmf_core")}
    cycles = [" <-> ".join(c) for c in _cycles(engine)]
    assert cycles == [], "import cycles among mmf_core modules (break each, e.g. with a lower module both sides import):\n" + "\n".join(cycles)


def test_no_upward_import_between_layers():
    upward = []
    for module, deps in sorted(_graph().items()):
        mine = _layer(module)
        for dep in sorted(deps):
            theirs = _layer(dep) if dep.split(".")[0] in ("mmf_core", "dashboard", "pages") else None
            if mine is not None and theirs is not None and theirs > mine:
                upward.append(f"{module} ({LAYERS[mine][0]}) imports {dep} ({LAYERS[theirs][0]})")
    assert upward == [], "imports from a higher layer (move the code down, or the import up):\n" + "\n".join(upward)


def test_the_engine_never_imports_streamlit_or_the_dashboard():
    bad = sorted(f"{m} imports {d}" for m, deps in _graph().items() if m.startswith("mmf_core")
                 for d in deps if d.split(".")[0] in ("streamlit", "dashboard", "pages"))
    assert bad == []


def test_no_engine_module_is_over_500_lines():
    long = sorted((len(p.read_text(encoding="utf-8").splitlines()), str(p.relative_to(ROOT)))
                  for p in _python_files("mmf_core"))
    over = [f"{path}: {n} lines" for n, path in long if n > MAX_LINES]
    assert over == [], f"split these modules (at most {MAX_LINES} lines each): {over}"


def test_no_sys_path_edit_anywhere():
    edits = []
    for path in _python_files():
        for node in ast.walk(_tree(path)):
            if (isinstance(node, ast.Attribute) and node.attr == "path" and isinstance(node.value, ast.Name)
                    and node.value.id == "sys"):
                edits.append(f"{path.relative_to(ROOT)}:{node.lineno}")
            elif isinstance(node, ast.Attribute) and node.attr == "addsitedir":
                edits.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert edits == [], f"sys.path is used here; install the project instead (pip install -e .): {edits}"


def test_the_code_sets_no_pythonpath():
    """The worker processes and the bench scripts find the installed package; only tests
    may point a child process at the checkout (for the test-only experiment plugins)."""
    sets = [f"{path.relative_to(ROOT)}:{node.lineno}" for path in _python_files("mmf_core", "dashboard", "pages", "bench")
            for node in ast.walk(_tree(path)) if isinstance(node, ast.Constant) and node.value == "PYTHONPATH"]
    assert sets == [], f"PYTHONPATH is set here; the project is installed (pip install -e .): {sets}"


def _names_used() -> Counter:
    """Every identifier the repository's Python files use: names, attributes, imported
    names, and strings that are exactly an identifier (``getattr(module, "run")``)."""
    used = Counter()
    for path in _python_files():
        for node in ast.walk(_tree(path)):
            if isinstance(node, ast.Name):
                used[node.id] += 1
            elif isinstance(node, ast.Attribute):
                used[node.attr] += 1
            elif isinstance(node, ast.alias):
                used[node.name.split(".")[-1]] += 1
                if node.asname:
                    used[node.asname] += 1
            elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.isidentifier():
                used[node.value] += 1
    return used


def test_no_dead_function():
    used = _names_used()
    dead = []
    for path in _python_files("mmf_core", "dashboard"):
        rel = path.relative_to(ROOT)
        for node in _tree(path).body:
            defs = [(node.name, node)] if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) else []
            if isinstance(node, ast.ClassDef):
                defs = [(f"{node.name}.{m.name}", m) for m in node.body
                        if isinstance(m, (ast.FunctionDef, ast.AsyncFunctionDef))]
            for qualname, fn in defs:
                name = fn.name
                if (name.startswith("__") and name.endswith("__")) or name.startswith("test_") or name in CALLED_BY_NAME:
                    continue
                if used[name] == 0:
                    dead.append(f"{rel}:{fn.lineno} {qualname}")
    assert dead == [], f"defined but never named anywhere else; remove them (or call them): {dead}"


def test_the_checks_find_what_they_look_for():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []
    assert _layer("mmf_core.runs.store") == 4 and _layer("mmf_core") == 0 and _layer("pages.home") == 7
    assert _layer("mmf_core.unplaced_module") is None
