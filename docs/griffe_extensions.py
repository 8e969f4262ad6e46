"""Griffe extensions for kreg's source, used by mkdocs.yml's mkdocstrings handler. Nothing in kreg is imported.

``ExampleSections``: kreg's docstrings head their doctests ``Example:``
(singular). Griffe's Google parser reads only ``Examples:`` as doctests and
renders ``Example:`` as an admonition of prose, where ``>>>`` lines run
together and a list printed by a doctest reads as a Markdown link. This
renames the heading before parsing, so every doctest renders as a code block.

``ReSTMarkup``: a few docstrings use reStructuredText where Markdown reads
them wrongly: a simple table (columns between ``====`` rules) becomes a
Markdown table, and a role (``:class:`kreg.KregError```) plain code.

``LazyNames``: ``kreg`` and ``kreg.lab`` serve their entry points lazily
(``kreg.tune``, ``kreg.lab.RegularizationPlan``, ...: a module-level dict of
name to module, read by the module's ``__getattr__``), so ``import kreg``
does not import TensorFlow. Griffe cannot see such names; this adds each as
an alias of the object it names and makes the dict's keys the module's
public names, so the reference documents ``kreg.tune`` under that name.

``FolderPackages``: a folder of modules without an ``__init__.py`` inside a
package (``kreg/lab/search``, ``kreg/lab/trial`` today) imports in Python as a
namespace package, but griffe skips it (it takes such a folder for scripts),
so ``kreg.lab.search.tune`` would be missing from the reference. This
declares each such folder to griffe as a package, before its modules load.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import griffe

_EXAMPLE = re.compile(r"^(\s*)Example:\s*$", re.MULTILINE)


class ExampleSections(griffe.Extension):
    def on_instance(self, *, obj: griffe.Object, **kwargs) -> None:
        if obj.docstring is not None and "Example:" in obj.docstring.value:
            obj.docstring.value = _EXAMPLE.sub(r"\1Examples:", obj.docstring.value)


_ROLE = re.compile(r":(?:class|mod|func|meth|attr|obj|exc|data):(`[^`]+`)")
_RULE = re.compile(r"^(\s*)(=+)( +=+)+\s*$")


def _columns(rule: str) -> list[tuple[int, int | None]]:
    spans = [m.span() for m in re.finditer(r"=+", rule)]
    return [(start, spans[i + 1][0] if i + 1 < len(spans) else None) for i, (start, _) in enumerate(spans)]


def _simple_tables(text: str) -> str:
    """ReST simple tables (rule, header, rule, rows, rule) as Markdown tables."""
    lines, out, i = text.split("\n"), [], 0
    while i < len(lines):
        rule = _RULE.match(lines[i])
        if not (rule and i + 2 < len(lines) and _RULE.match(lines[i + 2])):
            out.append(lines[i])
            i += 1
            continue
        columns, indent = _columns(lines[i]), rule.group(1)
        end = next((j for j in range(i + 3, len(lines)) if _RULE.match(lines[j])), None)
        if end is None:
            out.append(lines[i])
            i += 1
            continue
        rows = [lines[i + 1]] + [line for line in lines[i + 3:end] if line.strip()]
        cells = [[line[a:b].strip() for a, b in columns] for line in rows]
        out += ["", indent + "| " + " | ".join(cells[0]) + " |", indent + "|" + "---|" * len(columns)]
        out += [indent + "| " + " | ".join(row) + " |" for row in cells[1:]] + [""]
        i = end + 1
    return "\n".join(out)


class ReSTMarkup(griffe.Extension):
    def on_instance(self, *, obj: griffe.Object, **kwargs) -> None:
        if obj.docstring is not None:
            value = _ROLE.sub(r"\1", obj.docstring.value)
            obj.docstring.value = _simple_tables(value) if "==" in value else value


class FolderPackages(griffe.Extension):
    def on_instance(self, *, obj: griffe.Object, **kwargs) -> None:
        if not obj.is_module or not isinstance(obj.filepath, Path) or obj.filepath.name != "__init__.py":
            return
        for folder in sorted(obj.filepath.parent.iterdir()):
            if (folder.is_dir() and folder.name.isidentifier() and folder.name not in obj.members
                    and not (folder / "__init__.py").exists() and any(folder.glob("*.py"))):
                obj.set_member(folder.name, griffe.Module(folder.name, filepath=[folder]))


_LAZY_TABLES = ("_LAZY", "_LAB")  # {public name: module that defines it}, read by the module's __getattr__


class LazyNames(griffe.Extension):
    def on_members(self, *, obj: griffe.Object, **kwargs) -> None:
        if not obj.is_module or "__getattr__" not in obj.members:
            return
        names, lazy_all = [], False
        for table in _LAZY_TABLES:
            member = obj.members.get(table)
            if member is None or member.is_alias or not member.is_attribute or member.value is None:
                continue
            try:
                mapping = ast.literal_eval(str(member.value))
            except (ValueError, SyntaxError):
                continue
            for name, module in mapping.items():
                if name not in obj.members:
                    obj.set_member(name, griffe.Alias(name, f"{module}.{name}", parent=obj))
                names.append(name)
            # kreg.lab's public names are its table's keys (`__all__ = sorted(_LAZY)`, which griffe cannot evaluate).
            lazy_all = lazy_all or (table == "_LAZY" and "sorted(_LAZY)" in str(getattr(obj.members.get("__all__"), "value", "")))
        if lazy_all:
            obj.exports = sorted(names)
