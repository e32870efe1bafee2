"""train.device: auto resolves without torch as torch would, and the cache key names the result."""

import importlib.util
from types import SimpleNamespace

import torch

from flows.plan import plan, trainer_for
from reviewlstm import devices
from reviewlstm.config import PipelineConfig, profile


def test_auto_is_what_torch_sees():
    devices.cuda_seen.cache_clear()
    assert devices.cuda_seen() == torch.cuda.is_available()
    assert devices.resolve("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    assert devices.resolve("cpu") == "cpu" and devices.resolve("cuda") == "cuda"


class FakeDriver:
    """libcuda's two calls: cuInit's status and the device count it reports."""

    def __init__(self, count: int) -> None:
        self.count = count

    def cuInit(self, flags):  # noqa: N802 - the driver's name
        return 0

    def cuDeviceGetCount(self, out):  # noqa: N802
        out._obj.value = self.count
        return 0


def test_a_gpu_needs_a_cuda_build_of_torch_and_a_device_the_driver_reports(tmp_path, monkeypatch):
    (tmp_path / "__init__.py").write_text("")
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: SimpleNamespace(origin=str(tmp_path / "__init__.py")))
    cases = [("None", FakeDriver(1), False), ("'12.4'", None, False), ("'12.4'", FakeDriver(0), False),
             ("'12.4'", FakeDriver(2), True)]
    for cuda, driver, seen in cases:
        (tmp_path / "version.py").write_text(f"from typing import Optional\ncuda: Optional[str] = {cuda}\n")

        def load(name, driver=driver):
            if driver is None:
                raise OSError("libcuda.so.1: cannot open shared object file")
            return driver

        monkeypatch.setattr(devices.ctypes, "CDLL", load)
        devices.cuda_seen.cache_clear()
        assert devices.cuda_seen() is seen, (cuda, driver and driver.count)
    devices.cuda_seen.cache_clear()


def test_the_default_trains_on_the_resolved_device_and_keys_say_so():
    cfg = profile("best")
    assert cfg.train.device == "auto"
    assert trainer_for(cfg).device == devices.resolve("auto")
    explicit = cfg.model_copy(update={"train": cfg.train.model_copy(update={"device": devices.resolve("auto")})})
    trainers = lambda c: [s.params["trainer"] for s in plan(c) if "trainer" in s.params]  # noqa: E731
    assert trainers(cfg) == trainers(explicit)  # auto keys as the device it resolves to
    other = "cuda" if devices.resolve("auto") == "cpu" else "cpu"
    moved = cfg.model_copy(update={"train": cfg.train.model_copy(update={"device": other})})
    assert all(t.device == other for t in trainers(moved)) and trainers(moved) != trainers(cfg)
