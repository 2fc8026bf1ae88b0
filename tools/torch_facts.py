"""Probe the installed torch for the behaviors that differ between versions.

    python tools/torch_facts.py > facts-2.13.0.json          # one version, in its own venv
    python tools/torch_facts.py --table facts-*.json         # markdown table across versions

Every fact is observed by running the behavior (not by reading version numbers), so the table
in docs/torch-versions.md can be re-checked against any wheel. A probe that raises reports
the exception's type and the start of its message: that *is* the fact for that version.
"""

from __future__ import annotations

import inspect
import io
import json
import sys
import warnings
from typing import Callable, Dict, List


def _error(exc: BaseException) -> str:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {first[:90]}"


def _default(func: Callable, name: str) -> str:
    try:
        parameter = inspect.signature(func).parameters.get(name)
    except (TypeError, ValueError):
        return "?"
    if parameter is None:
        return "no such argument"
    if parameter.default is inspect.Parameter.empty:
        return "required"
    return repr(parameter.default)


class Payload:
    """An arbitrary picklable object: not an allowed global for weights_only unpickling."""


def _probes() -> Dict[str, Callable[[], str]]:
    import torch
    import torch.optim.optimizer as optimizer_module
    from torch import nn

    probes: Dict[str, Callable[[], str]] = {}

    def probe(name: str):
        def register(fn: Callable[[], str]):
            probes[name] = fn
            return fn
        return register

    def net_with_grads() -> nn.Module:
        net = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 1))
        net(torch.ones(3, 2)).sum().backward()
        return net

    def grads(params) -> str:
        kinds = {"None" if p.grad is None else
                 ("zeros" if torch.count_nonzero(p.grad) == 0 else "unchanged") for p in params}
        return "/".join(sorted(kinds))

    # -- environment -------------------------------------------------------------------
    @probe("python / numpy")
    def _():
        import numpy
        torch.zeros(2).numpy()  # the numpy bridge works with this numpy
        return f"{sys.version_info.major}.{sys.version_info.minor} / {numpy.__version__}"

    @probe("build")
    def _():
        cuda = getattr(torch.version, "cuda", None)
        return f"CUDA {cuda}" if cuda else "CPU"

    # -- zero_grad ---------------------------------------------------------------------
    @probe("Module.zero_grad() default")
    def _():
        net = net_with_grads()
        net.zero_grad()
        return (f"grads -> {grads(net.parameters())} "
                f"(set_to_none={_default(nn.Module.zero_grad, 'set_to_none')})")

    @probe("Optimizer.zero_grad() default")
    def _():
        net = net_with_grads()
        opt = torch.optim.SGD(net.parameters(), lr=0.1)
        opt.zero_grad()
        return (f"grads -> {grads(net.parameters())} "
                f"(set_to_none={_default(torch.optim.Optimizer.zero_grad, 'set_to_none')})")

    # -- optimizers --------------------------------------------------------------------
    @probe("SGD(params) without lr")
    def _():
        try:
            opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))])
        except Exception as exc:  # noqa: BLE001 - the exception is the fact
            return _error(exc)
        return f"lr = {opt.param_groups[0]['lr']!r}"

    @probe("SGD param_group keys")
    def _():
        opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1)
        return ", ".join(sorted(opt.param_groups[0]))

    @probe("Adam param_group keys")
    def _():
        opt = torch.optim.Adam([nn.Parameter(torch.zeros(1))])
        return ", ".join(sorted(opt.param_groups[0]))

    def foreach_fused(cls, fused: bool) -> str:
        p = nn.Parameter(torch.ones(3))
        p.grad = torch.ones(3)
        kwargs = {"lr": 0.1}
        kwargs["fused" if fused else "foreach"] = True
        try:
            opt = cls([p], **kwargs)
            opt.step()
        except Exception as exc:  # noqa: BLE001
            return _error(exc)
        return "works on CPU"

    for _cls in ("SGD", "Adam", "AdamW"):
        for _fused in (False, True):
            def _probe(cls=_cls, fused=_fused):
                return foreach_fused(getattr(torch.optim, cls), fused)
            probes[f"{_cls}({'fused' if _fused else 'foreach'}=True), CPU step"] = _probe

    @probe("optimizer foreach default on CPU")
    def _():
        chooser = getattr(optimizer_module, "_default_to_fused_or_foreach", None)
        if chooser is None:
            return "no _default_to_fused_or_foreach: for-loop unless foreach=True"
        p = nn.Parameter(torch.ones(2))
        try:
            fused, foreach = chooser([p], differentiable=False, use_fused=False)
        except TypeError:
            fused, foreach = chooser([p], differentiable=False)
        return f"fused={fused}, foreach={foreach} for CPU params"

    @probe("Optimizer step pre/post hooks")
    def _():
        opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1)
        if not hasattr(opt, "register_step_pre_hook"):
            return "absent"
        calls = []
        opt.register_step_pre_hook(lambda o, a, k: calls.append("pre"))
        opt.register_step_post_hook(lambda o, a, k: calls.append("post"))
        opt.step()
        return "run: " + ", ".join(calls)

    @probe("global optimizer step hooks")
    def _():
        ok = all(hasattr(optimizer_module, n) for n in ("register_optimizer_step_pre_hook",
                                               "register_optimizer_step_post_hook"))
        return "present" if ok else "absent"

    @probe("Optimizer state_dict / load_state_dict hooks")
    def _():
        names = ("register_state_dict_pre_hook", "register_state_dict_post_hook",
                 "register_load_state_dict_pre_hook", "register_load_state_dict_post_hook")
        found = [n for n in names if hasattr(torch.optim.Optimizer, n)]
        if not found:
            return "absent"
        opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1)
        calls = []
        opt.register_state_dict_pre_hook(lambda o: calls.append("sd_pre"))
        opt.register_state_dict_post_hook(lambda o, sd: calls.append("sd_post"))
        opt.register_load_state_dict_pre_hook(lambda o, sd: calls.append("load_pre"))
        opt.register_load_state_dict_post_hook(lambda o: calls.append("load_post"))
        opt.load_state_dict(opt.state_dict())
        return f"{len(found)}/4 present, run: " + ", ".join(calls)

    # -- serialization -----------------------------------------------------------------
    @probe("torch.load weights_only default")
    def _():
        return _default(torch.load, "weights_only")

    @probe("torch.load(f) of a state_dict")
    def _():
        buffer = io.BytesIO()
        torch.save({"w": torch.ones(2)}, buffer)
        buffer.seek(0)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            torch.load(buffer)
        future = [w for w in caught if issubclass(w.category, FutureWarning)
                  and "weights_only" in str(w.message)]
        return "loads, FutureWarning about weights_only" if future else "loads, no warning"

    @probe("torch.load(f) of an arbitrary object")
    def _():
        buffer = io.BytesIO()
        torch.save({"obj": Payload()}, buffer)
        buffer.seek(0)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                torch.load(buffer)
            except Exception as exc:  # noqa: BLE001
                return "refused: " + type(exc).__name__
        future = any(issubclass(w.category, FutureWarning) for w in caught)
        return "unpickled" + (", FutureWarning" if future else "")

    @probe("torch.load(weights_only=True) of an arbitrary object")
    def _():
        buffer = io.BytesIO()
        torch.save({"obj": Payload()}, buffer)
        buffer.seek(0)
        try:
            torch.load(buffer, weights_only=True)
        except Exception as exc:  # noqa: BLE001
            return "refused: " + type(exc).__name__
        return "unpickled"

    # -- nn.Module ---------------------------------------------------------------------
    @probe("Module.load_state_dict(assign=True)")
    def _():
        m = nn.Linear(2, 1)
        m.bias.requires_grad_(False)  # the saved tensors never require grad
        sd = {k: torch.full_like(v, 3.0) for k, v in m.state_dict().items()}
        try:
            m.load_state_dict(sd, assign=True)
        except TypeError as exc:
            return _error(exc)
        same = m.weight.data_ptr() == sd["weight"].data_ptr()
        return (f"{'takes' if same else 'copies'} the tensors; Parameter="
                f"{isinstance(m.weight, nn.Parameter)}; requires_grad of a trainable/frozen "
                f"parameter -> {m.weight.requires_grad}/{m.bias.requires_grad}")

    @probe("Module.to_empty(recurse=)")
    def _():
        return _default(nn.Module.to_empty, "recurse")

    @probe("Module.set_submodule")
    def _():
        if not hasattr(nn.Module, "set_submodule"):
            return "absent"
        root = nn.Sequential(nn.Linear(1, 1))
        new = nn.Linear(1, 1)
        root.set_submodule("0", new)
        replaced = root[0] is new
        try:
            root.set_submodule("extra", nn.Linear(1, 1))
            missing = "creates a missing leaf"
        except AttributeError as exc:
            missing = "missing leaf -> " + _error(exc)
        return (f"replaces: {replaced}; {missing}; "
                f"strict default={_default(nn.Module.set_submodule, 'strict')}")

    @probe("Module.set_submodule(strict=True) on a missing leaf")
    def _():
        if "strict" not in inspect.signature(getattr(nn.Module, "set_submodule", len)).parameters:
            return "no strict argument"
        root = nn.Sequential(nn.Linear(1, 1))
        try:
            root.set_submodule("extra", nn.Linear(1, 1), strict=True)
        except AttributeError as exc:
            return _error(exc)
        return "creates it"

    @probe("nn.Buffer")
    def _():
        if not hasattr(nn, "Buffer"):
            return "absent"
        m = nn.Module()
        m.b = nn.Buffer(torch.ones(1), persistent=False)
        return (f"registers on assignment: {'b' in dict(m.named_buffers())}, "
                f"persistent=False honored: {'b' not in m.state_dict()}")

    def remove_duplicate(kind: str) -> str:
        shared = torch.ones(1)
        m = nn.Module()
        m.child = nn.Module()
        if kind == "parameters":
            shared = nn.Parameter(shared)
            m.a = shared
            m.child.b = shared
        else:
            m.register_buffer("a", shared)
            m.child.register_buffer("b", shared)
        method = getattr(m, f"named_{kind}")
        try:
            names = [n for n, _ in method(remove_duplicate=False)]
        except TypeError as exc:
            return _error(exc)
        return f"remove_duplicate=False yields {names}"

    probes["named_parameters(remove_duplicate=False)"] = lambda: remove_duplicate("parameters")
    probes["named_buffers(remove_duplicate=False)"] = lambda: remove_duplicate("buffers")

    @probe("named_modules(remove_duplicate=False)")
    def _():
        shared = nn.Linear(1, 1)
        root = nn.Sequential(shared, shared)
        return str([n for n, _ in root.named_modules(remove_duplicate=False)])

    @probe("forward hook with_kwargs=True")
    def _():
        class Kw(nn.Module):
            def forward(self, x, *, scale=1.0):
                return x * scale

        m = Kw()
        seen = {}
        try:
            m.register_forward_hook(lambda mod, a, kw, out: seen.update(kw), with_kwargs=True)
        except TypeError as exc:
            return _error(exc)
        m(torch.ones(1), scale=2.0)
        return f"hook sees kwargs {seen}"

    @probe("forward pre-hook with_kwargs=True")
    def _():
        m = nn.Identity()
        try:
            m.register_forward_pre_hook(lambda mod, a, kw: None, with_kwargs=True)
        except TypeError as exc:
            return _error(exc)
        return "accepted"

    @probe("forward hook always_call=True")
    def _():
        class Fails(nn.Module):
            def forward(self, x):
                raise ValueError("boom")

        m = Fails()
        calls = []
        try:
            m.register_forward_hook(lambda *a: calls.append(1), always_call=True)
        except TypeError as exc:
            return _error(exc)
        try:
            m(torch.ones(1))
        except ValueError:
            pass
        return f"runs when forward raises: {calls == [1]}"

    @probe("full backward pre-hook")
    def _():
        return "present" if hasattr(nn.Module, "register_full_backward_pre_hook") else "absent"

    @probe("Module state_dict hooks (public)")
    def _():
        names = ("register_state_dict_pre_hook", "register_state_dict_post_hook",
                 "register_load_state_dict_pre_hook", "register_load_state_dict_post_hook")
        return ", ".join(n.replace("register_", "") for n in names if hasattr(nn.Module, n))

    # -- autograd ----------------------------------------------------------------------
    @probe("Tensor.register_post_accumulate_grad_hook")
    def _():
        found = hasattr(torch.Tensor, "register_post_accumulate_grad_hook")
        return "present" if found else "absent"

    @probe("autograd.grad(materialize_grads=)")
    def _():
        return _default(torch.autograd.grad, "materialize_grads")

    @probe("torch.func")
    def _():
        try:
            import torch.func  # noqa: F401
        except ImportError:
            return "absent"
        return "present"

    # -- devices (the harness guards these) ---------------------------------------------
    @probe("device APIs")
    def _():
        names = ["get_default_device", "set_default_device", "accelerator", "xpu", "mps", "mtia"]
        present = [n for n in names if hasattr(torch, n)]
        if hasattr(torch.backends, "mps"):
            present.append("backends.mps")
        if hasattr(torch._C, "_get_privateuse1_backend_name"):
            present.append("privateuse1 name")
        return ", ".join(present) or "none"

    return probes


def probe_all() -> Dict[str, str]:
    import torch

    facts = {"torch": str(torch.__version__)}
    for name, fn in _probes().items():
        try:
            facts[name] = fn()
        except Exception as exc:  # noqa: BLE001 - an unexpected failure is reported, not hidden
            facts[name] = "probe failed: " + _error(exc)
    return facts


def table(paths: List[str]) -> str:
    runs = [json.loads(open(p, encoding="utf-8").read()) for p in paths]
    runs.sort(key=lambda r: [int(x) for x in r["torch"].split("+")[0].split(".")])
    names = [k for k in runs[0] if k != "torch"]
    lines = ["| behavior | " + " | ".join(r["torch"] for r in runs) + " |",
             "|---" * (len(runs) + 1) + "|"]
    for name in names:
        cells = [str(r.get(name, "")).replace("|", "\\|") for r in runs]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--table"]:
        print(table(sys.argv[2:]))
    else:
        print(json.dumps(probe_all(), indent=1))
