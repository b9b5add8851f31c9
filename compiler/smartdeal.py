"""SmartDeal decomposition (smartdeal.md III, Algorithm 1): W ~ Ce B, with Ce sparse and its
non-zeros exactly +-2**p, and B a small S x S int8 basis.

Each weight is cut into blocks (``BlockLayout``): one (m x S) matrix per output channel and slice,
each with its own B, as in the reference code's SEConv2d (C: (out*num_splits, rows, S), B: (...,
S, S)). All blocks of a layer are decomposed at once: every step below is a NumPy operation over
the stacked blocks, never a Python loop per block. The iterations run in float32; the result is
integers (``ce_codes``, ``b_int``, ``b_frac``) whose rebuild is exact (``rebuild_int``).

Algorithm (docs/compression.md has the details): start from Ce = W, B = I, then
  1. project Ce: unit-norm columns, each scaled by the sub-octave factor 2**(i/scale_steps) that
     rounds best, rounded to the nearest power of two, shifted so its largest entry is 2**exp_max,
     entries below 2**exp_min clamped up (counted);
  2. fit B by least squares, quantize it to int8 with a power-of-two scale per output channel,
     then fit Ce by least squares against that B;
  3. renormalize Ce's columns and zero entries below theta (element) or rows whose mean magnitude
     over the filters of a group of group_size output channels is below theta (vector);
until the projection stops changing (Frobenius change <= tol) or max_iter passes; then project
once more and refit and quantize B.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from tessera.compiler.prune import check_structure, filter_rows, from_filter_rows, group_mean
from tessera.compiler.quantize import check_weight
from tessera.errors import CompileError

#: Default exponent range: 8 exponents (3-bit code), each column's largest coefficient is +-1.
DEFAULT_EXP_MIN, DEFAULT_EXP_MAX = -7, 0
#: Largest exponent count: shifts 0..15 in the rebuild engine, 5-bit Ce codes.
MAX_EXPONENTS = 16
#: B is int8 in -127..127 (symmetric, so the rebuild engine's negation never overflows).
B_QMAX = 127
#: Relative ridge of the least-squares fits (keeps singular systems solvable).
RIDGE = 1e-10

_WORK = np.float32
_ROUND_BIT = np.int32(1 << 22)          # half of float32's mantissa range
_SIGN_EXP_MASK = np.int32(-(1 << 23))   # keeps sign and exponent, clears the mantissa


@dataclass(frozen=True)
class SmartDealOptions:
    """Parameters of the decomposition; invalid values raise CompileError naming the option."""
    S: int = 3
    theta: float = 4e-3
    max_iter: int = 30
    tol: float = 1e-10
    structure: str = "element"
    group_size: int = 1
    exp_min: int = DEFAULT_EXP_MIN
    exp_max: int = DEFAULT_EXP_MAX
    slice_rows: int = 192
    scale_steps: int = 8
    even_slices: bool = True

    def __post_init__(self):
        def bad(option, allowed):
            raise CompileError(f"smartdeal option {option} = {getattr(self, option)!r} is "
                               f"invalid: allowed is {allowed}")

        def integer(option, lo, hi=None):
            value = getattr(self, option)
            if not isinstance(value, int) or isinstance(value, bool) or value < lo or (
                    hi is not None and value > hi):
                bad(option, f"an integer from {lo}" + (f" to {hi}" if hi is not None else " up"))

        integer("S", 2, 16)
        integer("max_iter", 0)
        integer("group_size", 1)
        integer("slice_rows", 1)
        integer("scale_steps", 1, 64)
        integer("exp_min", -64, 64)
        integer("exp_max", -64, 64)
        if not (isinstance(self.theta, (int, float)) and math.isfinite(self.theta)
                and self.theta > 0):
            bad("theta", "a positive finite number")
        if not (isinstance(self.tol, (int, float)) and math.isfinite(self.tol) and self.tol >= 0):
            bad("tol", "a non-negative finite number")
        if not 1 <= self.n_exp <= MAX_EXPONENTS:
            bad("exp_max", f"from exp_min ({self.exp_min}) to exp_min + {MAX_EXPONENTS - 1}")
        check_structure(self.structure, self.group_size)

    @property
    def n_exp(self) -> int:
        """Number of exponents the shifter supports: codes +-1..+-n_exp."""
        return self.exp_max - self.exp_min + 1


def supports(shape: tuple[int, ...], S: int) -> bool:
    """Whether SmartDeal's reshaping rules cover this weight shape (else the driver falls back)."""
    return len(shape) == 2 or shape[2:] == (1, 1) or shape[3] % S == 0


@dataclass(frozen=True)
class BlockLayout:
    """How a weight maps onto SmartDeal blocks: an (m x S) Ce and an (S x S) B per block.

    Each filter is flattened in (C, R, kernel width) order into rows of S (``filter_rows``); rows
    are grouped into *units* (the R*kw/S rows of one input channel of a conv, one row of an FC or
    1x1 layer) and units into ``n_slices`` equal slices of ``units_per_slice`` units, zero-padded
    at the end. Blocks are indexed (output channel, slice).
    """
    shape: tuple[int, ...]
    S: int
    unit: int
    units: int
    n_slices: int
    units_per_slice: int

    @property
    def rows(self) -> int:
        """m, the number of Ce rows of one block."""
        return self.unit * self.units_per_slice

    @property
    def block_shape(self) -> tuple[int, int, int, int]:
        return (self.shape[0], self.n_slices, self.rows, self.S)

    def to_blocks(self, w: np.ndarray) -> np.ndarray:
        rows = filter_rows(w, self.S)
        pad = self.n_slices * self.rows - rows.shape[1]
        rows = np.concatenate([rows, np.zeros((rows.shape[0], pad, self.S), rows.dtype)], axis=1)
        return rows.reshape(self.block_shape)

    def from_blocks(self, blocks: np.ndarray) -> np.ndarray:
        rows = blocks.reshape(self.shape[0], -1, self.S)[:, :self.units * self.unit]
        return from_filter_rows(rows, self.shape)


def block_layout(shape: tuple[int, ...], S: int, slice_rows: int,
                 name: str = "weight", even: bool = True) -> BlockLayout:
    """Section III-C: conv kernels of width k*S as (C*R*k) x S matrices sliced at input-channel
    boundaries; FC and 1x1 rows padded to a multiple of S and reshaped; slices of at most
    ``slice_rows`` rows (at least one unit), as even as possible, or, with ``even=False``, of
    exactly ``slice_rows // unit`` units but the last (so slices line up with the channel groups
    an accelerator processes with one basis)."""
    if len(shape) == 2 or shape[2:] == (1, 1):
        unit, units = 1, -(-math.prod(shape[1:]) // S)
    elif shape[3] % S == 0:
        unit, units = shape[2] * shape[3] // S, shape[1]
    else:
        raise CompileError(f"layer '{name}': SmartDeal cannot reshape kernel {shape[2]}x{shape[3]} "
                           f"with S = {S}: allowed is a 1x1 kernel or a kernel width that is a "
                           f"multiple of S")
    per_slice = max(1, slice_rows // unit)
    n_slices = -(-units // per_slice)
    return BlockLayout(tuple(shape), S, unit, units, n_slices,
                       -(-units // n_slices) if even else per_slice)


def rebuild_int(ce_codes: np.ndarray, b_int: np.ndarray) -> np.ndarray:
    """The integers the rebuild engine computes: W_int[r, s] = sum_j sign(c) * (B[j, s] << (|c|-1)).

    ``ce_codes`` (..., m, S) holds 0 for a zero coefficient and +-k for +-2**(exp_min + k - 1);
    ``b_int`` (..., S, S) is int8. The result (int32) is W / 2**(exp_min - b_frac) exactly.
    """
    codes = np.asarray(ce_codes, np.int32)
    b = np.asarray(b_int, np.int32)
    shifts = np.maximum(np.abs(codes) - 1, 0)
    terms = np.sign(codes)[..., None] * (b[..., None, :, :] << shifts[..., None])
    return terms.sum(axis=-2)


def rebuilt_bits(S: int, n_exp: int) -> int:
    """Signed width of a rebuilt weight: |W_int| <= S * 127 * 2**(n_exp - 1)."""
    return (S * B_QMAX << (n_exp - 1)).bit_length() + 1


@dataclass(frozen=True)
class SmartDealLayer:
    """A decomposed layer in the integer form the hardware uses."""
    name: str
    layout: BlockLayout
    options: SmartDealOptions
    ce_codes: np.ndarray     # int8 (K, n_slices, m, S): 0, or +-k meaning +-2**(exp_min + k - 1)
    b_int: np.ndarray        # int8 (K, n_slices, S, S)
    b_frac: np.ndarray       # int8 (K,): B = b_int * 2**-b_frac, one scale per output channel
    clamped: int             # coefficients whose exponent was clamped into [exp_min, exp_max]
    iterations: int

    def ce(self) -> np.ndarray:
        """Ce as exact powers of two (float64), shape (K, n_slices, m, S)."""
        mag = np.abs(self.ce_codes).astype(np.int64)
        return np.sign(self.ce_codes) * np.ldexp(1.0, self.options.exp_min + mag - 1)

    def b_scale(self) -> np.ndarray:
        return np.ldexp(1.0, -self.b_frac.astype(np.int64))

    def w_int(self) -> np.ndarray:
        return rebuild_int(self.ce_codes, self.b_int)

    def w_scale(self) -> np.ndarray:
        """Per output channel: W = W_int * w_scale[k] = W_int * 2**(exp_min - b_frac[k])."""
        return np.ldexp(1.0, self.options.exp_min - self.b_frac.astype(np.int64))

    def rebuilt(self) -> np.ndarray:
        """The weight the hardware rebuilds, in the original shape (float64, exact)."""
        return self.layout.from_blocks(self.w_int() * self.w_scale()[:, None, None, None])


def _normalize(ct: np.ndarray) -> np.ndarray:
    """Unit-norm Ce columns in place (the rows of ct); B absorbs the scale, so nothing is lost."""
    norms = np.sqrt(np.einsum("bsm,bsm->bs", ct, ct))
    ct /= np.where(norms > 0, norms, 1)[..., None]
    return ct


def _round_pow2(x: np.ndarray) -> np.ndarray:
    """Nearest power of two in magnitude, sign kept, 0 kept; a tie (1.5 * 2**e) rounds up."""
    return ((x.view(np.int32) + _ROUND_BIT) & _SIGN_EXP_MASK).view(_WORK)


def _best_factors(ct: np.ndarray, steps: int) -> np.ndarray:
    """Per column, the factor 2**(i/steps) whose rounding keeps most of the column once B rescales
    it: the largest <c, q>**2 / <q, q> (the first on ties)."""
    best = np.full(ct.shape[:2], -1, _WORK)
    factors = np.ones(ct.shape[:2], _WORK)
    q = np.empty_like(ct)
    bits = q.view(np.int32)
    for i in range(steps):
        factor = _WORK(2.0 ** (i / steps))
        np.multiply(ct, factor, out=q)
        bits += _ROUND_BIT                      # _round_pow2 in place
        bits &= _SIGN_EXP_MASK
        cq = np.einsum("bsm,bsm->bs", ct, q)
        qq = np.einsum("bsm,bsm->bs", q, q)
        score = cq * cq / np.where(qq > 0, qq, 1)
        better = score > best
        best = np.where(better, score, best)
        factors = np.where(better, factor, factors)
    return factors


def _project(ct: np.ndarray, opts: SmartDealOptions) -> tuple[np.ndarray, int]:
    """Step 1: Ce's columns onto {0, +-2**p : exp_min <= p <= exp_max}; also the clamp count."""
    _normalize(ct)
    q = _round_pow2(ct * _best_factors(ct, opts.scale_steps)[..., None])
    top = np.abs(q).max(axis=2)
    q *= (np.ldexp(_WORK(1), opts.exp_max) / np.where(top > 0, top, 1))[..., None]
    low = (ct != 0) & (np.abs(q) < np.ldexp(_WORK(1), opts.exp_min))
    clamped = int(np.count_nonzero(low))
    if clamped:
        q[low] = np.copysign(np.ldexp(_WORK(1), opts.exp_min), ct[low])
    return q, clamped


def _ridge_solve(gram: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """Batched (gram + lam I) x = rhs with lam = 1e-10 of gram's mean diagonal: the least-squares
    normal equations, still defined (zero, not NaN) for the dead columns thresholding leaves."""
    size = gram.shape[-1]
    lam = RIDGE * np.trace(gram, axis1=1, axis2=2) / size + np.finfo(np.float64).tiny
    return np.linalg.solve(gram + lam[:, None, None] * np.eye(size), rhs)


def _fit_basis(at: np.ndarray, cq: np.ndarray) -> np.ndarray:
    """Step 2a: least-squares B^T (float64) with A^T ~ B^T Ce^T, batched normal equations."""
    gram = np.einsum("bim,bjm->bij", cq, cq).astype(np.float64)
    cross = np.einsum("bim,bjm->bij", at, cq).astype(np.float64)
    return _ridge_solve(gram, cross.transpose(0, 2, 1)).transpose(0, 2, 1)


def _quantize_basis(bt: np.ndarray, filters: int) -> tuple[np.ndarray, np.ndarray]:
    """B as int8 with the largest power-of-two scale 2**frac per output channel that fits 127."""
    per_filter = bt.reshape(filters, -1)
    amax = np.abs(per_filter).max(axis=1)
    nonzero = amax > 0
    frac = np.floor(np.log2(B_QMAX / np.where(nonzero, amax, B_QMAX)))
    frac -= amax * np.exp2(frac) > B_QMAX                        # log2 rounding at the edges
    frac += nonzero & (amax * np.exp2(frac + 1) <= B_QMAX)
    b_int = np.rint(per_filter * np.exp2(frac)[:, None]).reshape(bt.shape)
    return b_int, frac.astype(np.int64)


def _dequantize_basis(b_int: np.ndarray, frac: np.ndarray) -> np.ndarray:
    return (b_int.reshape(len(frac), -1) * np.exp2(-frac.astype(np.float64))[:, None]
            ).reshape(b_int.shape)


def _fit_coefficients(at: np.ndarray, bt: np.ndarray) -> np.ndarray:
    """Step 2b: least-squares Ce^T = (B B^T)^-1 B A^T for the quantized B."""
    solve = _ridge_solve(bt.transpose(0, 2, 1) @ bt, bt.transpose(0, 2, 1))
    return np.einsum("bij,bjm->bim", solve.astype(_WORK), at)


def _sparsify(ct: np.ndarray, opts: SmartDealOptions, layout: BlockLayout) -> np.ndarray:
    """Step 3: zero small entries (element) or small rows shared by a group (vector)."""
    _normalize(ct)
    if opts.structure == "element":
        ct[np.abs(ct) < opts.theta] = 0
    else:
        K, n_slices, m, S = layout.block_shape
        row_mean = np.abs(ct).sum(axis=1).reshape(K, n_slices * m) / S
        weak = group_mean(row_mean, opts.group_size) < opts.theta
        drop = np.repeat(weak, opts.group_size, axis=0)[:K]
        ct *= ~drop.reshape(K * n_slices, 1, m)
    return ct


def decompose(w, options: SmartDealOptions = SmartDealOptions(),
              name: str = "weight") -> SmartDealLayer:
    """Decompose one conv (K,C,R,S) or FC (out,in) weight (see the module docstring)."""
    w = check_weight(name, w)
    layout = block_layout(w.shape, options.S, options.slice_rows, name, options.even_slices)
    K, n_slices, m, S = layout.block_shape
    # Work on W * 2**-shift, largest magnitude in [0.5, 1): float32 cannot overflow, and the
    # exact power of two goes back into b_frac at the end.
    shift = int(np.frexp(np.abs(w).max())[1])
    at = np.ascontiguousarray(np.ldexp(layout.to_blocks(w), -shift).astype(_WORK)
                              .reshape(K * n_slices, m, S).transpose(0, 2, 1))
    cq, clamped = _project(at.copy(), options)
    iterations = 0
    for iterations in range(1, options.max_iter + 1):
        bt = _dequantize_basis(*_quantize_basis(_fit_basis(at, cq), K))
        ct = _sparsify(_fit_coefficients(at, bt), options, layout)
        previous = cq
        cq, clamped = _project(ct, options)
        if np.linalg.norm(cq - previous) <= options.tol:
            break
    bt_int, frac = _quantize_basis(_fit_basis(at, cq), K)
    frac -= shift
    if np.any((frac < -128) | (frac > 127)):
        raise CompileError(f"layer '{name}': weights as large as 2**{shift} need B scales "
                           f"2**{-int(frac.max())}..2**{-int(frac.min())}: allowed is b_frac in "
                           "-128..127 (weights between about 2**-120 and 2**120)")
    mag = np.frexp(cq)[1] - options.exp_min          # frexp(2**p) = (0.5, p + 1)
    codes = np.where(cq != 0, np.sign(cq) * mag, 0)
    return SmartDealLayer(
        name=name, layout=layout, options=options,
        ce_codes=codes.transpose(0, 2, 1).reshape(layout.block_shape).astype(np.int8),
        b_int=bt_int.transpose(0, 2, 1).reshape(K, n_slices, S, S).astype(np.int8),
        b_frac=frac.astype(np.int8), clamped=clamped, iterations=iterations)
