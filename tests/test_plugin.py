"""The plugin's contract, on small sample suites: devices, behaviors, gates, empty runs,
global state and Hypothesis profiles."""

import textwrap

import pytest
from hypothesis import settings

from torchconform import versions

CPU_ONLY = ["--device=cpu", "-p", "no:randomly", "-p", "no:cacheprovider"]


@pytest.fixture
def sample(pytester):
    """Write a sample conformance suite: sample("def test_x(device): ...") -> run args."""
    pytester.makeini("[pytest]\ntorchconform_suites = suites\n")

    def write(body: str, name: str = "test_sample.py"):
        path = pytester.path / "suites" / name
        path.parent.mkdir(exist_ok=True)
        path.write_text("import pytest, torch\nfrom torchconform import behavior, since\n"
                        + textwrap.dedent(body))
        return pytester.path / "suites"

    return write


def test_tests_are_parametrized_by_device_in_their_ids(pytester, sample):
    suite = sample("""
        @behavior("module.apply.returns_self")
        def test_x(device):
            assert isinstance(device, torch.device) and device.type == "cpu"
    """)
    result = pytester.runpytest(suite, *CPU_ONLY, "-v")
    result.stdout.fnmatch_lines(["*test_x[[]cpu[]] PASSED*"])
    assert result.ret == 0


def test_dtype_fixture_ranges_over_float32_and_float64(pytester, sample):
    suite = sample("""
        @behavior("module.apply.returns_self")
        def test_x(device, dtype):
            assert torch.zeros(1, dtype=dtype).dtype == dtype
    """)
    result = pytester.runpytest(suite, *CPU_ONLY, "-v")
    result.stdout.fnmatch_lines(["*test_x[[]cpu-float32[]] PASSED*",
                                 "*test_x[[]cpu-float64[]] PASSED*"])


@pytest.mark.parametrize("device, message", [
    ("foo", "*--device: unknown device 'foo'*"),
    ("cuda", "*--device: device 'cuda' is not available: *CPU-only build*"),
])
def test_bad_device_is_a_usage_error_naming_it(pytester, sample, monkeypatch, device, message):
    import torch
    monkeypatch.setattr(torch.version, "cuda", None)
    monkeypatch.setattr(torch.version, "hip", None)
    suite = sample("""
        @behavior("module.apply.returns_self")
        def test_x(device):
            pass
    """)
    result = pytester.runpytest(suite, f"--device={device}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


def test_unmarked_conformance_test_is_refused(pytester, sample):
    suite = sample("""
        def test_nothing_documented(device):
            pass
    """)
    result = pytester.runpytest(suite, *CPU_ONLY)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*test_nothing_documented*no @behavior(id) marker*"])


def test_unknown_behavior_id_is_refused(pytester, sample):
    suite = sample("""
        @behavior("module.does_not_exist")
        def test_x(device):
            pass
    """)
    result = pytester.runpytest(suite, *CPU_ONLY)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*'module.does_not_exist' is not in the catalog*"])


def test_no_collected_test_fails(pytester, sample):
    suite = sample("X = 1\n")
    assert pytester.runpytest(suite, *CPU_ONLY).ret == pytest.ExitCode.NO_TESTS_COLLECTED


def test_run_where_every_test_was_skipped_fails(pytester, sample):
    suite = sample("""
        @behavior("module.apply.returns_self")
        def test_x(device):
            pytest.skip("nothing to see")
    """)
    result = pytester.runpytest(suite, *CPU_ONLY)
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED
    result.stdout.fnmatch_lines(["*no conformance test ran (1 selected, all skipped)*"])


def test_behavior_since_a_newer_torch_is_not_applicable(pytester, sample, monkeypatch):
    monkeypatch.setattr(versions, "TORCH_RELEASE", (1, 13, 1))
    monkeypatch.setattr(versions, "TORCH_VERSION", "1.13.1")
    suite = sample("""
        @behavior("module.parameter.remove_duplicate_false")
        def test_gated(device):
            raise AssertionError("must not run before torch 2.0")

        @behavior("module.apply.returns_self")
        def test_other(device):
            pass
    """)
    result = pytester.inline_run(suite, *CPU_ONLY, "-rs")
    skipped = [r for r in result.getreports("pytest_runtest_logreport") if r.skipped]
    assert len(skipped) == 1
    assert skipped[0].longrepr[2] == ("Skipped: not applicable: module.parameter."
                                      "remove_duplicate_false needs torch>=2.0 (installed 1.13.1)")
    result.assertoutcome(passed=1, skipped=1)


def test_since_asserts_the_installed_side_and_records_it(pytester, sample):
    suite = sample("""
        @behavior("module.zero_grad.default")
        def test_gate(device):
            assert since("2.0") is (torch.__version__ >= "2.0")
            assert since("99.0") is False
    """)
    recorder = pytester.inline_run(suite, *CPU_ONLY)
    call = [r for r in recorder.getreports("pytest_runtest_logreport") if r.when == "call"][0]
    props = dict(call.user_properties)
    assert call.passed
    assert props["behavior"] == "module.zero_grad.default" and props["area"] == "module"
    assert props["device"] == "cpu"
    gates = [v for k, v in call.user_properties if k == "gate"]
    assert gates == [f"torch>=2.0: {'yes' if versions.torch_at_least('2.0') else 'no'}",
                     "torch>=99.0: no"]


def test_global_state_is_seeded_and_restored_between_tests(pytester, sample):
    suite = sample("""
        @behavior("module.apply.returns_self")
        def test_a_leaks(device):
            first = torch.rand(3)
            torch.manual_seed(0)
            assert torch.equal(first, torch.rand(3))  # every test starts from the seed
            torch.set_default_dtype(torch.float64)
            torch.set_grad_enabled(False)
            torch.set_num_threads(1)
            torch.backends.cudnn.benchmark = True

        @behavior("module.apply.returns_self")
        def test_b_sees_defaults(device):
            assert torch.get_default_dtype() == torch.float32
            assert torch.is_grad_enabled()
            assert torch.get_float32_matmul_precision() == "highest"
            assert torch.backends.cudnn.benchmark is False
    """)
    import torch
    threads = torch.get_num_threads()
    result = pytester.inline_run(suite, *CPU_ONLY)
    result.assertoutcome(passed=2)
    assert torch.get_num_threads() == threads and torch.get_default_dtype() == torch.float32


def test_behavior_filter_selects_by_prefix(pytester, sample):
    suite = sample("""
        @behavior("module.apply.returns_self")
        def test_apply(device):
            pass

        @behavior("module.mode.returns_self")
        def test_mode(device):
            pass
    """)
    result = pytester.inline_run(suite, *CPU_ONLY, "--behavior", "module.mode")
    result.assertoutcome(passed=1)
    bad = pytester.runpytest(suite, *CPU_ONLY, "--behavior", "module.nothing")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR


def test_unknown_hypothesis_profile_is_a_usage_error(pytester, sample):
    suite = sample("""
        @behavior("module.apply.returns_self")
        def test_x(device):
            pass
    """)
    result = pytester.runpytest(suite, *CPU_ONLY, "--hypothesis-profile=fast")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unknown profile 'fast'*"])


@pytest.mark.parametrize("ci, profile", [("", "dev"), ("true", "ci")])
def test_default_hypothesis_profile_follows_ci(pytester, sample, monkeypatch, ci, profile):
    monkeypatch.setenv("CI", ci)
    suite = sample(f"""
        from hypothesis import settings

        @behavior("module.apply.returns_self")
        def test_x(device):
            assert settings.default.derandomize is {profile == "ci"}
            assert settings.default.max_examples == {settings.get_profile(profile).max_examples}
            assert settings.default.database is None or {profile == "dev"}
    """)
    result = pytester.runpytest(suite, *CPU_ONLY)
    result.stdout.fnmatch_lines([f"*hypothesis profile: {profile}*"])
    assert result.ret == 0


def test_ci_profile_is_derandomized_without_database():
    ci = settings.get_profile("ci")
    assert ci.derandomize is True and ci.database is None and ci.deadline is None
    assert settings.get_profile("thorough").max_examples > settings.get_profile("dev").max_examples
