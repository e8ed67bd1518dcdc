"""Fail on a read of the engine's private state outside the engine core.

Monitors (the run stream, the recorder, pending, the UI) read a pipeline through the
declared surface, `antflow.probe`. This finds every attribute access ``x._name`` in
`antflow` and `antflow_tui` where ``_name`` is a private attribute or method of
`Pipeline` (with its `PipelineViews`), `StatusTracker` or a stage runtime
(`StageRuntime`, `WorkerRecord`, `Entry`) and ``x`` is not ``self``/``cls``, and fails
when one is outside the core modules below.

Usage: python .ci/private_reads.py [ROOT]   (prints the count and each read; exit 1 if any)
"""

from __future__ import annotations

import ast
import sys
from collections import Counter
from pathlib import Path

CORE = {
    # The pipeline and the views mixed into it, and its lifecycle.
    "antflow/pipeline.py": "the Pipeline itself",
    "antflow/_inspect.py": "PipelineViews, mixed into Pipeline: its own read-only methods",
    # What runs each item: the worker loop, and the per-call throttle it runs (which
    # waits on the pipeline's injected clock and sleep).
    "antflow/_worker.py": "the worker loop: the per-item hot path",
    "antflow/_throttle.py": "timeouts, rate limits and concurrency around each task call",
    "antflow/_runtime.py": "the per-stage, per-worker and per-item state itself",
    # The tracker, its raw history and the tails that read its buffer.
    "antflow/tracker.py": "the StatusTracker itself",
    "antflow/_history.py": "the tracker's raw record encoding",
    "antflow/tail.py": "a tracker's tails share its buffer, each with a cursor",
    # The declared surface: the one module that reads the rest for monitors.
    "antflow/probe.py": "the monitor surface",
}
"""Modules that may read the engine's private state, and why."""

CLASSES = {
    "antflow/pipeline.py": {"Pipeline"},
    "antflow/_inspect.py": {"PipelineViews"},
    "antflow/tracker.py": {"StatusTracker"},
    "antflow/_runtime.py": {"StageRuntime", "WorkerRecord", "Entry"},
}
"""Whose private attributes count."""


def private_names(root: Path) -> set[str]:
    """Every ``_name`` the classes above set on ``self`` or define as a method."""
    names: set[str] = set()
    for module, classes in CLASSES.items():
        tree = ast.parse((root / module).read_text())
        for cls in ast.walk(tree):
            if not (isinstance(cls, ast.ClassDef) and cls.name in classes):
                continue
            for node in ast.walk(cls):
                if isinstance(node, ast.Attribute) and _is_self(node.value):
                    name = node.attr
                elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    name = node.name
                elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                    name = node.target.id
                else:
                    continue
                if name.startswith("_") and not name.startswith("__"):
                    names.add(name)
    return names


def _is_self(node: ast.expr) -> bool:
    return isinstance(node, ast.Name) and node.id in ("self", "cls")


def private_reads(root: Path) -> list[tuple[str, int, str]]:
    """(module, line, name) of each private read outside the core."""
    names = private_names(root)
    found = []
    for path in sorted([*root.glob("antflow/**/*.py"), *root.glob("antflow_tui/**/*.py")]):
        module = path.relative_to(root).as_posix()
        if module in CORE:
            continue
        found.extend(
            (module, node.lineno, node.attr)
            for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.Attribute) and node.attr in names and not _is_self(node.value)
        )
    return found


def main() -> int:
    root = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parents[1])
    found = private_reads(root)
    print(f"private engine reads outside the core: {len(found)}")
    by_module = Counter(module for module, _, _ in found)
    for module, line, name in found:
        print(f"  {module}:{line}: .{name}")
    if found:
        modules = ", ".join(f"{m} ({n})" for m, n in by_module.most_common())
        print(
            f"Read the engine through antflow.probe instead ({modules}); the core modules "
            f"that may read it are listed in .ci/private_reads.py.",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
