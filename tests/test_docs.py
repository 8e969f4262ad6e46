"""The documentation: the site builds with ``mkdocs build --strict`` and the README's links hold.

One build in one test (about 5 s on a quiet machine, 17 s under load; one test so that pytest-xdist
never builds it twice), in a fresh process that also says whether building imported TensorFlow or
Keras: mkdocstrings must read kreg's source statically (griffe), never import it.
Skipped, saying why, where MkDocs is missing (the ``docs`` extra, which the ``dev`` extra includes).
"""

from __future__ import annotations

import ast
import html
import importlib.util
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytest.importorskip("mkdocs", reason="MkDocs is not installed: pip install -e '.[docs]' (in the dev extra)")
pytest.importorskip("mkdocstrings", reason="mkdocstrings is not installed: pip install -e '.[docs]'")

# `mkdocs build --strict ...` through MkDocs' own command, then which heavy modules the build loaded.
_DRIVER = textwrap.dedent("""
    import json, sys
    from mkdocs.__main__ import cli
    try:
        cli.main(args=sys.argv[1:], prog_name="mkdocs", standalone_mode=False)
    except Exception as e:
        print(f"BUILD FAILED: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
    print(json.dumps({m: m in sys.modules for m in ("tensorflow", "keras", "jax", "kreg")}))
""")


def _mkdocs(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    return subprocess.run([sys.executable, "-c", _DRIVER, *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


def _text(page: Path) -> str:
    """A built page's visible text, whitespace collapsed."""
    raw = re.sub(r"<[^>]+>", " ", page.read_text(encoding="utf-8"))
    return " ".join(html.unescape(raw).split())


def _build(out: Path) -> dict:
    done = _mkdocs("build", "--strict", "--config-file", str(ROOT / "mkdocs.yml"), "--site-dir", str(out), cwd=ROOT)
    assert done.returncode == 0, f"mkdocs build --strict failed:\n{done.stderr[-6000:]}"
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_site_builds_strictly_with_the_guides_and_the_api_reference(tmp_path):
    """One build (the slow part), then what a reader relies on; each check says what failed."""
    loaded = _build(tmp_path)
    _check_pages_and_imports(tmp_path, loaded)
    _check_api_reference(tmp_path)
    _check_measured_figures(tmp_path)


def _check_pages_and_imports(out: Path, loaded: dict) -> None:
    """Built without importing TensorFlow or Keras: mkdocstrings read kreg's source, it did not run it."""
    assert loaded == {"tensorflow": False, "keras": False, "jax": False, "kreg": False}
    for page in ("index.html", "getting-started/index.html", "guide/search/index.html",
                 "guide/selection/index.html", "guide/defaults/index.html", "guide/parallel/index.html",
                 "guide/studies/index.html", "guide/library/index.html", "measured/index.html",
                 "reference/layers/index.html", "reference/lab/index.html"):
        assert (out / page).is_file(), page


def _check_api_reference(out: Path) -> None:
    """The API reference holds kreg's docstrings, under the names users write."""
    tree = ast.parse((ROOT / "kreg" / "layers" / "structured_dropout.py").read_text())
    doc = next(ast.get_docstring(n) for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "DropBlock2D")
    paragraph = " ".join(doc.split("\n\n")[1].replace("``", "").split())  # "Neighbouring activations ..."
    layers = (out / "reference" / "layers" / "index.html").read_text(encoding="utf-8")
    assert 'id="kreg.layers.DropBlock2D"' in layers
    assert paragraph in _text(out / "reference" / "layers" / "index.html")
    lab = (out / "reference" / "lab" / "index.html").read_text(encoding="utf-8")
    for name in ("tune", "regularize", "study"):  # served lazily by kreg's __getattr__, documented under that name
        assert f'id="kreg.{name}"' in lab, name
    assert "Searches which regularization model needs on data" in _text(out / "reference" / "lab" / "index.html")
    # Every public name of kreg.lab (its lazy table, as `kreg.lab.__all__` lists them) has its entry.
    module = ast.parse((ROOT / "kreg" / "lab" / "__init__.py").read_text())
    table = next(n.value for n in module.body if isinstance(n, ast.Assign) and n.targets[0].id == "_LAZY")
    names = ast.literal_eval(table)
    assert "RegularizationPlan" in names
    absent = [name for name in names if name not in ("tune", "regularize") and f'id="kreg.lab.{name}"' not in lab]
    assert not absent, absent
    # Doctests headed "Example:" render as code blocks (docs/griffe_extensions.py), not as prose.
    training = (out / "reference" / "training" / "index.html").read_text(encoding="utf-8")
    assert '<span class="gp">&gt;&gt;&gt; </span>' in training  # a highlighted doctest prompt
    assert '<span class="go">[0.25, 0.5, 0.75, 1.0, 1.0, 1.0]</span>' in training  # its output, not a link


def test_restructuredtext_simple_tables_and_roles_become_markdown():
    """docs/griffe_extensions.py: what a docstring written for Sphinx looks like on the site."""
    spec = importlib.util.spec_from_file_location("griffe_extensions", ROOT / "docs" / "griffe_extensions.py")
    ext = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ext)
    doc = textwrap.dedent("""\
        Errors.

        =========  ===============  =========
        error      raised when      exit code
        =========  ===============  =========
        ``Bad``    a setting is bad  2
        ``Lost``   the store left   1
        =========  ===============  =========

        See :class:`kreg.KregError`.""")
    text = ext._ROLE.sub(r"\1", ext._simple_tables(doc))
    assert "| error | raised when | exit code |" in text
    assert "| ``Bad`` | a setting is bad | 2 |" in text and "| ``Lost`` | the store left | 1 |" in text
    assert "See `kreg.KregError`." in text and "====" not in text


def _check_measured_figures(out: Path) -> None:
    """docs/measured.md includes the guides' measured tables with their commands."""
    measured = _text(out / "measured" / "index.html")
    # Written once in the guides, included here (pymdownx.snippets sections).
    assert "python scripts/bench_selection.py" in measured and "mean 0.904" in measured
    assert "python scripts/bench_workers.py" in measured and "222 s (0.59x)" in measured
    assert "python scripts/bench_export.py" in measured and "kreg study learning_curve --plan dropout=0.3" in measured
    assert "--8<--" not in measured and "--8<--" not in _text(out / "guide" / "selection" / "index.html")


def test_a_broken_link_or_anchor_fails_the_strict_build(tmp_path):
    """kreg's own mkdocs.yml (inherited) turns a link to a missing page or anchor into a failed build."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "index.md").write_text("# Home\n\n[a page](missing.md), [an anchor](#no-such-heading)\n")
    config = tmp_path / "mkdocs.yml"
    config.write_text(f"INHERIT: {ROOT / 'mkdocs.yml'}\ndocs_dir: docs\nwatch: []\nnav:\n  - index.md\n")
    done = _mkdocs("build", "--strict", "--config-file", str(config), "--site-dir", str(tmp_path / "site"),
                   cwd=ROOT)
    assert done.returncode != 0
    assert "missing.md" in done.stderr and "no-such-heading" in done.stderr


# Modules whose dotted names the docs cite; other `kreg.x` spellings in the docs are MLflow tags (kreg.plan, ...).
_MODULES = ("lab", "layers", "regularizers", "constraints", "losses", "metrics", "augment", "callbacks",
            "training", "schedules", "data", "models", "errors")
_OTHERS_PAGES = ("adding-a-technique.md", "internals.md")  # written and kept true by their own authors


def _names_in_the_docs() -> dict[str, set[str]]:
    pages = [ROOT / "README.md"] + sorted(p for p in (ROOT / "docs").rglob("*.md") if p.name not in _OTHERS_PAGES)
    names: dict[str, set[str]] = {}
    for page in pages:
        for found in re.finditer(r"(?<![\w/.-])kreg\.(?:%s)(?:\.[A-Za-z_]\w*)+" % "|".join(_MODULES), page.read_text()):
            names.setdefault(found.group(0), set()).add(str(page.relative_to(ROOT)))
    return names


def test_every_kreg_name_the_docs_cite_exists():
    """A dotted name in a guide (kreg.lab.search.defaults, kreg.training.PreciseBatchNorm, ...) names real code.

    Read statically (griffe, with the docs' own extensions), as the API reference is. A name a module serves
    lazily through its ``__getattr__`` counts when the module's source lists it.
    """
    griffe = pytest.importorskip("griffe")
    spec = importlib.util.spec_from_file_location("griffe_extensions", ROOT / "docs" / "griffe_extensions.py")
    ext = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ext)
    package = griffe.load("kreg", search_paths=[str(ROOT)], allow_inspection=False,
                          extensions=griffe.load_extensions(ext.FolderPackages))
    names = _names_in_the_docs()
    assert len(names) > 30, sorted(names)
    missing = {}
    for name, pages in names.items():
        obj = package
        for part in name.split(".")[1:]:
            if obj.is_alias:
                obj = obj.final_target
            if part in obj.members:
                obj = obj.members[part]
            elif not (obj.is_module and "__getattr__" in obj.members and f'"{part}"' in obj.filepath.read_text()):
                missing[name] = sorted(pages)
                break
            else:
                break  # served lazily by the module's __getattr__
    assert not missing, f"the docs cite names kreg does not have: {missing}"


def test_every_file_the_docs_cite_exists():
    """scripts/bench_*.py, pipelines/*.yaml, kreg/lab/... named in a guide are in the repository."""
    pages = [ROOT / "README.md"] + sorted(p for p in (ROOT / "docs").rglob("*.md") if p.name not in _OTHERS_PAGES)
    cited = {}
    for page in pages:
        for found in re.finditer(r"(?<![\w./-])((?:kreg|scripts|examples|pipelines|tests)/[\w./-]*\w)", page.read_text()):
            cited.setdefault(found.group(1), set()).add(str(page.relative_to(ROOT)))
    assert len(cited) > 20, sorted(cited)
    placeholders = {"pipelines/x.yaml",  # a file named in an example error message
                    "examples/s"}  # examples per second, a column heading
    missing = {path: sorted(pages) for path, pages in cited.items()
               if path not in placeholders and not (ROOT / path).exists()}
    assert not missing, f"the docs cite files that do not exist: {missing}"


def test_every_relative_link_in_the_readme_points_at_a_file():
    text = (ROOT / "README.md").read_text()
    targets = re.findall(r"\]\(([^)\s]+)\)", text)
    relative = [t for t in targets if not re.match(r"[a-z]+:", t) and not t.startswith("#")]
    assert len(relative) >= 10, relative  # the README links into docs/
    missing = [t for t in relative if not (ROOT / t.split("#")[0]).exists()]
    assert not missing, f"README links to files that do not exist: {missing}"
