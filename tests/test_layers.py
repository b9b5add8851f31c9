"""Layer SPEC grammar and shapes."""

import pytest

from tessera.compiler.layers import LayerShape, parse_spec
from tessera.errors import SpecError


def test_conv_spec_with_defaults_and_flags():
    s = parse_spec("conv:C=3,K=8,H=10,W=12,stride=2,pad=1,relu,pool=2")
    assert (s.C, s.K, s.H, s.W, s.R, s.S, s.stride, s.pads) == (3, 8, 10, 12, 3, 3, 2, (1,) * 4)
    assert s.relu and s.pool
    assert (s.conv_h, s.conv_w) == (5, 6) and s.output_shape == (8, 2, 3)
    assert s.macs == 8 * 3 * 9 * 4 * 6  # pooling drops the fifth conv row


def test_gemm_and_fc_are_one_by_one_convs():
    g = parse_spec("gemm:M=5,K=9,N=7,relu")
    assert (g.C, g.K, g.H, g.W, g.R, g.S) == (9, 7, 1, 5, 1, 1) and g.relu
    assert g.macs == 5 * 9 * 7
    f = parse_spec("fc:K=10,N=6")
    assert (f.W, f.C, f.K, f.kind) == (1, 10, 6, "fc")


@pytest.mark.parametrize("spec, phrase", [
    ("conv:C=3,K=8,H=10", "missing key 'W'"),
    ("conv:C=3,K=8,H=10,W=10,Q=2", "unknown key 'Q'"),
    ("conv:C=3,K=8,H=10,W=x", "not an integer"),
    ("conv:C=0,K=8,H=10,W=10", "positive integer"),
    ("conv:C=3,K=8,H=10,W=10,pool=3", "allowed is pool=2"),
    ("gemm:M=2,K=2,N=2,pool=2", "pool=2 is not supported"),
    ("conv:C=3,K=8,H=2,W=2,R=5", "does not fit"),
    ("conv:C=3,K=8,H=9,W=9,R=3,pad=3", "less than the kernel"),
    ("matmul:M=1", "must start with gemm:, fc: or conv:"),
    ("gemm:M=2,M=3,K=1,N=1", "given twice"),
    ("conv:C=1,K=1,H=1,W=1,R=1,pool=2", "at least 2x2"),
])
def test_malformed_specs_fail_with_one_line(spec, phrase):
    with pytest.raises(SpecError) as err:
        parse_spec(spec)
    assert phrase in str(err.value) and "\n" not in str(err.value)


def test_shape_validates_programmatic_construction():
    with pytest.raises(SpecError, match="stride"):
        LayerShape("x", "conv", C=1, K=1, H=4, W=4, stride=0)


def test_groups_makes_a_depthwise_conv():
    s = parse_spec("conv:C=6,K=6,H=5,W=5,pad=1,groups=6")
    assert s.depthwise and s.macs == 6 * 9 * 25
    with pytest.raises(SpecError, match="groups=3 is not supported") as err:
        parse_spec("conv:C=6,K=6,H=5,W=5,groups=3")
    assert str(err.value).startswith("layer SPEC 'conv:C=6,K=6,H=5,W=5,groups=3'")
