import brokendev  # noqa: F401
