"""The packages' layering, as the code states it (docs: README Layout): no import cycles, `TYPE_CHECKING` imports and
imports inside functions included; `steps` imports nothing from `pipelines`; the local engine
(pipelines/local/engine/) imports nothing Regula-specific; nothing imports the CLI; and no package imports another that
imports it back, through any of their modules (pipelines/<package>/, the engine, steps/ each count as one).

The imports are read with `ast` from the files themselves, so the test sees what a reader sees."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FIRST_PARTY = ("pipelines", "steps")
ENGINE = "pipelines.local.engine"
# what the engine may import of the repository: itself, and the errors every module may raise
ENGINE_ALLOWED = (ENGINE, "pipelines.errors")
# the one cycle left, in steps/ (whose files are the step code pipeline.json hashes): model_code.builtin() imports
# steps.model inside the function, and steps.model imports model_code. Listed so that a new cycle fails, and so
# does this one's entry once it is broken.
KNOWN_CYCLES = [["steps.model", "steps.model_code"]]


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules(root: Path, packages=FIRST_PARTY) -> dict[str, Path]:
    found = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            found[module_name(path, root)] = path
    return found


def imports(path: Path, name: str, known: set[str]) -> set[str]:
    """The first-party modules `path` (module `name`) imports, wherever the import statement is: `from a import b`
    counts as a.b where that is a module, else as a."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package down
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        for target in targets:
            if target.split(".")[0] in FIRST_PARTY:
                while target not in known and "." in target:  # `import pipelines.a.b` names a.b, a module
                    target = target.rpartition(".")[0]
                if target != name:
                    found.add(target)
    return found


def graph(root: Path, packages=FIRST_PARTY) -> dict[str, set[str]]:
    found = modules(root, packages)
    known = set(found)
    return {name: imports(path, name, known) for name, path in found.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one module (Tarjan), each sorted; and a module importing itself."""
    index, low, stack, on_stack, groups = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(edges.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return sorted(groups)


def package_of(name: str, root: Path) -> str:
    """The package a module belongs to for the package-level check: `steps`, the engine, `pipelines.<sub>` for a
    module of a subpackage; a module directly in pipelines/ (errors, settings) is its own."""
    parts = name.split(".")
    if parts[0] == "steps":
        return "steps"
    if name == ENGINE or name.startswith(ENGINE + "."):
        return ENGINE
    if len(parts) > 1 and (root / "pipelines" / parts[1]).is_dir():
        return ".".join(parts[:2])
    return name


def package_graph(root: Path, packages=FIRST_PARTY) -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for name, targets in graph(root, packages).items():
        source = package_of(name, root)
        edges.setdefault(source, set()).update(package_of(t, root) for t in targets)
        edges[source].discard(source)
    return edges


def test_no_module_imports_another_that_imports_it_back():
    assert cycles(graph(REPO)) == KNOWN_CYCLES


def test_no_package_imports_another_that_imports_it_back():
    """Modules can avoid each other while their packages still loop (a.x imports b.y, b.z imports a.w): the
    packages' imports are a one-way stack too."""
    edges = package_graph(REPO)
    assert {"steps", ENGINE, "pipelines.cli", "pipelines.definition", "pipelines.errors"} <= set(edges)
    assert cycles(edges) == []


def test_steps_import_nothing_of_pipelines():
    bad = {name: sorted(t for t in targets if t.startswith("pipelines")) for name, targets in graph(REPO).items()}
    assert {name: targets for name, targets in bad.items() if name.startswith("steps") and targets} == {}


def test_the_engine_imports_nothing_regula_specific():
    edges = graph(REPO)
    engine = {name: targets for name, targets in edges.items() if name == ENGINE or name.startswith(ENGINE + ".")}
    assert len(engine) > 10  # the engine's modules are where this test looks
    outside = {
        name: sorted(t for t in targets if not any(t == a or t.startswith(a + ".") for a in ENGINE_ALLOWED))
        for name, targets in engine.items()
    }
    assert {name: targets for name, targets in outside.items() if targets} == {}


def test_nothing_imports_the_cli():
    edges = graph(REPO, ("pipelines", "steps", "benchmarks"))
    users = {
        name: sorted(t for t in targets if t == "pipelines.cli" or t.startswith("pipelines.cli."))
        for name, targets in edges.items()
        if not (name == "pipelines.cli" or name.startswith("pipelines.cli."))
    }
    assert {name: targets for name, targets in users.items() if targets} == {}


def test_the_checks_see_a_cycle_hidden_under_type_checking_and_a_function_import(tmp_path):
    """The scanner itself, on a package written here: a cycle through a TYPE_CHECKING import and one through an
    import inside a function are both found, and a one-way import is not a cycle."""
    package = tmp_path / "pipelines"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("")
    (package / "a.py").write_text("from pipelines.sub import b\n")
    (package / "sub" / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pipelines.a import A\n"
    )
    (package / "c.py").write_text("def f():\n    from pipelines import d\n")
    (package / "d.py").write_text("import pipelines.c\n")
    (package / "e.py").write_text("from pipelines.a import x\n")
    edges = graph(tmp_path, ("pipelines",))
    assert edges["pipelines.a"] == {"pipelines.sub.b"} and edges["pipelines.d"] == {"pipelines.c"}
    assert cycles(edges) == [["pipelines.a", "pipelines.sub.b"], ["pipelines.c", "pipelines.d"]]


def test_the_package_check_sees_packages_that_loop_through_different_modules(tmp_path):
    """pipelines.one.x imports pipelines.two.y and pipelines.two.z imports pipelines.one.w: no module loop, a package
    loop; pipelines.three imports pipelines.one one way only."""
    package = tmp_path / "pipelines"
    for sub in ("one", "two", "three"):
        (package / sub).mkdir(parents=True)
        (package / sub / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    (package / "one" / "x.py").write_text("from pipelines.two import y\n")
    (package / "one" / "w.py").write_text("")
    (package / "two" / "y.py").write_text("")
    (package / "two" / "z.py").write_text("from pipelines.one.w import thing\n")
    (package / "three" / "t.py").write_text("import pipelines.one.x\n")
    assert cycles(graph(tmp_path, ("pipelines",))) == []
    edges = package_graph(tmp_path, ("pipelines",))
    assert edges["pipelines.three"] == {"pipelines.one"}
    assert cycles(edges) == [["pipelines.one", "pipelines.two"]]
