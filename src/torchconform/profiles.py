"""Hypothesis profiles of the suite, registered when the plugin is imported.

dev       default on a workstation: random examples, the example database on.
ci        derandomized, no example database: the same examples on every run. Stated in full
          rather than inherited from Hypothesis' built-in "ci" profile (which Hypothesis loads
          on its own when CI is set), so nothing here depends on that profile's contents.
thorough  many examples, for depth before a release.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

# Tests take the `device` fixture and the autouse isolation fixture: both are safe to share
# between examples (the device is immutable; isolation only restores globals afterwards).
_SUPPRESS = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]

PROFILES = {
    "dev": dict(max_examples=12, deadline=None, suppress_health_check=_SUPPRESS),
    "ci": dict(max_examples=12, deadline=None, derandomize=True, database=None,
               print_blob=True, suppress_health_check=_SUPPRESS),
    "thorough": dict(max_examples=500, deadline=None, suppress_health_check=_SUPPRESS),
}


def register() -> None:
    base = settings.get_profile("default")
    for name, values in PROFILES.items():
        settings.register_profile(name, parent=base, **values)


def default_profile() -> str:
    """`ci` when the CI environment variable is set (as CI services do), else `dev`."""
    return "ci" if os.environ.get("CI", "").lower() not in ("", "0", "false", "no") else "dev"


def current():
    """Something profiles.restore() can reload: the active profile's name where Hypothesis
    tells it (settings.get_current_profile_name, in recent Hypothesis), else the active
    settings object (settings.default; both are public API)."""
    name_of = getattr(settings, "get_current_profile_name", None)
    return name_of() if name_of is not None else settings.default


def restore(previous) -> None:
    if not isinstance(previous, str):  # a settings object: reload it as a profile of its own
        settings.register_profile("torchconform-previous", parent=previous)
        previous = "torchconform-previous"
    settings.load_profile(previous)
