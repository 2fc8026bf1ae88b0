"""Device discovery and --device validation, with accelerators simulated on a CPU machine."""

import subprocess
import sys
import textwrap
import types

import pytest
import torch

from torchconform import devices
from torchconform.devices import DeviceError, resolve_devices


@pytest.fixture
def fake_cuda(monkeypatch):
    """A CUDA 12.4 build that sees `count` GPUs (set fake_cuda(count))."""

    def install(count: int, build: str = "12.4"):
        monkeypatch.setattr(torch.version, "cuda", build)
        monkeypatch.setattr(torch.cuda, "is_available", lambda: count > 0)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: count)

    return install


def test_default_is_every_available_type(fake_cuda):
    assert resolve_devices(None)[0] == "cpu"
    fake_cuda(2)
    assert resolve_devices(None) == ["cpu", "cuda"]
    assert resolve_devices("") == ["cpu", "cuda"]


def test_explicit_list_is_kept_in_order_without_duplicates(fake_cuda):
    fake_cuda(2)
    assert resolve_devices("cuda:1, cpu,cuda:1") == ["cuda:1", "cpu"]


def test_unknown_device_names_it():
    with pytest.raises(DeviceError, match="unknown device 'gpu'"):
        resolve_devices("cpu,gpu")


def test_cuda_on_cpu_only_build_says_so(monkeypatch):
    monkeypatch.setattr(torch.version, "cuda", None)
    monkeypatch.setattr(torch.version, "hip", None)
    with pytest.raises(DeviceError, match="'cuda' is not available: .*CPU-only build"):
        resolve_devices("cuda")


def test_cuda_build_without_gpu_says_so(fake_cuda, monkeypatch):
    fake_cuda(0)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    with pytest.raises(DeviceError, match="CUDA 12.4 build but torch.cuda.is_available"):
        resolve_devices("cuda")


def test_missing_gpu_index_is_refused(fake_cuda):
    fake_cuda(2)
    assert resolve_devices("cuda:1") == ["cuda:1"]
    with pytest.raises(DeviceError, match="cuda:2 does not exist: torch sees 2 cuda"):
        resolve_devices("cuda:2")


def test_rocm_build_counts_as_cuda(monkeypatch):
    monkeypatch.setattr(torch.version, "cuda", None)
    monkeypatch.setattr(torch.version, "hip", "6.2")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert resolve_devices("cuda") == ["cuda"]
    with pytest.raises(DeviceError, match="ROCm builds of torch use the 'cuda' device type"):
        resolve_devices("hip")


@pytest.mark.parametrize("name, reason", [
    ("meta", "no data"),
    ("mps", "MPS"),
    ("cpu:1", "does not exist"),
])
def test_other_unusable_devices_are_refused_with_a_reason(monkeypatch, name, reason):
    monkeypatch.setattr(torch.backends.mps, "is_built", lambda: True)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    with pytest.raises(DeviceError, match=reason):
        resolve_devices(name)


def test_xpu_follows_its_is_available(monkeypatch):
    if not hasattr(torch, "xpu"):  # older torch has no torch.xpu module: stand one in
        monkeypatch.setattr(torch, "xpu", types.ModuleType("xpu"), raising=False)
        monkeypatch.setattr(torch.xpu, "is_available", None, raising=False)
        monkeypatch.setattr(torch.xpu, "device_count", None, raising=False)
    monkeypatch.setattr(torch.xpu, "is_available", lambda: True)
    monkeypatch.setattr(torch.xpu, "device_count", lambda: 1)
    assert "xpu" in resolve_devices(None)
    monkeypatch.setattr(torch.xpu, "is_available", lambda: False)
    with pytest.raises(DeviceError, match=r"torch\.xpu\.is_available\(\) is False"):
        resolve_devices("xpu")


def test_empty_item_is_refused():
    with pytest.raises(DeviceError, match="empty item"):
        resolve_devices("cpu,,cpu")


def test_float64_support():
    assert devices.supports_float64("cpu") and devices.supports_float64("cuda:0")
    assert not devices.supports_float64("mps")


def test_privateuse1_backend_is_discovered_under_its_name(tmp_path):
    """A PrivateUse1 backend renamed to 'npu' is found and testable (in a fresh interpreter:
    renaming the backend cannot be undone)."""
    if not hasattr(torch._C, "_get_privateuse1_backend_name"):
        pytest.skip(f"not applicable: torch {torch.__version__} cannot report a renamed "
                    "PrivateUse1 backend's name (torch>=2.1 can)")
    script = textwrap.dedent("""
        import types, torch
        torch.utils.rename_privateuse1_backend("npu")
        fake = types.ModuleType("npu")
        fake.is_available = lambda: True
        fake.device_count = lambda: 1
        torch._register_device_module("npu", fake)
        from torchconform.devices import resolve_devices, DeviceError
        print(resolve_devices(None), resolve_devices("npu"))
        try:
            resolve_devices("npu:3")
        except DeviceError as exc:
            print(exc)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True).stdout
    assert "['cpu', 'npu'] ['npu']" in out
    assert "npu:3 does not exist: torch sees 1 npu device(s)" in out


@pytest.mark.parametrize("cuda, hip, kind", [
    (None, None, "cpu"), ("12.4", None, "cuda"), (None, "6.2", "rocm")])
def test_the_cuda_adapter_reads_the_build_once_for_everyone(monkeypatch, cuda, hip, kind):
    from torchconform.adapters import cuda as cuda_adapter
    from torchconform.report.facts import torch_build

    monkeypatch.setattr(torch.version, "cuda", cuda)
    monkeypatch.setattr(torch.version, "hip", hip, raising=False)
    monkeypatch.setattr(torch.backends.cudnn, "version", lambda: None)
    assert cuda_adapter.build()["build"] == kind
    assert torch_build()["build"] == kind
