"""Direct tests of the harness helpers, against values computed by hand."""
