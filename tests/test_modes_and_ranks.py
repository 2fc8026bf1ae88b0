"""The execution-mode option (--mode) and the pool of distributed ranks."""

from __future__ import annotations

import time

import pytest
import torch
import torch.distributed as dist

from torchconform import distributed, modes, protocol

from .conftest import ROOT, SUITES

# -- --mode ----------------------------------------------------------------------------------

def test_parse_modes_keeps_order_and_refuses_unknown_modes():
    assert modes.parse_modes("compile,eager,compile") == ["compile", "eager"]
    assert modes.parse_modes(None) == ["eager"]
    with pytest.raises(modes.ModeError, match="unknown mode 'jit'"):
        modes.parse_modes("eager,jit")


def test_compile_on_a_torch_without_it_is_refused_with_the_reason(monkeypatch):
    monkeypatch.setattr(modes.versions, "torch_at_least", lambda version: False)
    assert "torch.compile needs torch>=2.0" in modes.why_compile_unavailable("aot_eager", ["cpu"])


def test_inductor_without_a_cpp_compiler_is_refused(monkeypatch):
    monkeypatch.setattr(modes.shutil, "which", lambda name: None)
    assert "no C++ compiler" in modes.why_compile_unavailable("inductor", ["cpu"])
    assert modes.why_compile_unavailable("aot_eager", ["cpu"]) is None


def test_unknown_mode_is_a_usage_error(pytester):
    result = pytester.runpytest(str(SUITES / "module" / "test_call.py"), "--mode", "jit",
                                "--rootdir", str(ROOT), "-c", str(ROOT / "pyproject.toml"))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--mode: unknown mode 'jit'; known: eager, compile*"])


def test_compile_mode_adds_the_mode_to_ids_and_records_it(run_suite):
    result = run_suite("module/test_call.py", extra=[
        "--mode", "eager,compile", "-k", "hooks_registered_before_compiling"])
    calls = {r.nodeid.split("::")[-1]: protocol.facts(r).get(protocol.MODE)
             for r in result.reports if r.when == "call"}
    assert calls == {
        "test_hooks_registered_before_compiling_run_in_every_mode[cpu-eager]": "eager",
        "test_hooks_registered_before_compiling_run_in_every_mode[cpu-compile]": "compile"}
    assert result.ret == 0


def test_the_eager_run_keeps_plain_ids(run_suite):
    result = run_suite("module/test_call.py", extra=["-k", "hooks_registered_before_compiling"])
    ids = [r.nodeid.split("::")[-1] for r in result.reports if r.when == "call"]
    assert ids == ["test_hooks_registered_before_compiling_run_in_every_mode[cpu]"]


# -- the ranks -------------------------------------------------------------------------------

def rank_sleeps(me, seconds):
    if me.rank == 1:
        time.sleep(seconds)
    return me.rank


def rank_skips_a_collective(me):
    if me.rank == 0:
        dist.all_reduce(torch.ones(1))
    return me.rank


def rank_number(me):
    return me.rank


@pytest.fixture
def pool(monkeypatch):
    monkeypatch.setattr(distributed, "GROUP_TIMEOUT", 5.0)
    pool = distributed.RankPool("cpu", "gloo", 0)
    yield pool
    pool.close()


@pytest.mark.slow  # quick loop: see README (pytest tests/ --run-slow)
def test_a_rank_that_does_not_answer_fails_the_call_and_the_pool_recovers(pool):
    assert pool.run(rank_number) == [0, 1]
    started = time.monotonic()
    with pytest.raises(distributed.RankError, match="rank 1 did not answer rank_sleeps within 2 s"):
        pool.run(rank_sleeps, 60, timeout=2)
    assert time.monotonic() - started < 30
    assert pool.run(rank_number) == [0, 1]  # fresh ranks


@pytest.mark.slow  # quick loop: see README (pytest tests/ --run-slow)
def test_a_collective_one_rank_skips_fails_after_the_group_timeout(pool):
    with pytest.raises(distributed.RankError, match="rank 0 raised"):
        pool.run(rank_skips_a_collective, timeout=60)
    assert pool.run(rank_number) == [0, 1]
