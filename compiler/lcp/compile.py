"""Compile a sequential int8 network for the LCP array into a Program."""

from __future__ import annotations

import numpy as np

from tessera.config import LcpConfig
from tessera.errors import CompileError

from ..layers import LayerShape, QuantLayer
from ..program import Program, new_manifest
from .isa import STEP_BYTES
from .layout import (TensorLayout, block_bytes, pack_params, pack_tensor, pack_weights,
                     weight_blocks)
from .tiling import LayerAddrs, layer_jobs, layer_steps, program_steps

ALIGN = 64


def _align(n: int) -> int:
    return -(-n // ALIGN) * ALIGN


def check_chain(shapes: list[LayerShape]) -> None:
    """Each layer must consume exactly what the previous one produces."""
    for a, b in zip(shapes, shapes[1:]):
        if a.output_shape != b.input_shape:
            raise CompileError(f"layer '{b.name}' expects input {b.input_shape} but layer "
                               f"'{a.name}' produces {a.output_shape}")


def compile_network(cfg: LcpConfig, layers: list[QuantLayer], x: np.ndarray) -> Program:
    """Lay out commands, weights, parameters and activations, and emit the steps."""
    shapes = [q.shape for q in layers]
    check_chain(shapes)
    if x.shape != shapes[0].input_shape or x.dtype != np.int8:
        raise CompileError(f"input must be int8 of shape {shapes[0].input_shape}, got "
                           f"{x.dtype} {x.shape}")
    jobs = [layer_jobs(s, cfg) for s in shapes]
    n_steps = 1 + sum(j.count * (j.G * j.T + 1) for j in jobs) + len(jobs) - 1
    cursor = _align(n_steps * STEP_BYTES)
    regions = {"commands": {"offset": 0, "size": n_steps * STEP_BYTES}}
    placed = []
    for q in layers:
        s = q.shape
        NT, G, T = weight_blocks(s.K, s.C, s.R, s.S, cfg)
        w_off = cursor
        cursor = _align(cursor + NT * G * T * block_bytes(cfg))
        p_off = cursor
        cursor = _align(cursor + NT * cfg.cols * 8)
        placed.append((w_off, p_off))
    tensors = []
    for c, h, w in [shapes[0].input_shape, *(s.output_shape for s in shapes)]:
        t = TensorLayout(cursor, c, h, w, cfg.rows)
        tensors.append(t)
        cursor = _align(cursor + t.size)
    size = cursor
    if size >= 2 ** 32:
        raise CompileError(f"program image would be {size} bytes: allowed is below 4 GiB")

    steps, manifest_layers = [], []
    first = 1
    for i, (q, jb, (w_off, p_off)) in enumerate(zip(layers, jobs, placed)):
        addrs = LayerAddrs(tensors[i], tensors[i + 1], w_off, p_off)
        body, prologue = layer_steps(jb, addrs, cfg)
        steps.append((body, prologue))
        s = q.shape
        manifest_layers.append({
            "name": s.name, "kind": s.kind, "C": s.C, "K": s.K, "H": s.H, "W": s.W, "R": s.R,
            "S": s.S, "stride": s.stride, "pads": list(s.pads), "relu": s.relu, "pool": s.pool,
            "macs": s.macs, "tile": [jb.tiling.th, jb.tiling.tw], "jobs": jb.count,
            "weights": {"offset": w_off, "shape": [s.K, s.C, s.R, s.S]},
            "params": {"offset": p_off, "channels": s.K},
            "input": tensors[i].to_dict(), "output": tensors[i + 1].to_dict(),
            "steps": [first, first + len(body)],
        })
        first += len(body) + 1  # the NOP before the next layer
    seq = program_steps(steps, cfg.config_id)
    assert seq.size == n_steps

    image = np.zeros(size, np.uint8)
    image[:seq.nbytes] = np.frombuffer(seq.tobytes(), np.uint8)
    for q, (w_off, p_off) in zip(layers, placed):
        wb = pack_weights(q.weights, cfg)
        image[w_off:w_off + len(wb)] = np.frombuffer(wb, np.uint8)
        pb = pack_params(q.bias, q.mult, q.shift, cfg)
        image[p_off:p_off + len(pb)] = np.frombuffer(pb, np.uint8)
    xb = pack_tensor(x, cfg.rows)
    image[tensors[0].offset:tensors[0].offset + len(xb)] = np.frombuffer(xb, np.uint8)

    manifest = new_manifest(cfg, image_size=size, regions=regions, layers=manifest_layers,
                            input=tensors[0].to_dict(), output=tensors[-1].to_dict(),
                            steps=int(seq.size))
    return Program(manifest, image)


def decode_network(program: Program) -> tuple[list[QuantLayer], np.ndarray]:
    """The layers and input a program holds, read back from its image through its manifest."""
    from .layout import TensorLayout, unpack_params, unpack_tensor, unpack_weights

    cfg = program.config
    layers = []
    for L in program.manifest["layers"]:
        shape = LayerShape(L["name"], L["kind"], C=L["C"], K=L["K"], H=L["H"], W=L["W"],
                           R=L["R"], S=L["S"], stride=L["stride"], pads=tuple(L["pads"]),
                           relu=L["relu"], pool=L["pool"])
        w = unpack_weights(program.image, L["weights"]["offset"], tuple(L["weights"]["shape"]),
                           cfg)
        bias, mult, shift = unpack_params(program.image, L["params"]["offset"], shape.K, cfg)
        layers.append(QuantLayer(shape, w, bias, mult, shift))
    x = unpack_tensor(program.image, TensorLayout.from_dict(program.manifest["input"]))
    return layers, x


def read_outputs(program: Program, image: np.ndarray) -> list[np.ndarray]:
    """Every layer's output tensor as found in a (final) memory image."""
    from .layout import TensorLayout, unpack_tensor

    return [unpack_tensor(image, TensorLayout.from_dict(L["output"]))
            for L in program.manifest["layers"]]
