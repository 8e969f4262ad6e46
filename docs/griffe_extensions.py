"""Griffe extensions for kreg's source, used by mkdocs.yml's mkdocstrings handler. Nothing in kreg is imported.

``ExampleSections``: kreg's docstrings head their doctests ``Example:``
(singular). Griffe's Google parser reads only ``Examples:`` as doctests and
renders ``Example:`` as an admonition of prose, where ``>>>`` lines run
together and a list printed by a doctest reads as a Markdown link. This
renames the heading before parsing, so every doctest renders as a code block.

``FolderPackages``: a folder of modules without an ``__init__.py`` inside a
package (``kreg/lab/search``, ``kreg/lab/trial`` today) imports in Python as a
namespace package, but griffe skips it (it takes such a folder for scripts),
so ``kreg.lab.search.tune`` would be missing from the reference. This
declares each such folder to griffe as a package, before its modules load.
"""

from __future__ import annotations

import re
from pathlib import Path

import griffe

_EXAMPLE = re.compile(r"^(\s*)Example:\s*$", re.MULTILINE)


class ExampleSections(griffe.Extension):
    def on_instance(self, *, obj: griffe.Object, **kwargs) -> None:
        if obj.docstring is not None and "Example:" in obj.docstring.value:
            obj.docstring.value = _EXAMPLE.sub(r"\1Examples:", obj.docstring.value)


class FolderPackages(griffe.Extension):
    def on_instance(self, *, obj: griffe.Object, **kwargs) -> None:
        if not obj.is_module or not isinstance(obj.filepath, Path) or obj.filepath.name != "__init__.py":
            return
        for folder in sorted(obj.filepath.parent.iterdir()):
            if (folder.is_dir() and folder.name.isidentifier() and folder.name not in obj.members
                    and not (folder / "__init__.py").exists() and any(folder.glob("*.py"))):
                obj.set_member(folder.name, griffe.Module(folder.name, filepath=[folder]))
