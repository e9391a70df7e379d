"""The layout keeps its promises: no module imports another that imports it back, and models/ holds networks only.

Imports are read from the source (ast), at module level: what runs when a module
is imported. (An import inside a function runs when it is called; harness/kinds.py
reaches each kind's behaviour that way, from modules that import it.)
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("analysis", "data", "harness", "lessons", "models", "serving")
SCRIPTS = ("train", "evaluate", "visualize", "predict")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules() -> dict[str, Path]:
    files = [path for package in PACKAGES for path in (ROOT / package).rglob("*.py")]
    return {module_name(path): path for path in files + [ROOT / f"{script}.py" for script in SCRIPTS]}


def imports_at_load(path: Path, modules: dict[str, Path]) -> set[str]:
    """The project modules `path` imports at module level (`from a import b` counts a.b where it is a module)."""
    found = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in found if name in modules}


def test_no_module_imports_itself_back_through_any_chain():
    modules = project_modules()
    graph = {name: imports_at_load(path, modules) - {name} for name, path in modules.items()}
    assert {"harness.runs", "harness.atomic"} <= graph["train"] and "harness.kinds" in graph["harness.runs"]  # it reads
    # A package's __init__ importing its own modules is how a package is built, not a circle of concerns.
    for name in graph:
        graph[name] = {other for other in graph[name] if not other.startswith(name + ".")}
    circles, state = [], {}

    def visit(name, trail):
        state[name] = "open"
        for other in sorted(graph[name]):
            if state.get(other) == "open":
                circles.append(trail[trail.index(other):] + [other])
            elif other not in state:
                visit(other, trail + [other])
        state[name] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert circles == [], "\n".join(" -> ".join(circle) for circle in circles)


def test_models_holds_the_networks_and_their_recipe_only():
    files = sorted(path.name for path in (ROOT / "models").iterdir() if path.suffix == ".py")
    assert files == ["__init__.py", "convnet.py", "ctc.py", "fused_batch_norm.py", "mlp.py", "reader.py",
                     "registry.py", "training.py"]


def test_no_import_hook_exists():
    for path in project_modules().values():
        assert "meta_path" not in path.read_text(encoding="utf-8"), path
