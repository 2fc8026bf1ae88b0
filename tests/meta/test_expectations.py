"""The known-failure file parser (--xfails-file / --skips-file)."""

from types import SimpleNamespace

import pytest

from torchconform.expectations import Entry, ExpectationError, parse


def write(tmp_path, text, name="known.txt"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_entries_with_and_without_tracker_url(tmp_path):
    path = write(tmp_path, (
        "# TARGET   REASON   [URL]\n"
        "\n"
        "module.state_dict.keep_vars   keep_vars returns copies   https://bugs.example/12\n"
        "   optim.sgd[cuda]   fused SGD not implemented yet  \n"
        "suites/autograd/test_no_grad.py::test_decorator[npu]   hangs\n"))
    assert parse(path) == [
        Entry("module.state_dict.keep_vars", "keep_vars returns copies",
              "https://bugs.example/12", f"{path}:3"),
        Entry("optim.sgd[cuda]", "fused SGD not implemented yet", None, f"{path}:4"),
        Entry("suites/autograd/test_no_grad.py::test_decorator[npu]", "hangs", None,
              f"{path}:5"),
    ]


def test_a_url_is_only_the_last_word_after_a_reason(tmp_path):
    [entry] = parse(write(tmp_path, "optim.sgd   see https://bugs.example/1 for details\n"))
    assert entry.reason == "see https://bugs.example/1 for details" and entry.url is None
    [entry] = parse(write(tmp_path, "optim.sgd   https://bugs.example/1\n"))
    assert entry.reason == "https://bugs.example/1" and entry.url is None  # a reason first
    [entry] = parse(write(tmp_path, "optim.sgd   https://b/1   https://b/2\n"))
    assert (entry.reason, entry.url) == ("https://b/1", "https://b/2")
    assert Entry("t", "broken", "https://x/1", "f:1").describe() == "broken (https://x/1)"


def test_empty_file_has_no_entries(tmp_path):
    assert parse(write(tmp_path, "# nothing known\n\n")) == []


@pytest.mark.parametrize("text, message", [
    ("\n# c\nmodule.apply.returns_self\n", r":3: 'module.apply.returns_self' needs a reason"),
    ("optim.sgd[cuda]\n", r":1: 'optim.sgd\[cuda\]' needs a reason"),
    ("https://bugs.example/1 reason\n", r":1: the line starts with a URL, not a target"),
])
def test_malformed_lines_name_the_line(tmp_path, text, message):
    with pytest.raises(ExpectationError, match=message):
        parse(write(tmp_path, text))


def test_unreadable_files(tmp_path):
    with pytest.raises(ExpectationError, match="missing.txt: cannot read"):
        parse(tmp_path / "missing.txt")
    binary = tmp_path / "binary.txt"
    binary.write_bytes(b"\xff\xfe module.apply reason\n")
    with pytest.raises(ExpectationError, match="binary.txt: not UTF-8 text"):
        parse(binary)


def test_test_id_targets_match_by_node_id_prefix():
    entry = Entry("suites/autograd/test_no_grad.py::test_decorator", "r", None, "f:1")
    node = "suites/autograd/test_no_grad.py::test_decorator[cpu]"
    assert entry.matches(SimpleNamespace(nodeid=node))
    assert not entry.matches(SimpleNamespace(nodeid="suites/autograd/test_grad.py::test_x[cpu]"))
