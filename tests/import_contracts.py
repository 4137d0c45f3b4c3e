"""A custom import-linter contract: a package imports the standard library only.

import-linter's own contracts name the modules a package may not import; "anything outside
the standard library" is not a list, so this contract reads the import graph (built with
``include_external_packages = true``, where every third-party or standard-library import
appears as one squashed top-level module) and refuses each import whose top-level name is
neither one of the project's root packages nor in ``sys.stdlib_module_names``.

Used by ``[tool.importlinter]`` in pyproject.toml (``make lint`` runs ``lint-imports``).
"""

from __future__ import annotations

import sys
from typing import TypedDict, cast

from grimp import ImportGraph
from importlinter import Contract, ContractCheck, fields, output
from importlinter.domain.imports import Module


class _Violation(TypedDict):
    importer: str
    imported: str
    line_number: int
    line_contents: str


class StandardLibraryOnlyContract(Contract):
    """Modules in ``source_modules`` (and their descendants) import only the standard library
    and the project's own root packages (which other contracts keep in order)."""

    type_name = "standard_library_only"

    source_modules = fields.ListField(subfield=fields.ModuleField())

    def check(self, graph: ImportGraph, verbose: bool) -> ContractCheck:
        roots = set(self.session_options["root_packages"])
        violations: list[_Violation] = []
        for source in cast(list[Module], self.source_modules):
            modules = {source.name} | graph.find_descendants(source.name)
            for importer in sorted(modules):
                for imported in sorted(graph.find_modules_directly_imported_by(importer)):
                    top = imported.partition(".")[0]
                    if top in roots or top in sys.stdlib_module_names:
                        continue
                    for detail in graph.get_import_details(importer=importer, imported=imported):
                        violations.append(
                            _Violation(
                                importer=importer,
                                imported=imported,
                                line_number=int(detail["line_number"]),
                                line_contents=str(detail["line_contents"]),
                            )
                        )
        return ContractCheck(kept=not violations, metadata={"violations": violations})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for violation in cast(list[_Violation], check.metadata["violations"]):
            output.print(
                f"{violation['importer']} imports {violation['imported']}, which is not in the "
                f"standard library (l.{violation['line_number']}: {violation['line_contents']})"
            )
            output.new_line()
