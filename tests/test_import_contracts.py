"""The custom import-linter contract refuses what it should (the build relies on it)."""

from __future__ import annotations

from grimp import ImportGraph

from tests.import_contracts import StandardLibraryOnlyContract


def _graph(*imports: tuple[str, str]) -> ImportGraph:
    graph = ImportGraph()
    for name in ("routing", "routing.engine", "routing.events", "cti"):
        graph.add_module(name)
    for importer, imported in imports:
        if imported not in graph.modules:
            graph.add_module(imported.partition(".")[0], is_squashed=True)
        graph.add_import(
            importer=importer,
            imported=imported.partition(".")[0] if "." in imported else imported,
            line_number=3,
            line_contents=f"import {imported}",
        )
    return graph


def _check(graph: ImportGraph) -> tuple[bool, list[str]]:
    contract = StandardLibraryOnlyContract(
        name="routing stdlib only",
        session_options={"root_packages": ["routing", "cti"]},
        contract_options={"source_modules": ["routing"]},
    )
    result = contract.check(graph, verbose=False)
    return result.kept, [v["imported"] for v in result.metadata["violations"]]


def test_standard_library_and_own_packages_are_kept() -> None:
    graph = _graph(
        ("routing.engine", "heapq"),
        ("routing.engine", "collections"),
        ("routing.engine", "routing.events"),
        ("routing.events", "__future__"),
    )
    assert _check(graph) == (True, [])


def test_a_third_party_import_in_a_submodule_breaks_it() -> None:
    graph = _graph(("routing.engine", "heapq"), ("routing.events", "pydantic"))
    assert _check(graph) == (False, ["pydantic"])


def test_a_third_party_import_in_the_package_itself_breaks_it() -> None:
    graph = _graph(("routing", "sqlalchemy"))
    assert _check(graph) == (False, ["sqlalchemy"])
