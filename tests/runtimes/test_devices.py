"""``--device``: one syntax for every runtime, one error class for what no runtime takes."""

from __future__ import annotations

import pytest

from ovdet import ConfigError
from ovdet.runtimes.devices import parse_device
from ovdet.runtimes.onnx import execution_providers
from ovdet.runtimes.openvino import openvino_device
from ovdet.runtimes.torch import resolve_device


@pytest.mark.parametrize(
    ("device", "parsed"),
    [("auto", ("auto", None)), ("cpu", ("cpu", None)), ("CPU", ("cpu", None)), ("2", ("cuda", 2)),
     ("cuda", ("cuda", None)), ("cuda:1", ("cuda", 1)), ("tensorrt:0", ("tensorrt", 0)), ("GPU", ("GPU", None))],
)  # fmt: skip
def test_the_syntax(device: str, parsed: tuple) -> None:
    assert parse_device(device) == parsed


@pytest.mark.parametrize("device", ["cuda:x", "cpu:1", "auto:2", "tensorrt:-1", "cuda:"])
def test_a_malformed_device_is_one_config_error_for_every_runtime(device: str) -> None:
    for resolve in (resolve_device, lambda d: execution_providers(d, ["CPUExecutionProvider"]),
                    lambda d: openvino_device(d, ["CPU"])):  # fmt: skip
        with pytest.raises(ConfigError, match="unknown device"):
            resolve(device)


def test_each_runtime_checks_what_it_has() -> None:
    assert resolve_device("cpu") == "cpu" and openvino_device("auto", ["CPU"]) == "CPU"
    assert execution_providers("auto", ["CPUExecutionProvider"]) == (["CPUExecutionProvider"], "cpu")
    with pytest.raises(ConfigError, match="not an OpenVINO device"):
        openvino_device("NPU", ["CPU"])
    with pytest.raises(ConfigError, match="for onnxruntime"):
        execution_providers("GPU", ["CPUExecutionProvider"])
