"""Export the small CNN with PyTorch's own exporters (the fixtures of tests/test_runtime.py: a
model as a mainstream tool writes it, not built by hand):

- ``small_cnn_torch.onnx``: ``torch.onnx.export`` as it is by default (torch.export-based,
  optimized: BN folded into the convs, the average pool a ReduceMean);
- ``small_cnn_torch_bn.onnx``: the same exporter with ``optimize=False`` (BatchNormalization
  nodes kept, shape arithmetic with Expand and CastLike);
- ``small_cnn_torchscript.onnx``: the legacy TorchScript exporter (``dynamo=False``).

Run in an environment with torch and onnxscript (not Tessera's: torch is not one of its
dependencies): ``python tests/data/export_small_cnn.py``. The weights and BN statistics are
seeded, so the file is the same on every run of the same torch version.
"""

from pathlib import Path

import torch
from torch import nn


class SmallCnn(nn.Module):
    """conv-BN-ReLU, max-pool, depthwise conv-BN-ReLU, pointwise conv-BN + residual add, ReLU,
    strided conv + ReLU6, global average pool, flatten, linear."""

    def __init__(self):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8)
        self.pool = nn.MaxPool2d(2)
        self.dw, self.bn2 = nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False), nn.BatchNorm2d(8)
        self.pw, self.bn3 = nn.Conv2d(8, 8, 1, bias=False), nn.BatchNorm2d(8)
        self.conv3 = nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.act = nn.ReLU6()
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        skip = self.pool(torch.relu(self.bn1(self.conv1(x))))
        x = torch.relu(self.bn2(self.dw(skip)))
        x = torch.relu(self.bn3(self.pw(x)) + skip)
        x = self.gap(self.act(self.conv3(x)))
        return self.fc(torch.flatten(x, 1))


def main() -> None:
    torch.manual_seed(0)
    model = SmallCnn()
    with torch.no_grad():
        for bn in (model.bn1, model.bn2, model.bn3):
            bn.running_mean.uniform_(-0.2, 0.2)
            bn.running_var.uniform_(0.5, 1.5)
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.2, 0.2)
    model.eval()
    x = (torch.randn(1, 3, 16, 16),)
    names = dict(input_names=["input"], output_names=["output"])
    here = Path(__file__).parent
    for name, options in (("small_cnn_torch", dict(dynamo=True, external_data=False)),
                          ("small_cnn_torch_bn", dict(dynamo=True, optimize=False,
                                                      external_data=False)),
                          ("small_cnn_torchscript", dict(dynamo=False))):
        out = here / f"{name}.onnx"
        torch.onnx.export(model, x, out, **names, **options)
        print(f"wrote {out} (torch {torch.__version__})")


if __name__ == "__main__":
    main()
