"""The layout keeps its promises: the two families never import each other, both stand on core, no import cycles."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "npmf"


def _module_name(path):
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path):
    """``(module, imported npmf module, at module level?)`` for every npmf import in ``path``."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top = {id(node) for node in tree.body}
    out = []
    for node in ast.walk(tree):
        targets = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            targets = [mod] + [f"{mod}.{a.name}" for a in node.names]
        for t in targets:
            if t == "npmf" or t.startswith("npmf."):
                out.append((name, t, id(node) in top))
    return out


def _all_imports():
    return [edge for path in sorted(PACKAGE.rglob("*.py")) for edge in _imports(path)]


def _family(module):
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


@pytest.mark.parametrize("a, b", [("sgd", "bayes"), ("bayes", "sgd")])
def test_the_families_never_import_each_other(a, b):
    bad = [(m, t) for m, t, _ in _all_imports() if _family(m) == a and _family(t) == b]
    assert not bad, f"npmf.{a} imports npmf.{b}: {bad}"


def test_core_stands_on_nothing_else_of_npmf():
    # The one exception: FactorModel.from_preset reads the preset table when it is called.
    allowed = {("npmf.core.factor_model", "npmf.presets"), ("npmf.core.factor_model", "npmf.presets.from_preset")}
    bad = [
        (m, t)
        for m, t, _ in _all_imports()
        if _family(m) == "core" and _family(t) not in ("core",) and (m, t) not in allowed
    ]
    assert not bad


def test_no_import_cycles_at_module_level():
    modules = {_module_name(p) for p in PACKAGE.rglob("*.py")}
    graph = {m: set() for m in modules}
    for m, t, top in _all_imports():
        if top and t in modules and t != m:
            graph[m].add(t)
    # A package's __init__ importing its own submodules is how packages work, not a cycle.
    for m in modules:
        graph[m] = {t for t in graph[m] if not (m.startswith(t + ".") and t + "." in m + ".")}
    state, stack = {}, []

    def visit(m):
        state[m] = "open"
        stack.append(m)
        for t in graph[m]:
            if state.get(t) == "open":
                raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(t) :] + [t]))
            if t not in state:
                visit(t)
        stack.pop()
        state[m] = "done"

    for m in sorted(modules):
        if m not in state:
            visit(m)


def test_the_checks_see_the_imports_they_judge():
    edges = _all_imports()
    assert ("npmf.sgd.model", "npmf.core.factor_model.FactorModel", True) in edges
    assert ("npmf.bayes.model", "npmf.core.threads", True) in edges


def test_no_module_is_over_400_lines():
    sizes = {str(p.relative_to(PACKAGE)): len(p.read_text().splitlines()) for p in PACKAGE.rglob("*.py")}
    assert max(sizes.values()) <= 400, sorted(sizes.items(), key=lambda kv: -kv[1])[:3]


def test_the_readme_layout_table_lists_every_module():
    readme = (PACKAGE.parent / "README.md").read_text(encoding="utf-8")
    table = readme[readme.index("### Layout") : readme.index("## How the gradients are derived")]
    missing = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "__init__.py":
            continue
        rel = path.relative_to(PACKAGE).as_posix()
        if f"`{rel}`" not in table and f"`npmf/{rel}`" not in table:
            missing.append(rel)
    assert not missing, f"modules missing from the README's layout table: {missing}"
