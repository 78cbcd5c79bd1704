"""Find the user's App from a "module:attribute" reference, with one-line errors."""

from __future__ import annotations

import importlib
import os
import sys

from conveyor.app import App

ENV_VAR = "CONVEYOR_APP"
USAGE = 2  # the reference itself is malformed or missing
NOT_FOUND = 1  # well formed, but nothing usable is there


class LoadError(Exception):
    """An App could not be loaded; `exit_code` is what the command should exit with."""

    def __init__(self, message: str, exit_code: int = NOT_FOUND) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def resolve_reference(reference: str | None) -> str:
    """The reference given on the command line, else $CONVEYOR_APP; LoadError if neither."""
    reference = reference or os.environ.get(ENV_VAR) or None
    if reference is None:
        raise LoadError(f"no app given: pass MODULE:APP (e.g. myjobs:app) or set {ENV_VAR}", USAGE)
    return reference


def load_app(reference: str) -> App:
    """Import `module:attribute` (attribute may be dotted) and return it if it is an App.

    The current directory is put on sys.path first, so `myjobs:app` finds ./myjobs.py.
    """
    module_name, sep, attribute = reference.strip().partition(":")
    if not sep or not module_name or not attribute:
        raise LoadError(
            f"{reference!r} is not a MODULE:APP reference; write it like myjobs:app "
            "or mypackage.jobs:app",
            USAGE,
        )
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if module_name == missing or module_name.startswith(missing + "."):
            raise LoadError(
                f"no module named {missing!r} (looked in {cwd} and the installed packages); "
                "check the name and the directory you run from"
            ) from None
        raise LoadError(
            f"importing {module_name!r} failed: it needs the module {missing!r}, "
            "which is not installed"
        ) from None
    target: object = module
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise LoadError(
                f"module {module_name!r} has no attribute {attribute!r}; "
                "name the variable that holds your conveyor.App"
            ) from None
    if not isinstance(target, App):
        raise LoadError(
            f"{reference!r} is of type {type(target).__name__}, not a conveyor.App; "
            "point it at the App your jobs are registered on"
        )
    return target
