"""Model zoo: the layer shapes of the networks the papers evaluate, as shape-only Graphs.

Each network is built from its published definition (the paper, or the reference implementation
the paper's figures come from), batch norm already folded into a bias of the conv or gemm before
it, dropout and stochastic depth dropped (identity at inference). Graphs carry no weights;
``random_weights`` fills them for demos and benchmarks. Where the IR cannot express a layer
exactly, the graph keeps the layer's shape and cost and docs/models.md says so (atrous
convolutions in DeepLabV3+, local response normalization in CifarNet and VGG-S).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from tessera.errors import SpecError

from .graph import (Add, Clip, Concat, Conv2d, Flatten, Gemm, GlobalAvgPool, Graph, GraphBuilder,
                    MaxPool, Mul, Relu, Resize, Shape, Sigmoid)


class _Net:
    """Shorthand for zoo definitions: conv (+ folded BN) + activation in one call."""

    def __init__(self, name: str, shape: Shape):
        self.b = GraphBuilder(name, {"input": shape})

    def shape(self, x: str) -> Shape:
        return self.b.shape(x)

    def conv(self, x: str, out: int, k: int, name: str, stride: int = 1, pad: int | None = None,
             groups: int = 1, act: str | None = "relu") -> str:
        c = self.shape(x)[0]
        pad = (k - 1) // 2 if pad is None else pad
        y = self.b.add(Conv2d(c, out, k, stride, pad, groups), x, name=name)
        return self.act(y, act, name)

    def act(self, x: str, act: str | None, name: str) -> str:
        if act is None:
            return x
        if act == "relu":
            return self.b.add(Relu(), x, name=f"{name}.relu")
        if act == "relu6":
            return self.b.add(Clip(0.0, 6.0), x, name=f"{name}.relu6")
        assert act == "silu", act
        gate = self.b.add(Sigmoid(), x, name=f"{name}.sigmoid")
        return self.b.add(Mul(), x, gate, name=f"{name}.silu")

    def fc(self, x: str, out: int, name: str, act: str | None = "relu") -> str:
        if len(self.shape(x)) != 1:
            x = self.b.add(Flatten(), x, name=f"{name}.flatten")
        y = self.b.add(Gemm(self.shape(x)[0], out), x, name=name)
        return self.act(y, act, name)

    def maxpool(self, x: str, k: int, stride: int, name: str, pad=0) -> str:
        return self.b.add(MaxPool(k, stride, pad), x, name=name)

    def gap(self, x: str, name: str) -> str:
        return self.b.add(GlobalAvgPool(), x, name=name)

    def add(self, a: str, b: str, name: str) -> str:
        return self.b.add(Add(), a, b, name=name)

    def build(self, *outputs: str) -> Graph:
        return self.b.build(*outputs)


# --- LeNet, MLPs, CifarNet, VGG-S -------------------------------------------------------------

def _lenet(split: int = 1) -> Graph:
    """LeNet-5 (LeCun et al. 1998) on 28x28 MNIST (C1 padded by 2, as the 32x32 original);
    ``split`` > 1 is LCP's split-only model: that many narrow branches (every width divided by
    ``split``, at least 1) concatenated before the classifier."""
    n = _Net("lenet" if split == 1 else f"lenet-split{split}", (1, 28, 28))
    ends = []
    for i in range(split):
        p = f"b{i}." if split > 1 else ""
        x = n.conv("input", max(1, 6 // split), 5, f"{p}conv1", pad=2)
        x = n.maxpool(x, 2, 2, f"{p}pool1")
        x = n.conv(x, max(1, 16 // split), 5, f"{p}conv2", pad=0)
        x = n.maxpool(x, 2, 2, f"{p}pool2")
        x = n.conv(x, max(1, 120 // split), 5, f"{p}conv3", pad=0)
        ends.append(n.fc(x, max(1, 84 // split), f"{p}fc1"))
    x = n.b.add(Concat(0), *ends, name="concat") if split > 1 else ends[0]
    return n.build(n.fc(x, 10, "fc2", act=None))


def _mlp(name: str, widths: list[int]) -> Graph:
    n = _Net(name, (widths[0],))
    x = "input"
    for i, w in enumerate(widths[1:], 1):
        x = n.fc(x, w, f"fc{i}", act="relu" if i < len(widths) - 1 else None)
    return n.build(x)


def _cifarnet() -> Graph:
    """TF-slim CifarNet as LCP trains it on CIFAR-10: 5x5 valid convs, 3x3/2 'SAME' max pools,
    fc 1600-384-192-10 (LRN layers left out: no weights, no MACs)."""
    n = _Net("cifarnet", (3, 32, 32))
    x = n.conv("input", 64, 5, "conv1", pad=0)
    x = n.maxpool(x, 3, 2, "pool1", pad=(0, 0, 1, 1))
    x = n.conv(x, 64, 5, "conv2", pad=0)
    x = n.maxpool(x, 3, 2, "pool2", pad=(0, 0, 1, 1))
    x = n.fc(x, 384, "fc3")
    x = n.fc(x, 192, "fc4")
    return n.build(n.fc(x, 10, "logits", act=None))


def _vggs() -> Graph:
    """VGG-S (Chatfield et al. 2014, "Return of the devil in the details") at 224x224 with LCP's
    CIFAR-100 classifier; floor-mode pooling leaves 5x5x512 before fc6 (LRN left out)."""
    n = _Net("vggs", (3, 224, 224))
    x = n.conv("input", 96, 7, "conv1", stride=2, pad=0)
    x = n.maxpool(x, 3, 3, "pool1")
    x = n.conv(x, 256, 5, "conv2", pad=1)
    x = n.maxpool(x, 2, 2, "pool2")
    for i in (3, 4, 5):
        x = n.conv(x, 512, 3, f"conv{i}")
    x = n.maxpool(x, 3, 3, "pool5")
    x = n.fc(x, 4096, "fc6")
    x = n.fc(x, 4096, "fc7")
    return n.build(n.fc(x, 100, "fc8", act=None))


# --- AlexNet, VGG -------------------------------------------------------------------------------

def _alexnet() -> Graph:
    """torchvision's AlexNet (the single-GPU 64-192-384-256-256 variant)."""
    n = _Net("alexnet", (3, 224, 224))
    x = n.conv("input", 64, 11, "conv1", stride=4, pad=2)
    x = n.maxpool(x, 3, 2, "pool1")
    x = n.conv(x, 192, 5, "conv2")
    x = n.maxpool(x, 3, 2, "pool2")
    for i, k in zip((3, 4, 5), (384, 256, 256)):
        x = n.conv(x, k, 3, f"conv{i}")
    x = n.maxpool(x, 3, 2, "pool5")
    x = n.fc(x, 4096, "fc6")
    x = n.fc(x, 4096, "fc7")
    return n.build(n.fc(x, 1000, "fc8", act=None))


_VGG_CFG = {
    11: [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    16: [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    19: [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
         512, 512, 512, 512, "M"],
}


def _vgg(depth: int, cifar: bool) -> Graph:
    """Simonyan & Zisserman 2015 (torchvision layout); the CIFAR variant (network slimming,
    pytorch-cifar) has BN after each conv and a single 512->10 classifier."""
    n = _Net(f"vgg{depth}" + ("-cifar" if cifar else ""), (3, 32, 32) if cifar else (3, 224, 224))
    x, conv, pool = "input", 0, 0
    for v in _VGG_CFG[depth]:
        if v == "M":
            pool += 1
            x = n.maxpool(x, 2, 2, f"pool{pool}")
        else:
            conv += 1
            x = n.conv(x, v, 3, f"conv{conv}")
    if cifar:
        return n.build(n.fc(x, 10, "fc", act=None))
    x = n.fc(x, 4096, "fc1")
    x = n.fc(x, 4096, "fc2")
    return n.build(n.fc(x, 1000, "fc3", act=None))


# --- ResNets ------------------------------------------------------------------------------------

def _basic_block(n: _Net, x: str, planes: int, stride: int, p: str) -> str:
    y = n.conv(x, planes, 3, f"{p}.conv1", stride=stride)
    y = n.conv(y, planes, 3, f"{p}.conv2", act=None)
    if stride != 1 or n.shape(x)[0] != planes:
        x = n.conv(x, planes, 1, f"{p}.downsample", stride=stride, act=None)
    return n.b.add(Relu(), n.add(y, x, f"{p}.add"), name=f"{p}.relu")


def _bottleneck(n: _Net, x: str, planes: int, stride: int, p: str) -> str:
    """ResNet v1.5 bottleneck (stride on the 3x3 conv, as torchvision)."""
    y = n.conv(x, planes, 1, f"{p}.conv1")
    y = n.conv(y, planes, 3, f"{p}.conv2", stride=stride)
    y = n.conv(y, planes * 4, 1, f"{p}.conv3", act=None)
    if stride != 1 or n.shape(x)[0] != planes * 4:
        x = n.conv(x, planes * 4, 1, f"{p}.downsample", stride=stride, act=None)
    return n.b.add(Relu(), n.add(y, x, f"{p}.add"), name=f"{p}.relu")


def _resnet_body(n: _Net, blocks: list[int], bottleneck: bool) -> str:
    """ImageNet stem and the four stages; returns the last stage's output tensor."""
    x = n.conv("input", 64, 7, "conv1", stride=2, pad=3)
    x = n.maxpool(x, 3, 2, "maxpool", pad=1)
    block = _bottleneck if bottleneck else _basic_block
    for stage, count in enumerate(blocks):
        for i in range(count):
            stride = 2 if stage > 0 and i == 0 else 1
            x = block(n, x, 64 << stage, stride, f"layer{stage + 1}.{i}")
    return x


def _resnet(depth: int) -> Graph:
    """He et al. 2016 ImageNet ResNets, torchvision layout."""
    blocks, bottleneck = {18: ([2, 2, 2, 2], False), 34: ([3, 4, 6, 3], False),
                          50: ([3, 4, 6, 3], True)}[depth]
    n = _Net(f"resnet{depth}", (3, 224, 224))
    x = n.gap(_resnet_body(n, blocks, bottleneck), "avgpool")
    return n.build(n.fc(x, 1000, "fc", act=None))


def _resnet164() -> Graph:
    """ResNet-164 for CIFAR-10 (He et al. 2016, "Identity mappings"): 3 stages of 18 bottlenecks,
    16/32/64 planes. Built conv-BN-ReLU so BN folds; the pre-activation original has the same
    layer shapes, MACs and weights."""
    n = _Net("resnet164", (3, 32, 32))
    x = n.conv("input", 16, 3, "conv1")
    for stage in range(3):
        for i in range(18):
            stride = 2 if stage > 0 and i == 0 else 1
            x = _bottleneck(n, x, 16 << stage, stride, f"layer{stage + 1}.{i}")
    x = n.gap(x, "avgpool")
    return n.build(n.fc(x, 10, "fc", act=None))


# --- Compact models -----------------------------------------------------------------------------

def _mobilenetv2() -> Graph:
    """Sandler et al. 2018, width 1.0 at 224x224 (torchvision layout)."""
    n = _Net("mobilenetv2", (3, 224, 224))
    x = n.conv("input", 32, 3, "features.0", stride=2, act="relu6")
    idx = 1
    for t, c, count, s in [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                           (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]:
        for i in range(count):
            p, stride, cin = f"features.{idx}", s if i == 0 else 1, n.shape(x)[0]
            y = n.conv(x, cin * t, 1, f"{p}.expand", act="relu6") if t != 1 else x
            y = n.conv(y, cin * t, 3, f"{p}.dw", stride=stride, groups=cin * t, act="relu6")
            y = n.conv(y, c, 1, f"{p}.project", act=None)
            x = n.add(x, y, f"{p}.add") if stride == 1 and cin == c else y
            idx += 1
    x = n.conv(x, 1280, 1, f"features.{idx}", act="relu6")
    x = n.gap(x, "avgpool")
    return n.build(n.fc(x, 1000, "classifier", act=None))


def _efficientnet_b0() -> Graph:
    """Tan & Le 2019, B0 at 224x224 (torchvision layout): MBConv blocks with squeeze-and-excite
    (squeeze to a quarter of the block's input channels), SiLU as sigmoid * x."""
    n = _Net("efficientnet-b0", (3, 224, 224))
    x = n.conv("input", 32, 3, "stem", stride=2, act="silu")
    idx = 0
    for t, k, s, c, count in [(1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2),
                              (6, 3, 2, 80, 3), (6, 5, 1, 112, 3), (6, 5, 2, 192, 4),
                              (6, 3, 1, 320, 1)]:
        for i in range(count):
            p, stride, cin = f"block{idx}", s if i == 0 else 1, n.shape(x)[0]
            exp = cin * t
            y = n.conv(x, exp, 1, f"{p}.expand", act="silu") if t != 1 else x
            y = n.conv(y, exp, k, f"{p}.dw", stride=stride, groups=exp, act="silu")
            g = n.gap(y, f"{p}.se.pool")
            g = n.conv(g, max(1, cin // 4), 1, f"{p}.se.reduce", act="silu")
            g = n.conv(g, exp, 1, f"{p}.se.expand", act=None)
            g = n.b.add(Sigmoid(), g, name=f"{p}.se.gate")
            y = n.b.add(Mul(), y, g, name=f"{p}.se.scale")
            y = n.conv(y, c, 1, f"{p}.project", act=None)
            x = n.add(x, y, f"{p}.add") if stride == 1 and cin == c else y
            idx += 1
    x = n.conv(x, 1280, 1, "head", act="silu")
    x = n.gap(x, "avgpool")
    return n.build(n.fc(x, 1000, "classifier", act=None))


# --- Segmentation -------------------------------------------------------------------------------

CAMVID_SHAPE = (3, 360, 480)
CAMVID_CLASSES = 11


def _deeplabv3plus() -> Graph:
    """DeepLabV3+ (Chen et al. 2018) with a ResNet-50 backbone at output stride 16 on CamVid
    360x480, 11 classes, as in the SmartDeal paper. The backbone's last stage keeps stride 1
    (dilation 2) and ASPP uses rates 6/12/18: each atrous 3x3 conv is stored as a dilation-1 3x3
    conv with the same output size, so shapes, MACs and weights are exact, the taps are not."""
    n = _Net("deeplabv3plus", CAMVID_SHAPE)
    x = n.conv("input", 64, 7, "backbone.conv1", stride=2, pad=3)
    x = n.maxpool(x, 3, 2, "backbone.maxpool", pad=1)
    low = None
    for stage, (count, stride) in enumerate([(3, 1), (4, 2), (6, 2), (3, 1)]):
        for i in range(count):
            x = _bottleneck(n, x, 64 << stage, stride if i == 0 else 1,
                            f"backbone.layer{stage + 1}.{i}")
        if stage == 0:
            low = x
    branches = [n.conv(x, 256, 1, "aspp.conv1x1")]
    branches += [n.conv(x, 256, 3, f"aspp.rate{r}") for r in (6, 12, 18)]
    g = n.conv(n.gap(x, "aspp.pool"), 256, 1, "aspp.pool.conv")
    branches.append(n.b.add(Resize(n.shape(x)[1:]), g, name="aspp.pool.resize"))
    x = n.b.add(Concat(0), *branches, name="aspp.concat")
    x = n.conv(x, 256, 1, "aspp.project")
    low = n.conv(low, 48, 1, "decoder.low_level")
    x = n.b.add(Resize(n.shape(low)[1:]), x, name="decoder.upsample")
    x = n.b.add(Concat(0), x, low, name="decoder.concat")
    x = n.conv(x, 256, 3, "decoder.conv1")
    x = n.conv(x, 256, 3, "decoder.conv2")
    x = n.conv(x, CAMVID_CLASSES, 1, "decoder.classifier", act=None)
    return n.build(n.b.add(Resize(CAMVID_SHAPE[1:]), x, name="upsample"))


# --- Registry -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class ZooEntry:
    """A zoo network: how to build it, where it is defined and which of the papers uses it."""

    name: str
    build: Callable[[], Graph]
    source: str


_ENTRIES = [
    ZooEntry("lenet", _lenet, "LeCun 1998; LCP Table II"),
    ZooEntry("lenet-split2", lambda: _lenet(2), "LCP Table II"),
    ZooEntry("lenet-split4", lambda: _lenet(4), "LCP Table II"),
    ZooEntry("lenet-split8", lambda: _lenet(8), "LCP Table II"),
    ZooEntry("mlp1", lambda: _mlp("mlp1", [784, 2048, 1024, 10]),
             "SmartDeal Table III (widths reconstructed)"),
    ZooEntry("mlp2", lambda: _mlp("mlp2", [784, 300, 100, 10]),
             "SmartDeal Table III; = LeNet-300-100, LCP's LeNet-FC"),
    ZooEntry("cifarnet", _cifarnet, "TF-slim CifarNet; LCP Table II"),
    ZooEntry("vggs", _vggs, "Chatfield 2014; LCP Table II"),
    ZooEntry("alexnet", _alexnet, "Krizhevsky 2014 (torchvision); LCP Table III"),
    ZooEntry("vgg11", lambda: _vgg(11, False), "Simonyan 2015; SmartDeal"),
    ZooEntry("vgg16", lambda: _vgg(16, False), "Simonyan 2015; LCP Table III"),
    ZooEntry("vgg19", lambda: _vgg(19, False), "Simonyan 2015"),
    ZooEntry("vgg11-cifar", lambda: _vgg(11, True), "Simonyan 2015, CIFAR-10 variant"),
    ZooEntry("vgg16-cifar", lambda: _vgg(16, True), "Simonyan 2015, CIFAR-10 variant"),
    ZooEntry("vgg19-cifar", lambda: _vgg(19, True), "Liu 2017 (network slimming); SmartDeal"),
    ZooEntry("resnet18", lambda: _resnet(18), "He 2016; LCP, SmartDeal"),
    ZooEntry("resnet34", lambda: _resnet(34), "He 2016"),
    ZooEntry("resnet50", lambda: _resnet(50), "He 2016 (v1.5); SmartDeal, LCP"),
    ZooEntry("resnet164", _resnet164, "He 2016 (identity mappings); SmartDeal"),
    ZooEntry("mobilenetv2", _mobilenetv2, "Sandler 2018; SmartDeal"),
    ZooEntry("efficientnet-b0", _efficientnet_b0, "Tan 2019; SmartDeal"),
    ZooEntry("deeplabv3plus", _deeplabv3plus, "Chen 2018, ResNet-50 OS16, CamVid; SmartDeal"),
]
ZOO: dict[str, ZooEntry] = {e.name: e for e in _ENTRIES}


def names() -> list[str]:
    """Zoo network names, smallest families first."""
    return list(ZOO)


def get(name: str) -> Graph:
    """A fresh shape-only Graph of the named network."""
    if name not in ZOO:
        raise SpecError(f"unknown zoo model {name!r}; available: {', '.join(ZOO)}")
    return ZOO[name].build()


def from_spec(spec: str) -> Graph:
    """Parse the CLI spelling ``zoo:NAME``."""
    prefix, sep, name = spec.partition(":")
    if prefix != "zoo" or not sep:
        raise SpecError(f"model spec {spec!r} must look like zoo:NAME, e.g. zoo:resnet50")
    return get(name)


def random_weights(graph: Graph, seed: int) -> Graph:
    """A copy of ``graph`` whose conv2d/gemm nodes hold He-normal float32 weights
    (N(0, 2/fan_in)) and zero biases, for demos and benchmarks."""
    rng = np.random.default_rng(seed)
    nodes = []
    for node in graph.nodes:
        shape = getattr(node.op, "weight_shape", None)
        if shape is None:
            nodes.append(dataclasses.replace(node))
            continue
        fan_in = int(np.prod(shape[1:]))
        weight = (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)
        bias = np.zeros(shape[0], np.float32) if node.op.has_bias else None
        nodes.append(dataclasses.replace(node, weight=weight, bias=bias))
    return Graph(graph.name, dict(graph.inputs), nodes, list(graph.outputs))
