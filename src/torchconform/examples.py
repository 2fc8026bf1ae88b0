"""Each Hypothesis example of a test, as it starts.

Hypothesis looks up `test.hypothesis.inner_test` for every example it runs, so wrapping it is
the one place to see each example's arguments. The differential (what the failing example
was) and the isolation reruns (what every example was) both listen here.
"""

from __future__ import annotations

import contextlib
import functools
from typing import Any, Callable, Dict, Iterator


@contextlib.contextmanager
def each_example(function: Any, before: Callable[[Dict[str, Any]], None]) -> Iterator[bool]:
    """While inside, call before(kwargs) ahead of every example of the Hypothesis test
    `function` (its arguments, fixtures included, before the body can change them). Yields
    whether `function` is a Hypothesis test; a plain test is left as it is."""
    handle = getattr(function, "hypothesis", None)
    inner = getattr(handle, "inner_test", None)
    if inner is None:
        yield False
        return

    @functools.wraps(inner)  # Hypothesis names the test after it in its reports
    def example(*args, **kwargs):
        before(kwargs)
        return inner(*args, **kwargs)

    handle.inner_test = example
    try:
        yield True
    finally:
        handle.inner_test = inner
