"""Compile a sequential network for the SmartDeal accelerator into a Program.

Per layer: for each group of output channels (mg) and band of output rows that fits one bank of
the input global buffer, one COMPUTE step runs every tile of the band. Loads ride one step ahead
in the other bank: a band of input rows, and an output-channel group's pass words, bases and
post-processing parameters. A NOP between layers keeps a layer's first loads after the previous
layer's last writes. A layer whose group overflows a buffer bank runs tile by tile, one COMPUTE per
chunk of its passes, the MACs holding their sums from one chunk to the next.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tessera.config import SmartDealConfig
from tessera.errors import CompileError

from ..layers import LayerShape, QuantLayer
from ..lcp.layout import PARAM_DTYPE
from ..program import Program, new_manifest
from .isa import (CODE_BITS, HEADER_BITS, PARAM_BYTES, SEL_BITS, STEP_BYTES, STEP_DTYPE, Bank,
                  Flag, Mode, Op, basis_word_bits, encode_code, pack_bits, pack_header, pack_sel,
                  pass_word_bits)
from .mapping import (GroupPasses, SdTensor, basis_group, ceil_div, check_supported, geometry,
                      group_passes, group_size, mode_of, split_group)

ALIGN = 64


def _align(n: int) -> int:
    return -(-n // ALIGN) * ALIGN


def pass_words(gp: GroupPasses, cfg: SmartDealConfig, raw: bool) -> np.ndarray:
    """(words, bytes) of one group's passes: two words per pass for int8 weights, or for two
    clusters (word c holds the codes of cluster c's dim_m output channels)."""
    bits = pass_word_bits(cfg.dim_m, cfg.dim_c, cfg.S, cfg.dram_width)
    switch, bb_load, bb_word = gp.header()
    header = pack_header(gp.plane, switch, bb_load, bb_word)[:, None]
    sel = pack_sel(gp.valid, gp.row, gp.lane)
    P, G = gp.count, gp.weights.shape[1]
    clusters = 2 if gp.clustered else 1
    wt = np.zeros((P, clusters * cfg.dim_m, cfg.dim_c, cfg.S), np.int64)
    wt[:, :G] = gp.weights
    if not raw:
        codes = np.where(gp.valid[:, None, :, None], encode_code(np.where(wt == 0, 1, wt)), 0)
        codes = codes.reshape(P * clusters, -1)
        return pack_bits([(np.repeat(header, clusters, axis=0), HEADER_BITS),
                          (np.repeat(sel, clusters, axis=0), SEL_BITS), (codes, CODE_BITS)], bits)
    # int8 weights: the code fields of two words hold the bytes, low word first
    flat = (wt.reshape(P, -1) & 0xFF).astype(np.uint64)
    n = flat.shape[1]
    nib = np.stack([flat & 15, flat >> 4], axis=-1).reshape(P, 2 * n)
    first = pack_bits([(header, HEADER_BITS), (sel, SEL_BITS), (nib[:, :n], CODE_BITS)], bits)
    second = pack_bits([(header, HEADER_BITS), (sel, SEL_BITS), (nib[:, n:], CODE_BITS)], bits)
    return np.stack([first, second], axis=1).reshape(2 * P, -1)


def basis_words(gp: GroupPasses, cfg: SmartDealConfig) -> np.ndarray:
    """One word per basis group (dim_m bases), or per basis group and cluster."""
    bits = basis_word_bits(cfg.dim_m, cfg.S, cfg.dram_width)
    n, G = gp.bases.shape[:2]
    clusters = 2 if gp.clustered else 1
    b = np.zeros((n, clusters * cfg.dim_m, cfg.S, cfg.S), np.int64)
    b[:, :G] = gp.bases
    return pack_bits([((b.reshape(n * clusters, -1) & 0xFF).astype(np.uint64), 8)], bits)


def words_per_pass(gp: GroupPasses, raw: bool) -> int:
    return 2 if raw or gp.clustered else 1


@dataclass
class LayerPlan:
    layer: QuantLayer
    mode: Mode
    G: int                  # output channels per group
    NT: int                 # groups
    band: int               # output rows per COMPUTE step
    groups: list            # per group, its chunks (GroupPasses): one COMPUTE each per band

    @property
    def chunked(self) -> bool:
        return any(len(chunks) > 1 for chunks in self.groups)

    @property
    def own_planes(self) -> bool:
        """Chunks load their own input planes, one output row's worth (bands of one row)."""
        return any(gp.planes for chunks in self.groups for gp in chunks)


def _group_chunks(q: QuantLayer, cfg: SmartDealConfig, geo, t_in: SdTensor,
                  mg: int) -> list[GroupPasses]:
    """A group's passes, in one COMPUTE per band; or, when they overflow a weight- or
    basis-buffer bank or one output row's input rows overflow an input-buffer bank, in chunks of
    basis groups run tile by tile, each chunk a COMPUTE of its own whose MACs keep accumulating
    (docs/smartdeal.md, "Chunks"). Chunks load only their own input planes when the input
    buffer cannot hold all of them."""
    gp = group_passes(q, cfg, mg)
    wpp = words_per_pass(gp, q.sd is None)
    per_basis = 2 if gp.clustered else 1
    plane_words = geo.rows * (t_in.Ws // cfg.dim_f)     # one output row's input, per plane
    bank = cfg.gb_depth // 2

    def fits(passes, basis_groups, planes):
        return (passes * wpp <= cfg.wb_depth and basis_groups * per_basis <= cfg.bb_depth
                and planes * plane_words <= bank)

    whole = t_in.planes * plane_words <= bank
    if whole and fits(gp.count, gp.bases.shape[0], 0):
        return [gp]
    if whole:       # the band stays in the input buffer (planes 0: every chunk reads all of it)
        return split_group(gp, fits, lambda p: (0, 0), q.shape.name)
    span = cfg.S if geo.mode in (Mode.POINTWISE, Mode.CLUSTER) else 1   # planes a basis group reads
    return split_group(gp, fits, lambda p: (p, min(p + span, t_in.planes)), q.shape.name)


def _band_rows(shape: LayerShape, cfg: SmartDealConfig, geo, t_in: SdTensor) -> int:
    words_per_row = t_in.planes * (t_in.Ws // cfg.dim_f)
    bank = cfg.gb_depth // 2
    rows_fit = bank // words_per_row
    if rows_fit < geo.rows:
        raise CompileError(f"layer '{shape.name}' does not fit: {geo.rows} input rows of "
                           f"{words_per_row} words need {geo.rows * words_per_row} global-buffer "
                           f"words, one bank holds {bank} (gb_depth/2); increase gb_depth")
    return min(shape.out_h, (rows_fit - geo.rows) // shape.stride + 1)


def param_words(plan: LayerPlan) -> int:
    """dim_m-channel parameter words a group loads: one per cluster."""
    return 2 if plan.mode == Mode.CLUSTER else 1


@dataclass
class NetworkPlan:
    """Everything about a compiled network but its data: the steps and where things live."""
    plans: list
    tensors: list
    steps: np.ndarray
    wb_off: list
    bb_off: list
    par_off: list
    size: int
    manifest_layers: list


def plan_network(cfg: SmartDealConfig, layers: list[QuantLayer],
                 chain: bool = True) -> NetworkPlan:
    """Map, tile, allocate and sequence a network (the data are packed by compile_network).

    With ``chain`` each layer reads the previous layer's output; without it every layer has its
    own input and output tensor (a graph's layers, simulated one by one)."""
    shapes = [q.shape for q in layers]
    for a, b in zip(shapes, shapes[1:]):
        if chain and a.output_shape != b.input_shape:
            raise CompileError(f"layer '{b.name}' expects input {b.input_shape} but layer "
                               f"'{a.name}' produces {a.output_shape}")
    for s in shapes:
        check_supported(s, cfg)
    L, B = cfg.gb_lanes, cfg.dram_width
    geos = [geometry(q.shape, cfg, q.sd is not None) for q in layers]
    Gs = [group_size(q.shape, cfg, q.sd is not None) for q in layers]
    NTs = [ceil_div(s.K, G) for s, G in zip(shapes, Gs)]

    # Tensors: each stored the way its consumer reads it; producers write whole groups.
    def stored_as_input(i, chans):
        g = geos[i]
        return (*shapes[i].input_shape, ceil_div(chans, L), g.mt, g.ml, g.min_hs, g.min_ws)

    def stored_as_output(i):
        C, H, W = shapes[i].output_shape
        return (C, H, W, ceil_div(NTs[i] * Gs[i], L), 0, 0, H,
                ceil_div(W, cfg.dim_f) * cfg.dim_f)

    if chain:
        cursor_t = [stored_as_input(0, shapes[0].C)]
        cursor_t += [stored_as_input(i + 1, NTs[i] * Gs[i]) for i in range(len(shapes) - 1)]
        cursor_t.append(stored_as_output(len(shapes) - 1))
        io = [(i, i + 1) for i in range(len(shapes))]
    else:
        cursor_t = [t for i in range(len(shapes))
                    for t in (stored_as_input(i, shapes[i].C), stored_as_output(i))]
        io = [(2 * i, 2 * i + 1) for i in range(len(shapes))]

    # each layer's input as stored (its address comes with the memory map)
    inputs = [SdTensor(0, *cursor_t[i][:3], L, *cursor_t[i][3:]) for i, _ in io]
    plans = []
    for q, geo, G, NT, probe in zip(layers, geos, Gs, NTs, inputs):
        # checked group by group: a layer that cannot fit fails fast
        groups = [_group_chunks(q, cfg, geo, probe, mg) for mg in range(NT)]
        plans.append(LayerPlan(q, geo.mode, G, NT, 0, groups))

    # Memory map: commands, then per layer pass words, bases, parameters, then tensors.
    step_specs = []   # (layer index, mg, y0, ny)
    for i, (plan, s, probe) in enumerate(zip(plans, shapes, inputs)):
        plan.band = 1 if plan.own_planes else _band_rows(s, cfg, geos[i], probe)
        bands = [(y0, min(plan.band, s.out_h - y0)) for y0 in range(0, s.out_h, plan.band)]
        # Loop order: re-read the input once per channel group, or every group's weights once
        # per band, whichever moves fewer bytes.
        wbytes = pass_word_bits(cfg.dim_m, cfg.dim_c, cfg.S, B) // 8
        weights = sum(gp.count * words_per_pass(gp, plan.layer.sd is None)
                      for chunks in plan.groups for gp in chunks) * wbytes
        # (two banks hold two bands, or two groups' weights, without reloading)
        nb, nt = len(bands), plan.NT
        mg_outer = (nt if nb > 2 else 1) * probe.size + weights
        band_outer = probe.size + (nb if nt > 2 else 1) * weights < mg_outer
        order = ([(mg, b) for b in bands for mg in range(plan.NT)] if band_outer
                 else [(mg, b) for mg in range(plan.NT) for b in bands])
        # a chunked layer runs tile by tile, chunk by chunk
        tiles = lambda ny: ([(ty, tx) for ty in range(ny) for tx in range(geos[i].nseg)]
                            if plan.chunked else [None])
        step_specs += [(i, mg, y0, ny, k, tile) for mg, (y0, ny) in order for tile in tiles(ny)
                       for k in range(len(plan.groups[mg]))]
    n_steps = 1 + len(step_specs) + len(shapes) - 1
    cursor = _align(n_steps * STEP_BYTES)
    wb_off, bb_off, par_off = [], [], []
    wbytes = pass_word_bits(cfg.dim_m, cfg.dim_c, cfg.S, B) // 8
    bbytes = basis_word_bits(cfg.dim_m, cfg.S, B) // 8
    for plan in plans:
        wo, bo, po = [], [], []
        raw = plan.layer.sd is None
        for chunks in plan.groups:
            wo.append([])
            bo.append([])
            for gp in chunks:
                n = gp.count * words_per_pass(gp, raw)
                wo[-1].append((cursor, n))
                cursor = _align(cursor + n * wbytes)
                nb = gp.bases.shape[0] * (2 if gp.clustered else 1)
                bo[-1].append((cursor, nb))
                cursor = _align(cursor + nb * bbytes)
            po.append(cursor)
            cursor = _align(cursor + param_words(plan) * cfg.dim_m * PARAM_BYTES)
        wb_off.append(wo)
        bb_off.append(bo)
        par_off.append(po)
    tensors = []
    for t in cursor_t:
        ten = SdTensor(cursor, *t[:3], L, *t[3:])
        tensors.append(ten)
        cursor = _align(cursor + ten.size)
    if cursor >= 2 ** 32:
        raise CompileError(f"program image would be {cursor} bytes: allowed is below 4 GiB")

    # Steps.
    steps = np.zeros(n_steps, STEP_DTYPE)
    steps[0]["op"] = Op.HEADER
    steps[0]["config_id"] = cfg.config_id
    k = 1
    gb_banks = [None, None]       # what each bank holds
    wb_banks = [None, None]
    last_gb, last_wb = 1, 1       # banks the previous COMPUTE read
    manifest_layers = []
    for i, (plan, s) in enumerate(zip(plans, shapes)):
        if i:
            steps[k]["op"] = Op.NOP
            k += 1
        first = k
        t_in, t_out = tensors[io[i][0]], tensors[io[i][1]]
        geo = geos[i]
        nw = t_in.Ws // cfg.dim_f
        for (li, mg, y0, ny, ck, tile) in [sp for sp in step_specs if sp[0] == i]:
            st = steps[k]
            loader = steps[k - 1]
            chunks = plan.groups[mg]
            gp = chunks[ck]
            planes = gp.planes or t_in.planes           # a chunk reads its own planes
            band_key = (i, y0, gp.plane0, planes)
            if band_key in gb_banks:
                gb = gb_banks.index(band_key)
            else:
                gb = 1 - last_gb
                gb_banks[gb] = band_key
                rows = (ny - 1) * s.stride + geo.rows
                loader["flags"] |= Flag.LOAD_GB
                loader["gb_addr"] = (t_in.offset + gp.plane0 * t_in.plane_bytes
                                     + y0 * s.stride * t_in.Ws * L)
                loader["gb_beats"] = rows * t_in.Ws * L // B
                loader["gb_stride"] = t_in.plane_bytes
                loader["gb_planes"] = planes
                loader["gb_dst"] = 0
                loader["load_banks"] |= Bank.GB if gb else 0
            wkey = (i, mg, ck)
            if wkey in wb_banks:
                wb = wb_banks.index(wkey)
            else:
                wb = 1 - last_wb
                wb_banks[wb] = wkey
                loader["flags"] |= Flag.LOAD_WB | Flag.LOAD_BB | Flag.LOAD_PARAM
                loader["wb_addr"], loader["wb_words"] = wb_off[i][mg][ck]
                loader["bb_addr"], loader["bb_words"] = bb_off[i][mg][ck]
                loader["param_addr"] = par_off[i][mg]
                loader["param_words"] = param_words(plan)
                loader["load_banks"] |= Bank.WB if wb else 0
            last_gb, last_wb = gb, wb
            st["op"] = Op.COMPUTE
            # every chunk but a group's last keeps its sums in the MACs for the next
            st["flags"] = ((Flag.RELU if s.relu else 0)
                           | (Flag.HOLD if ck < len(chunks) - 1 else 0))
            st["mode"] = plan.mode
            st["stride"] = s.stride
            st["taps"] = geo.taps
            st["banks"] = (Bank.GB if gb else 0) | (Bank.WB if wb else 0)
            st["raw"] = plan.layer.sd is None
            st["n_ch"] = plan.G // param_words(plan)
            ty0, tx0 = tile or (0, 0)
            st["ny"], st["ty0"] = (1, ty0) if tile else (ny, 0)
            st["nseg"], st["tx0"] = (1, tx0) if tile else (geo.nseg, 0)
            st["passes"] = gp.count
            st["gb_rows"] = (ny - 1) * s.stride + geo.rows
            st["gb_words"] = nw
            st["out_w"] = s.out_w
            st["lane0"] = (mg * plan.G) % L
            st["out_addr"] = t_out.addr(mg * plan.G, y0 + ty0, 0)
            st["out_row"] = t_out.Ws * L
            st["out_plane"] = t_out.plane_bytes
            if plan.mode == Mode.CLUSTER:
                st["out_addr1"] = t_out.addr(mg * plan.G + cfg.dim_m, y0 + ty0, 0)
                st["lane1"] = (mg * plan.G + cfg.dim_m) % L
            st["y0"], st["mg"], st["chunk"] = y0 + ty0, mg, ck
            k += 1
        manifest_layers.append({
            "name": s.name, "kind": s.kind, "C": s.C, "K": s.K, "H": s.H, "W": s.W, "R": s.R,
            "S": s.S, "stride": s.stride, "pads": list(s.pads), "relu": s.relu,
            "groups": s.groups, "macs": s.macs, "mode": plan.mode.name.lower(),
            "decomposed": plan.layer.sd is not None, "group": plan.G, "band": plan.band,
            "passes": [sum(gp.count for gp in chunks) for chunks in plan.groups],
            "chunks": [[{"plane0": gp.plane0, "pass_words": list(w), "basis_words": list(b)}
                        for gp, w, b in zip(chunks, wo, bo)]
                       for chunks, wo, bo in zip(plan.groups, wb_off[i], bb_off[i])],
            "params": par_off[i],
            "input": t_in.to_dict(), "output": t_out.to_dict(), "steps": [first, k],
        })
    steps[-1]["flags"] |= Flag.LAST
    assert k == n_steps
    return NetworkPlan(plans, tensors, steps, wb_off, bb_off, par_off, cursor, manifest_layers)


def compile_network(cfg: SmartDealConfig, layers: list[QuantLayer], x: np.ndarray) -> Program:
    """Plan the network and pack its commands, pass words, bases, parameters and input."""
    if x.shape != layers[0].shape.input_shape or x.dtype != np.int8:
        raise CompileError(f"input must be int8 of shape {layers[0].shape.input_shape}, got "
                           f"{x.dtype} {x.shape}")
    net = plan_network(cfg, layers)
    image = np.zeros(net.size, np.uint8)
    image[:net.steps.nbytes] = np.frombuffer(net.steps.tobytes(), np.uint8)

    def put(offset, blob):
        flat = np.asarray(blob, np.uint8).ravel()
        image[offset:offset + flat.size] = flat

    for plan, wo, bo, po in zip(net.plans, net.wb_off, net.bb_off, net.par_off):
        q = plan.layer
        for mg, chunks in enumerate(plan.groups):
            for (w_at, _), (b_at, _), gp in zip(wo[mg], bo[mg], chunks):
                put(w_at, pass_words(gp, cfg, q.sd is None))
                put(b_at, basis_words(gp, cfg))
            rec = np.zeros(param_words(plan) * cfg.dim_m, PARAM_DTYPE)
            ch = np.arange(mg * plan.G, (mg + 1) * plan.G)
            ok = ch < q.shape.K
            rec["bias"][:plan.G][ok] = q.bias[ch[ok]]
            rec["mult"][:plan.G][ok] = q.mult[ch[ok]]
            rec["shift"][:plan.G][ok] = q.shift[ch[ok]]
            put(po[mg], np.frombuffer(rec.tobytes(), np.uint8))
    put(net.tensors[0].offset, np.frombuffer(net.tensors[0].pack(x), np.uint8))
    manifest = new_manifest(cfg, image_size=net.size,
                            regions={"commands": {"offset": 0, "size": int(net.steps.nbytes)}},
                            layers=net.manifest_layers, input=net.tensors[0].to_dict(),
                            output=net.tensors[-1].to_dict(), steps=int(net.steps.size))
    return Program(manifest, image)


def _rebuild_rows(codes: np.ndarray, bases: np.ndarray) -> np.ndarray:
    """Rebuilt rows (..., S) from 4-bit codes (..., S) and bases (..., S, S)."""
    from ..smartdeal import rebuild_int
    from .isa import decode_code

    return rebuild_int(decode_code(codes)[..., None, :], bases)[..., 0, :]


def _decode_passes(img: np.ndarray, cfg: SmartDealConfig, chunk: dict, mode: Mode, raw: bool):
    """(rows (P, G, dim_c, S) of the rebuilt or int8 weights, headers (P,), selections
    (P, dim_c)) of one chunk's pass words."""
    from .isa import unpack_field

    dm, dc, S = cfg.dim_m, cfg.dim_c, cfg.S
    wbytes = pass_word_bits(dm, dc, S, cfg.dram_width) // 8
    bbytes = basis_word_bits(dm, S, cfg.dram_width) // 8
    (woff, nwords), (boff, nb) = chunk["pass_words"], chunk["basis_words"]
    words = img[woff:woff + nwords * wbytes].reshape(nwords, wbytes)
    hdr = unpack_field(words, 0, HEADER_BITS, 1)[:, 0]
    sel = unpack_field(words, HEADER_BITS, SEL_BITS, dc)
    nib = unpack_field(words, HEADER_BITS + dc * SEL_BITS, CODE_BITS, dm * dc * S)
    if raw:
        lo, hi = nib[0::2], nib[1::2]
        flat = np.concatenate([lo, hi], axis=1).reshape(-1, dm * dc * S, 2)
        vals = (flat[..., 0] | (flat[..., 1] << 4)).astype(np.int64)
        return (np.where(vals > 127, vals - 256, vals).reshape(-1, dm, dc, S), hdr[0::2],
                sel[0::2])
    k = 2 if mode == Mode.CLUSTER else 1     # cluster c: words k*p + c
    bwords = img[boff:boff + nb * bbytes].reshape(nb, bbytes)
    b = bwords[:, :dm * S * S].view(np.int8).astype(np.int64).reshape(nb // k, k * dm, S, S)
    hdr, sel = hdr[0::k], sel[0::k]
    cg = np.cumsum((np.arange(hdr.size) == 0) | ((hdr >> 12) & 1).astype(bool)) - 1
    return _rebuild_rows(nib.reshape(-1, k * dm, dc, S), b[cg][:, :, None]), hdr, sel


def _place_rows(w, rows, hdr, sel, plane0: int, mode: Mode, cfg: SmartDealConfig, k0: int,
                shape: LayerShape) -> None:
    """Write the weight rows the passes run into ``w`` (output channels from ``k0``)."""
    L, S = cfg.gb_lanes, cfg.S
    valid = (sel & 1).astype(bool)
    r_of, lane = ((sel >> 1) & 7).astype(np.int64), (sel >> 4).astype(np.int64)
    plane = (hdr & 0xFFF).astype(np.int64) + plane0
    pointwise = mode in (Mode.POINTWISE, Mode.CLUSTER)
    for p in range(rows.shape[0]):
        for l in np.flatnonzero(valid[p]):
            ch0 = plane[p] * L + lane[p, l]
            if pointwise:  # the row field picks one of S planes
                ch0 += r_of[p, l] * L
            for m in range(rows.shape[1]):
                k = k0 + m
                if k >= shape.K:
                    continue
                if mode == Mode.CONV:
                    w[k, ch0, r_of[p, l], :shape.S] = rows[p, m, l, :shape.S]
                elif pointwise:
                    n = min(S, shape.C - ch0)
                    w[k, ch0:ch0 + n, 0, 0] = rows[p, m, l, :n]
                else:
                    w[k, 0, r_of[p, l], :shape.S] = rows[p, m, l, :shape.S]


def decode_network(program: Program) -> tuple[list[QuantLayer], np.ndarray]:
    """Layers (with the weights the rebuild engines produce) and input, read from the image."""
    cfg = program.config
    img = program.image
    layers = []
    for Lm in program.manifest["layers"]:
        shape = LayerShape(Lm["name"], Lm["kind"], C=Lm["C"], K=Lm["K"], H=Lm["H"], W=Lm["W"],
                           R=Lm["R"], S=Lm["S"], stride=Lm["stride"], pads=tuple(Lm["pads"]),
                           relu=Lm["relu"], groups=Lm["groups"])
        mode, G = Mode[Lm["mode"].upper()], Lm["group"]
        raw = not Lm["decomposed"]
        w = np.zeros(shape.weight_shape, np.int64)
        bias, mult, shift = (np.zeros(shape.K, np.int64) for _ in range(3))
        for mg, (chunks, poff) in enumerate(zip(Lm["chunks"], Lm["params"])):
            for ch in chunks:
                rows, hdr, sel = _decode_passes(img, cfg, ch, mode, raw)
                _place_rows(w, rows, hdr, sel, ch["plane0"], mode, cfg, mg * G, shape)
            rec = np.frombuffer(img, PARAM_DTYPE, count=G, offset=poff)
            ks = np.arange(mg * G, min((mg + 1) * G, shape.K))
            bias[ks], mult[ks], shift[ks] = (rec[f][:ks.size] for f in ("bias", "mult", "shift"))
        layers.append(QuantLayer(shape, w.astype(np.int8 if raw else np.int32), bias, mult,
                                 shift))
    x = SdTensor.from_dict(program.manifest["input"]).unpack(img)
    return layers, x


def read_outputs(program: Program, image: np.ndarray) -> list[np.ndarray]:
    return [SdTensor.from_dict(L["output"]).unpack(image) for L in program.manifest["layers"]]


def random_layer(shape: LayerShape, cfg: SmartDealConfig, rng: np.random.Generator,
                 row_sparsity: float = 0.0, decomposed: bool = True,
                 structure_only: bool = False) -> QuantLayer:
    """A random SmartDeal layer: codes and bases drawn directly (no decomposition needed), with a
    fraction ``row_sparsity`` of Ce rows zero for each whole channel group. ``structure_only``
    skips the weights a simulator in estimate mode never looks at (they stay zero)."""
    from ..requant import choose_multiplier
    from ..smartdeal import SmartDealLayer, SmartDealOptions, block_layout

    check_supported(shape, cfg)
    if not decomposed:
        from ..layers import random_quant_layer
        return random_quant_layer(shape, rng)
    mode = mode_of(shape)
    S = cfg.S
    if mode == Mode.CONV and shape.S != S:
        raise CompileError(f"layer '{shape.name}': a SmartDeal-decomposed kernel must be "
                           f"{S} wide (S), got {shape.S}")
    G = group_size(shape, cfg)
    slice_rows = basis_group(shape, cfg)
    opts = SmartDealOptions(S=S, exp_min=-cfg.n_exp + 1, exp_max=0, slice_rows=slice_rows,
                            even_slices=False, structure="vector", group_size=G)
    layout = block_layout(shape.weight_shape, S, slice_rows, shape.name, even=False)
    K, n_slices, m, _ = layout.block_shape
    if structure_only:      # only which rows are zero matters
        codes = np.ones(layout.block_shape, np.int8)
    else:
        mag = rng.integers(1, cfg.n_exp + 1, size=layout.block_shape)
        codes = np.where(rng.random(layout.block_shape) < .5, -mag, mag)
    groups = ceil_div(K, G)
    zero = rng.random((groups, n_slices, m)) < row_sparsity
    codes[np.repeat(zero, G, axis=0)[:K]] = 0
    b_int = rng.integers(-127, 128, size=(K, n_slices, S, S))
    sd = SmartDealLayer(shape.name, layout, opts, codes.astype(np.int8), b_int.astype(np.int8),
                        np.zeros(K, np.int8), 0, 0)
    if structure_only:
        zero = np.zeros(shape.K, np.int64)
        return QuantLayer(shape, np.zeros(shape.weight_shape, np.int32), zero, zero, zero, sd=sd)
    w = layout.from_blocks(sd.w_int()).astype(np.int32)
    fan_in = (shape.C // shape.groups) * shape.R * shape.S
    acc_std = np.sqrt(fan_in) * 74.0 * max(1.0, float(np.abs(w).std()))
    bias = rng.integers(-int(acc_std), int(acc_std) + 1, size=shape.K).astype(np.int64)
    mult, shift = choose_multiplier(rng.uniform(20.0, 60.0, size=shape.K) / acc_std)
    return QuantLayer(shape, w, bias, mult, shift, sd=sd)


def sd_options(shape: LayerShape, cfg: SmartDealConfig, theta: float = 4e-3,
               max_iter: int = 30, tol: float = 1e-10):
    """Decomposition options that match the hardware: one basis per basis group, vector-wise
    sparsity shared by each output-channel group, exponents the shifters hold."""
    from ..smartdeal import SmartDealOptions

    return SmartDealOptions(S=cfg.S, theta=theta, max_iter=max_iter, tol=tol,
                            structure="vector", group_size=group_size(shape, cfg),
                            exp_min=1 - cfg.n_exp, exp_max=0,
                            slice_rows=basis_group(shape, cfg), even_slices=False)


def _fill_kept_rows(sd):
    """The 4-bit codes have no zero: a zero coefficient in a Ce row that its channel group keeps
    (an exact zero the least-squares fit can give, e.g. next to the zero padding of a last,
    partial row) becomes the smallest magnitude, +2**exp_min, and is counted as clamped."""
    import dataclasses

    codes = sd.ce_codes
    K, G = codes.shape[0], sd.options.group_size
    grouped = np.concatenate([codes, np.zeros((-K % G, *codes.shape[1:]), codes.dtype)])
    grouped = grouped.reshape(-1, G, *codes.shape[1:])
    kept = np.any(grouped != 0, axis=(1, 4), keepdims=True)
    fill = ((grouped == 0) & kept).reshape(-1, *codes.shape[1:])[:K]
    if not fill.any():
        return sd
    return dataclasses.replace(sd, ce_codes=np.where(fill, 1, codes).astype(np.int8),
                               clamped=sd.clamped + int(fill.sum()))


def quantize_layer(shape: LayerShape, w: np.ndarray, bias: np.ndarray | None, in_scale: float,
                   out_scale: float, cfg: SmartDealConfig | None = None,
                   theta: float = 4e-3) -> QuantLayer:
    """A float layer as integers for an accelerator: SmartDeal-decomposed when ``cfg`` is given
    (and the kernel allows it), else int8 per output channel. ``w`` has the layer's weight shape;
    activations are int8 with per-tensor scales ``in_scale`` -> ``out_scale``."""
    from ..quantize import quantize_weight, requant_params
    from ..smartdeal import decompose

    w = np.asarray(w, np.float64).reshape(shape.weight_shape)
    if cfg is not None and (mode_of(shape) != Mode.CONV or shape.S == cfg.S):
        sd = _fill_kept_rows(decompose(w, sd_options(shape, cfg, theta), shape.name))
        w_int = sd.layout.from_blocks(sd.w_int()).astype(np.int32)
        rq = requant_params(sd.w_scale(), in_scale, out_scale, bias, shape.name)
        return QuantLayer(shape, w_int, rq.bias, rq.mult, rq.shift, sd=sd)
    q = quantize_weight(w, shape.name)
    rq = requant_params(q.scale, in_scale, out_scale, bias, shape.name)
    return QuantLayer(shape, q.w_int, rq.bias, rq.mult, rq.shift)
