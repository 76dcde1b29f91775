"""ONNX Runtime copies of small networks: the optional fast path of each box + click.

The box + click network runs once per click on a 64x64 crop, where torch spends more time
dispatching its ~280 operators than computing them; ONNX Runtime runs the same graph about
twice as fast on 2 CPU cores, with outputs equal to 3e-5. It is used where ``onnxruntime``
is installed (``pip install "napari-medseg[onnx]"``); torch stays the path otherwise.
The segmentation networks gain nothing from it (large tiles: convolution-bound).
"""

from __future__ import annotations

import io
import threading
import warnings
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

__all__ = ["OnnxNetwork", "onnx_copy"]

_EXPORTING = threading.Lock()


class OnnxNetwork:
    """A network exported to ONNX, run by ONNX Runtime on the CPU, called like the torch
    module it came from (a float32 tensor in, a float32 tensor out)."""

    def __init__(self, model: bytes, threads: int):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        self._session = onnxruntime.InferenceSession(model, options,
                                                     providers=["CPUExecutionProvider"])
        self._input = self._session.get_inputs()[0].name

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        import numpy as np
        import torch

        batch = np.ascontiguousarray(x.detach().cpu().numpy(), np.float32)
        return torch.from_numpy(self._session.run(None, {self._input: batch})[0])


def onnx_copy(network: torch.nn.Module, example: torch.Tensor) -> OnnxNetwork | None:
    """``network`` (in eval mode) exported for inputs shaped like ``example``, or None when
    onnxruntime is not installed.

    Examples
    --------
    >>> import torch
    >>> net = torch.nn.Conv2d(2, 1, 3, padding=1).eval()
    >>> x = torch.randn(1, 2, 16, 16)
    >>> copy = onnx_copy(net, x)
    >>> copy is None or torch.allclose(copy(x), net(x), atol=1e-5)
    True
    """
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return None
    import torch

    buffer = io.BytesIO()
    # The TorchScript exporter: a second, where torch.export's takes ten for this network.
    # It keeps process-wide state while it runs: one export at a time.
    with _EXPORTING, warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore", DeprecationWarning)
        # instance norm is exported in its training form, which is its only form here
        warnings.filterwarnings("ignore", "ONNX export mode is set to TrainingMode.EVAL")
        torch.onnx.export(network, (example,), buffer, input_names=["x"],
                          output_names=["y"], dynamo=False)
    return OnnxNetwork(buffer.getvalue(), torch.get_num_threads())
