"""The layer order of imports: nothing imports a floor above its own, the ground floor imports nothing of the
project's, and no modules import each other in a circle. Every import counts, also one inside a function or
under ``TYPE_CHECKING``: a lazy import up a floor is still a dependency up a floor."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("tuner", "probes", "reports")
# Bottom first. A module sits on the floor of the longest name here that is it or contains it.
LAYERS = (
    ("ground", ("tuner.core", "tuner.errors", "tuner.version")),
    ("plain types and probes", ("probes", "tuner.results", "tuner.outcomes", "tuner.schema", "tuner.options",
                                "tuner.outdir")),
    ("measurement", ("tuner.measure",)),
    ("engines", ("tuner.engines", "tuner.userfile")),
    ("search", ("tuner.search",)),
    ("trial processes", ("tuner.trial",)),
    ("analysis and advice", ("tuner.analysis",)),
    ("api", ("tuner.api", "tuner.compare", "tuner.training")),
    ("cli and reports", ("tuner.cli", "reports", "tuner")),
)


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports(path: Path, known: dict[str, Path]) -> set[str]:
    """The project's modules ``path`` imports: ``from a import b`` is module ``a.b`` where that exists."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name in known}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module in known:
            found |= {f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in known else node.module
                      for alias in node.names}
    return found


def floor(module: str) -> int:
    matches = [(len(name), index) for index, (_, names) in enumerate(LAYERS) for name in names
               if module == name or module.startswith(name + ".")]
    assert matches, f"{module} is on no floor: add it to LAYERS in tests/test_layers.py"
    return max(matches)[1]


def graph() -> dict[str, set[str]]:
    known = modules()
    return {module: imports(path, known) - {module} for module, path in known.items()}


def test_no_module_imports_a_floor_above_its_own():
    upward = [f"{module} ({LAYERS[floor(module)][0]}) -> {target} ({LAYERS[floor(target)][0]})"
              for module, targets in graph().items() for target in sorted(targets) if floor(target) > floor(module)]
    assert not upward, "imports up a floor:\n" + "\n".join(upward)


def test_the_ground_floor_imports_nothing_of_the_project():
    ground = {module: targets for module, targets in graph().items() if floor(module) == 0 and targets}
    assert not ground, ground


def test_no_modules_import_each_other_in_a_circle():
    edges = graph()
    circles = [sorted(group) for group in strongly_connected(edges) if len(group) > 1]
    assert not circles, "import circles: " + "; ".join(" <-> ".join(group) for group in circles)


def strongly_connected(edges: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's algorithm: the groups of modules that all reach each other."""
    index, low, stack, on_stack, groups = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in edges.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = set()
            while not group or node not in group:
                group.add(stack.pop())
            on_stack.difference_update(group)
            groups.append(group)

    for node in edges:
        if node not in index:
            visit(node)
    return groups


def test_the_layer_test_sees_an_import_up_a_floor_and_a_circle():
    """The checks above can fail: a made-up import from probes up to the API, and back."""
    edges = {"probes.fake": {"tuner.api"}, "tuner.api": {"probes.fake"}}
    assert floor("tuner.api") > floor("probes.fake")
    assert [sorted(group) for group in strongly_connected(edges) if len(group) > 1] == [["probes.fake", "tuner.api"]]
