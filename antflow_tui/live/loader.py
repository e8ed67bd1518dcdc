"""Load the user's script and find what to run in it, with one clear message per mistake.

The contract (also in `antflow-tui --help` and docs/getting-started.md):

1. the script defines ``pipeline`` (a Pipeline, or a zero-argument callable returning one)
   and ``items`` (a sequence, iterable or async iterable, or a zero-argument callable
   returning one): the app runs that pipeline over those items; or
2. the script defines ``async def main()``: the app runs it and shows every Pipeline that
   starts while it runs;
3. ``SCRIPT:NAME`` uses the attribute NAME instead of ``main`` / ``pipeline``.
"""

from __future__ import annotations

import importlib.util
import inspect
import sys
import traceback
from collections.abc import AsyncIterable, Callable, Iterable, Sized
from dataclasses import dataclass
from importlib.machinery import SourceFileLoader
from pathlib import Path
from typing import TYPE_CHECKING, Any

from antflow import Pipeline
from antflow._safe import safe_repr, safe_str

if TYPE_CHECKING:
    from types import ModuleType

CONTRACT = """\
A script for antflow-tui defines one of:
  pipeline = ...   a Pipeline (or a function returning one), together with
  items = ...      what to feed it: a list, an iterable, an async iterable
                   (or a function returning one); or
  async def main() code that builds and runs its own pipelines.
Use SCRIPT:NAME to pick another attribute than `pipeline` or `main`."""


class ScriptError(Exception):
    """The script cannot be run; the message says what is wrong and what to do."""


@dataclass(frozen=True, slots=True)
class LoadedScript:
    """An imported script and the attribute it asked for (if any)."""

    path: Path
    module: ModuleType
    name: str | None


@dataclass(frozen=True, slots=True)
class PipelineTarget:
    """Run `pipeline` over `items` (either may be a zero-argument factory)."""

    pipeline: Any
    items: Any


@dataclass(frozen=True, slots=True)
class MainTarget:
    """Run the coroutine function `main`."""

    main: Callable[[], Any]


Target = PipelineTarget | MainTarget


def split_spec(spec: str) -> tuple[str, str | None]:
    """``"path/to/x.py:main"`` -> (``"path/to/x.py"``, ``"main"``)."""
    path, sep, name = spec.rpartition(":")
    # A colon that is part of the path (C:\\ on Windows) is not a NAME separator.
    if not sep or not name.isidentifier() or not path:
        return spec, None
    return path, name


def load_script(spec: str) -> LoadedScript:
    """Import the script named by `spec` under a private module name.

    Raises:
        ScriptError: missing file, not a Python file, a syntax error, or an exception
            while importing (with the script's own traceback).
    """
    raw_path, name = split_spec(spec)
    path = Path(raw_path).expanduser()
    if not path.exists():
        raise ScriptError(f"no such file: {raw_path}")
    if path.is_dir():
        raise ScriptError(f"{raw_path} is a directory; give the Python file to run")
    # An executable script may have no suffix (`./nightly`, with a shebang line).
    if path.suffix not in (".py", ""):
        raise ScriptError(f"{raw_path} is not a Python file (expected a .py script)")
    path = path.resolve()
    module_name, registered_as = _module_names(path)
    loader = SourceFileLoader(module_name, str(path))
    module_spec = importlib.util.spec_from_file_location(module_name, path, loader=loader)
    if module_spec is None or module_spec.loader is None:
        raise ScriptError(f"cannot load {raw_path} as a Python module")
    module = importlib.util.module_from_spec(module_spec)
    folder = str(path.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    sys.modules[registered_as] = module
    try:
        source = path.read_bytes()
        code = compile(source, str(path), "exec")
    except SyntaxError as error:
        sys.modules.pop(registered_as, None)
        raise ScriptError(_syntax_message(error)) from None
    except (OSError, ValueError) as error:
        sys.modules.pop(registered_as, None)
        raise ScriptError(f"cannot read {raw_path}: {error}") from None
    try:
        exec(code, module.__dict__)
    except SystemExit as exit_:
        sys.modules.pop(registered_as, None)
        raise ScriptError(
            f"{raw_path} called sys.exit({safe_repr(exit_.code)}) while being imported; move that "
            f'under `if __name__ == "__main__":`'
        ) from None
    except BaseException as error:
        sys.modules.pop(registered_as, None)
        raise ScriptError(
            f"{raw_path} raised an exception while being imported:\n\n"
            + script_traceback(error, path)
        ) from None
    return LoadedScript(path=path, module=module, name=name)


def _module_names(path: Path) -> tuple[str, str]:
    """The script's module name (its file name, as `python -m` would give a sibling
    import) and the `sys.modules` key it is registered under.

    Classes the script defines are then named after it (``scrape.ParseError`` in
    tracebacks and exports), and a sibling module importing it gets the same module.
    A name some other module already holds (a script called ``json.py``) stays the
    module's name but is registered under a private key, so nothing is shadowed.
    """
    # A script named __main__.py must not run its `if __name__ == "__main__":` block.
    name = path.stem if path.stem.isidentifier() and path.stem != "__main__" else "__script__"
    if name in sys.modules:
        return name, f"antflow_tui_script_{abs(hash(str(path)))}"
    return name, name


def find_target(script: LoadedScript) -> Target:
    """Find what to run in the script, following the contract.

    Raises:
        ScriptError: nothing runnable found, or NAME names something unusable.
    """
    module = script.module
    label = script.path.name
    if script.name is not None:
        if not hasattr(module, script.name):
            raise ScriptError(f"{label} has no attribute {script.name!r}.\n\n{CONTRACT}")
        chosen = getattr(module, script.name)
        if inspect.iscoroutinefunction(chosen):
            return MainTarget(chosen)
        if isinstance(chosen, Pipeline) or callable(chosen):
            if not hasattr(module, "items"):
                raise ScriptError(
                    f"{label}:{script.name} is a pipeline, but {label} defines no `items` to "
                    f"feed it.\n\n{CONTRACT}"
                )
            return PipelineTarget(chosen, module.items)
        raise ScriptError(
            f"{label}:{script.name} is of type {type(chosen).__name__}, not a Pipeline, a function "
            f"returning one, or an async function.\n\n{CONTRACT}"
        )
    has_pipeline = hasattr(module, "pipeline")
    has_items = hasattr(module, "items")
    if has_pipeline and has_items:
        return PipelineTarget(module.pipeline, module.items)
    main = getattr(module, "main", None)
    if main is not None:
        if not inspect.iscoroutinefunction(main):
            raise ScriptError(
                f"{label} defines main(), but it is not an async function; write "
                f"`async def main():`.\n\n{CONTRACT}"
            )
        return MainTarget(main)
    if has_pipeline:
        raise ScriptError(f"{label} defines `pipeline` but no `items` to feed it.\n\n{CONTRACT}")
    if has_items:
        raise ScriptError(f"{label} defines `items` but no `pipeline` to run.\n\n{CONTRACT}")
    raise ScriptError(f"{label} defines none of `pipeline`/`items` or `main`.\n\n{CONTRACT}")


async def resolve_pipeline(target: PipelineTarget, label: str) -> tuple[Pipeline, Any, int | None]:
    """Call the factories (on the app's loop) and check what they gave.

    Returns:
        The pipeline, its items (iterable or async iterable), and their count if known.

    Raises:
        ScriptError: the pipeline is not a Pipeline, or the items are not iterable.
    """
    pipeline = target.pipeline
    if not isinstance(pipeline, Pipeline):
        if not callable(pipeline):
            raise ScriptError(
                f"`pipeline` in {label} is of type {type(pipeline).__name__}, not a Pipeline.\n\n"
                f"{CONTRACT}"
            )
        pipeline = await _call_factory(pipeline, "pipeline", label)
        if not isinstance(pipeline, Pipeline):
            raise ScriptError(
                f"`pipeline()` in {label} returned {type(pipeline).__name__}, not a Pipeline."
            )
    items = target.items
    if callable(items) and not isinstance(items, Iterable | AsyncIterable):
        items = await _call_factory(items, "items", label)
    if isinstance(items, str | bytes) or not isinstance(items, Iterable | AsyncIterable):
        kind = type(items).__name__
        raise ScriptError(
            f"`items` in {label} is of type {kind}, which cannot be iterated; give a list, an "
            f"iterable or an async iterable of items (or a function returning one)."
        )
    total = len(items) if isinstance(items, Sized) else None
    return pipeline, items, total


async def _call_factory(factory: Callable[[], Any], name: str, label: str) -> Any:
    try:
        made = factory()
        if inspect.isawaitable(made):
            made = await made
    except TypeError as error:
        if _signature_needs_arguments(factory):
            raise ScriptError(
                f"`{name}` in {label} must take no arguments to be called by antflow-tui: {error}"
            ) from None
        raise ScriptError(f"`{name}()` in {label} raised:\n\n" + script_traceback(error)) from None
    except Exception as error:
        raise ScriptError(f"`{name}()` in {label} raised:\n\n" + script_traceback(error)) from None
    return made


def _signature_needs_arguments(function: Callable[..., Any]) -> bool:
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        return False
    return any(
        p.default is p.empty
        and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        for p in signature.parameters.values()
    )


def _syntax_message(error: SyntaxError) -> str:
    where = f"{error.filename}, line {error.lineno}"
    lines = [f"syntax error in {where}: {error.msg}"]
    if error.text:
        text = error.text.rstrip("\n")
        lines.append(f"    {text.strip()}")
        if error.offset:
            indent = len(text) - len(text.lstrip())
            lines.append("    " + " " * max(error.offset - 1 - indent, 0) + "^")
    return "\n".join(lines)


def script_traceback(error: BaseException, script: Path | None = None) -> str:
    """The exception's traceback with antflow-tui's and importlib's frames trimmed."""
    ours = str(Path(__file__).resolve().parents[1])  # all of antflow_tui
    try:
        summary = traceback.TracebackException.from_exception(error)
    except Exception as failure:  # the exception's own attributes (__notes__...) raising
        return (
            f"{type(error).__name__}: {safe_str(error)}\n"
            f"(its traceback could not be formatted: {type(failure).__name__})"
        )
    frames = [
        frame
        for frame in summary.stack
        if not frame.filename.startswith(ours) and "importlib._bootstrap" not in frame.filename
    ]
    summary.stack = traceback.StackSummary.from_list(frames)
    return "".join(summary.format()).rstrip()
