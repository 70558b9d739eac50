"""The import contracts in pyproject.toml fail `lint-imports` when an import breaks them.

Each test lints a copy of the tree in tmp_path, so a deliberately bad import never touches the
real one.
"""

import ast
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("config", "models", "crm", "bot", "miniapp_api", "workers", "wecom", "fake_wecom")
PACKAGES += ("wecrm", "bench", "speech", "charts")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _copy_tree(target: Path) -> Path:
    for package in PACKAGES:
        shutil.copytree(
            ROOT / package, target / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(ROOT / "pyproject.toml", target / "pyproject.toml")
    return target


def _lint(tree: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo"],
        cwd=tree,
        env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=300,
    )


def _append(path: Path, line: str) -> None:
    path.write_text(f"{path.read_text()}\n{line}\n")


def test_the_tree_keeps_every_import_contract(tmp_path):
    result = _lint(_copy_tree(tmp_path))

    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_an_edge_library_in_crm_and_crm_in_models_break_their_contracts(tmp_path):
    tree = _copy_tree(tmp_path)
    _append(tree / "crm" / "vocab.py", "import flask  # noqa")
    _append(tree / "models" / "users.py", "from crm import errors  # noqa")

    result = _lint(tree)

    assert result.returncode != 0
    assert "crm imports no web, queue or WeCom library and no edge BROKEN" in result.stdout
    assert "models import no crm and no edge BROKEN" in result.stdout
    assert "crm.vocab -> flask" in result.stdout
    assert "models.users -> crm.errors" in result.stdout


def test_an_import_inside_a_function_that_closes_a_cycle_breaks_the_floors(tmp_path):
    tree = _copy_tree(tmp_path)
    # The old shape: a low-level step reaching up to a service from inside a function.
    _append(
        tree / "crm" / "customers.py",
        "def _late():\n    from crm import customer_changes  # noqa\n\n    return customer_changes",
    )

    result = _lint(tree)

    assert result.returncode != 0
    assert "no import cycles in crm, at any depth BROKEN" in result.stdout
    assert "crm floors: services -> rules -> steps -> rule sets -> building blocks BROKEN" in (
        result.stdout
    )
    assert "crm.customers -> crm.customer_changes" in result.stdout


def test_crm_imports_only_at_the_top_of_its_modules():
    # An import inside a function hides a dependency from the reader and from the contracts'
    # floors; a genuinely optional heavy dependency would be named here with its reason.
    late = [
        f"{path.relative_to(ROOT)}:{node.lineno}"
        for path in sorted((ROOT / "crm").rglob("*.py"))
        for function in ast.walk(ast.parse(path.read_text()))
        if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef)
        for node in ast.walk(function)
        if isinstance(node, ast.Import | ast.ImportFrom)
    ]

    assert late == []
