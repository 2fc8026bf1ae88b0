"""Device adapters (torchconform.adapters): a third-party adapter through the entry point
group, a simulated torch_xla, and missing capabilities becoming "not applicable" with the
adapter's reason in the terminal summary and the JSON report."""

import json
import sys
import textwrap
import types

import pytest
import torch

from torchconform import adapters, devices, timing
from torchconform.adapters import FLOAT64, FUSED_OPTIMIZERS, Backend, DeviceAdapter
from torchconform.adapters.xla import XlaAdapter
from torchconform.devices import DeviceError, resolve_devices


class FakeHpu(DeviceAdapter):
    """A simulated accelerator on the 'hpu' device type (torch knows the name, this machine
    has no such device): one device, no float64, a recorded synchronize()."""

    type = "hpu"
    syncs = []

    def why_unavailable(self, index=None):
        return self.missing_index(index)

    def device_count(self):
        return 1

    def synchronizer(self):
        return lambda: FakeHpu.syncs.append("sync")

    def backend(self):
        return Backend("fake_hpu", "1.2.3", "simulated")

    def missing_capabilities(self):
        return {FLOAT64: "the simulated HPU has no float64"}


class FakeEntryPoint:
    """What importlib.metadata returns for one entry point of the group."""

    def __init__(self, name, obj):
        self.name, self.value, self.obj = name, f"fake_pkg.adapters:{name}", obj

    def load(self):
        if isinstance(self.obj, Exception):
            raise self.obj
        return self.obj


@pytest.fixture
def entry_points(monkeypatch):
    """entry_points(point, ...): the torchconform.devices group holds exactly these."""

    def install(*points):
        monkeypatch.setattr(adapters, "_entry_points", lambda: list(points))
        adapters.reset()

    yield install
    adapters.reset()


def test_entry_point_adapter_serves_its_device_type(entry_points):
    entry_points(FakeEntryPoint("hpu", FakeHpu))
    assert resolve_devices("hpu") == ["hpu"]
    assert "hpu" in resolve_devices(None)
    with pytest.raises(DeviceError, match=r"hpu:1 does not exist: torch sees 1 hpu"):
        resolve_devices("hpu:1")
    adapter = devices.adapter("hpu")
    assert isinstance(adapter, FakeHpu)
    assert str(adapter.backend()) == "fake_hpu 1.2.3, simulated"
    assert not devices.supports_float64("hpu")
    assert adapter.lacks(FLOAT64) == "the simulated HPU has no float64"
    with pytest.raises(KeyError, match="unknown capability"):
        adapter.lacks("teleportation")


def test_entry_point_may_be_an_instance_or_a_factory(entry_points):
    instance = FakeHpu()
    entry_points(FakeEntryPoint("hpu", instance))
    assert devices.adapter("hpu") is instance
    entry_points(FakeEntryPoint("hpu", lambda: instance))
    assert devices.adapter("hpu") is instance


@pytest.mark.parametrize("obj, message", [
    (ImportError("No module named 'fake_pkg'"),
     "entry point hpu = fake_pkg.adapters:hpu failed to load: ImportError: No module named"),
    (object(), "failed to load: TypeError: .* is not a torchconform DeviceAdapter"),
    (XlaAdapter, "entry point 'hpu' gives an adapter for 'xla'"),
])
def test_broken_entry_point_is_named_in_the_refusal(entry_points, obj, message):
    entry_points(FakeEntryPoint("hpu", obj))
    with pytest.raises(DeviceError, match=f"device 'hpu' is not available: .*{message}"):
        resolve_devices("hpu")
    assert "hpu" not in resolve_devices(None)


def test_register_lets_a_backend_module_install_its_adapter(entry_points):
    entry_points()
    adapters.register(FakeHpu())
    assert resolve_devices("hpu") == ["hpu"]


def test_generic_accelerator_module_without_an_adapter_is_refused_with_a_reason(entry_points):
    entry_points()
    with pytest.raises(DeviceError, match=r"has no torch\.hpu\.is_available\(\)"):
        resolve_devices("hpu")


# -- torch_xla, simulated (the real one: tox -e xla, docs/backends/xla.md) -------------------

@pytest.fixture
def fake_torch_xla(monkeypatch):
    """Put a stand-in torch_xla into sys.modules: two PJRT CPU devices, recorded sync calls.
    Returns the list of calls; `with_sync=False` imitates releases before torch_xla.sync()."""
    calls = []

    def install(version="2.9.0", count=2, with_sync=True):
        xla = types.ModuleType("torch_xla")
        xla.__version__ = version
        xla.device_count = lambda: count
        if with_sync:
            xla.sync = lambda: calls.append("torch_xla.sync")
        runtime = types.ModuleType("torch_xla.runtime")
        runtime.device_type = lambda: "CPU"
        core = types.ModuleType("torch_xla.core")
        xm = types.ModuleType("torch_xla.core.xla_model")
        xm.mark_step = lambda: calls.append("xm.mark_step")
        xm.wait_device_ops = lambda: calls.append("xm.wait_device_ops")
        for name, module in [("torch_xla", xla), ("torch_xla.runtime", runtime),
                             ("torch_xla.core", core), ("torch_xla.core.xla_model", xm)]:
            monkeypatch.setitem(sys.modules, name, module)
        return calls

    return install


def test_xla_adapter_reads_torch_xla_runtime(fake_torch_xla):
    calls = fake_torch_xla(count=2)
    adapter = XlaAdapter()
    assert adapter.why_unavailable() is None and adapter.device_count() == 2
    assert adapter.why_unavailable(2) == "xla:2 does not exist: torch sees 2 xla device(s)"
    assert str(adapter.backend()) == "torch_xla 2.9.0, PJRT device CPU"
    adapter.synchronizer()()
    assert calls == ["torch_xla.sync", "xm.wait_device_ops"]
    # torch's fused optimizer kernels do not list xla (torch >= 2.3), or do not exist at all.
    assert "xla" in adapter.lacks(FUSED_OPTIMIZERS) or "fused=True needs" in adapter.lacks(
        FUSED_OPTIMIZERS)
    assert adapter.lacks(FLOAT64) is None


def test_xla_before_torch_xla_sync_cuts_the_graph_with_mark_step(fake_torch_xla):
    calls = fake_torch_xla(version="2.3.0", with_sync=False)
    XlaAdapter().synchronizer()()
    assert calls == ["xm.mark_step", "xm.wait_device_ops"]


def test_imported_torch_xla_makes_xla_a_default_device_and_times_synchronized(
        fake_torch_xla, entry_points):
    entry_points()
    calls = fake_torch_xla()
    assert resolve_devices("xla,xla:1") == ["xla", "xla:1"]
    assert "xla" in resolve_devices(None)
    timer, problem = timing.make_timer("xla")
    assert problem is None and timer.__name__ == "perf_counter_after_xla_synchronize"
    timer()
    assert calls == ["torch_xla.sync", "xm.wait_device_ops"]


def test_xla_without_torch_xla_says_how_to_install_it(monkeypatch):
    import importlib.util

    monkeypatch.delitem(sys.modules, "torch_xla", raising=False)
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "torch_xla" else real(name, *a))
    adapter = XlaAdapter()
    assert not adapter.discoverable
    assert adapter.why_unavailable().startswith("torch_xla is not installed (pip install "
                                                "torch_xla==")
    assert adapter.synchronizer() is None and adapter.device_count() is None


def test_cuda_backend_names_the_toolkit(monkeypatch):
    monkeypatch.setattr(torch.version, "cuda", None)
    monkeypatch.setattr(torch.version, "hip", "6.2")
    monkeypatch.setattr(torch.backends.cudnn, "version", lambda: 3001)
    assert str(devices.adapter("cuda").backend()).endswith("ROCm 6.2, cuDNN 3001")
    assert devices.adapter("cpu").lacks(FLOAT64) is None


# -- a missing capability in a run ---------------------------------------------------------

def test_missing_capability_is_not_applicable_and_reported_per_device(pytester, entry_points):
    entry_points(FakeEntryPoint("hpu", FakeHpu))
    FakeHpu.syncs.clear()
    pytester.makeini("[pytest]\ntorchconform_suites = suites\n")
    suite = pytester.path / "suites"
    suite.mkdir()
    (suite / "test_sample.py").write_text(textwrap.dedent("""
        import torch
        from torchconform import behavior

        @behavior("module.apply.returns_self")
        def test_x(device, dtype):
            assert device.type == "hpu" and dtype in (torch.float32, torch.float64)
    """))
    result = pytester.runpytest(suite, "--device=hpu", "-p", "no:randomly", "-p",
                                "no:cacheprovider", "-rs", "--report-dir", str(pytester.path))
    assert result.ret == 0
    result.stdout.fnmatch_lines([
        "*torchconform: device capabilities*",
        "hpu (fake_hpu 1.2.3, simulated) lacks:",
        "  float64: the simulated HPU has no float64 -> 1 test(s) not applicable",
        "*not applicable: hpu lacks float64: the simulated HPU has no float64*",
        "*1 passed, 1 skipped*",
    ])
    assert FakeHpu.syncs == ["sync", "sync"]  # at the end of each test on the device
    report = json.loads((pytester.path / "conformance.json").read_text())
    assert report["run"]["backends"]["hpu"] == {
        "backend": {"package": "fake_hpu", "version": "1.2.3", "details": "simulated"},
        "missing_capabilities": {"float64": "the simulated HPU has no float64"}}
    outcomes = {t["nodeid"].split("::")[1]: (t["outcome"], t["missing_capability"])
                for t in report["tests"]}
    assert outcomes == {"test_x[hpu-float32]": ("passed", None),
                        "test_x[hpu-float64]": ("not applicable", "float64")}


class SlowHpu(FakeHpu):
    timeout_factor = 3.0


def test_slow_device_gets_its_timeout_factor(pytester, entry_points):
    entry_points(FakeEntryPoint("hpu", SlowHpu))
    pytester.makeini("[pytest]\ntorchconform_suites = suites\n")
    suite = pytester.path / "suites"
    suite.mkdir()
    (suite / "test_sample.py").write_text(textwrap.dedent("""
        import pytest
        from torchconform import behavior

        @behavior("module.apply.returns_self")
        def test_scaled(device, request):
            assert request.node.get_closest_marker("timeout").args == (30.0,)

        @behavior("module.mode.returns_self")
        @pytest.mark.timeout(7)
        def test_own_timeout_kept(device, request):
            assert request.node.get_closest_marker("timeout").args == (7,)
    """))
    result = pytester.runpytest(suite, "--device=hpu", "--timeout=10", "-p", "no:randomly",
                                "-p", "no:cacheprovider", "--no-report")
    result.assert_outcomes(passed=2)


def test_the_sparse_probe_passes_where_sparse_tensors_work_and_says_why_not_elsewhere(
        monkeypatch):
    from torchconform.adapters.base import probe_sparse

    assert probe_sparse("cpu") is None

    def refuse(*args, **kwargs):
        raise NotImplementedError("Could not run 'aten::_sparse_coo_tensor_with_dims' with "
                                  "arguments from the 'SparseXLA' backend.\nmore text")

    monkeypatch.setattr(torch, "sparse_coo_tensor", refuse)
    assert probe_sparse("xla") == (
        "torch.sparse_coo_tensor(device='xla') raises NotImplementedError: Could not run "
        "'aten::_sparse_coo_tensor_with_dims' with arguments from the 'SparseXLA' backend.")
