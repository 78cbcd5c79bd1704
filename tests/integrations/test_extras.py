"""Each framework's extra installs its framework and nothing of the others', with a minimum
version pinned; the dev extra has them all, so CI tests every integration."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib

import pytest

from .support import ROOT

FRAMEWORKS = {"fastapi": {"fastapi", "starlette"}, "flask": {"flask"}, "django": {"django"}}


def extras() -> dict[str, list[str]]:
    with (ROOT / "pyproject.toml").open("rb") as file:
        return dict(tomllib.load(file)["project"]["optional-dependencies"])


def names(requirements: list[str]) -> set[str]:
    return {re.split(r"[<>=!~\[ ;]", line, maxsplit=1)[0].lower() for line in requirements}


@pytest.mark.parametrize("extra", sorted(FRAMEWORKS))
def test_an_extra_pulls_in_its_framework_only(extra: str) -> None:
    declared = extras()[extra]
    assert FRAMEWORKS[extra] & names(declared), declared
    others = set().union(*(f for name, f in FRAMEWORKS.items() if name != extra))
    assert not others & names(declared), declared
    framework = next(r for r in declared if names([r]) & FRAMEWORKS[extra])
    assert ">=" in framework, f"{framework}: pin a minimum version"
    assert names(declared) <= names(extras()["dev"]), "the dev extra must have them all"


@pytest.mark.parametrize(
    ("module", "setup"),
    [
        ("conveyor.integrations.flask", ""),
        (
            "conveyor.integrations.django.core",
            "import django; from django.conf import settings; "
            "settings.configure(INSTALLED_APPS=[]); django.setup(); ",
        ),
    ],
)
def test_an_integration_imports_no_other_framework(module: str, setup: str) -> None:
    code = (
        f"{setup}import json, sys, {module}; print(json.dumps("
        "[m for m in ('fastapi', 'starlette', 'flask', 'django') if m in sys.modules]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    loaded = set(json.loads(done.stdout))
    own = "flask" if module.endswith("flask") else "django"
    assert loaded == {own}, loaded
