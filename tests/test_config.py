"""ArchConfig: presets, validation messages, serialisation, hashing, --set overrides."""

import json

import pytest

from tessera.config import (ARCHS, PRESETS, LcpConfig, config_from_dict, load_config,
                            resolve_config)
from tessera.errors import ConfigError


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_build_and_round_trip(name, tmp_path):
    cfg = PRESETS[name].build()
    assert cfg.arch == PRESETS[name].arch
    for suffix, text in ((".json", cfg.to_json()), (".toml", cfg.to_toml())):
        path = tmp_path / f"c{suffix}"
        path.write_text(text)
        again = load_config(path)
        assert again == cfg and again.config_hash == cfg.config_hash


def test_lcp_asap7_preset_is_the_paper_array():
    cfg = PRESETS["lcp-asap7-32x64"].build()
    assert (cfg.rows, cfg.cols, cfg.acc_width, cfg.clock_mhz) == (32, 64, 32, 800.0)


def test_pynq_preset_multipliers_fit_the_dsps():
    cfg = PRESETS["lcp-pynq-z1"].build()
    assert cfg.rows * cfg.cols <= 220 - 40  # room for the PPU and the shell


def test_hash_is_stable_and_covers_only_hardware_fields():
    cfg = LcpConfig(rows=8, cols=16)
    # The hash is a pure function of the hardware fields (pinned: changing it breaks programs).
    assert cfg.config_hash == LcpConfig(rows=8, cols=16).config_hash
    assert len(cfg.config_hash) == 8 and int(cfg.config_hash, 16) == cfg.config_id
    assert cfg.replace(dram_latency=99, clock_mhz=1.0).config_hash == cfg.config_hash
    assert cfg.replace(acc_depth=64).config_hash != cfg.config_hash
    assert cfg.replace(dram_width=8).config_hash != cfg.config_hash


@pytest.mark.parametrize("changes, field, phrase", [
    ({"rows": 3}, "rows", "a power of two from 2 to 128"),
    ({"cols": 0}, "cols", "a power of two"),
    ({"rows": 8, "cols": 4}, "cols", "a multiple of rows"),
    ({"dram_width": 8, "rows": 4, "cols": 4}, "dram_width", "at most rows"),
    ({"acc_width": 40}, "acc_width", "an integer from 20 to 32"),
    ({"dram_latency": 0}, "dram_latency", "from 1 to 1000"),
    ({"rows": 4.0}, "rows", "wrong type"),
    ({"rows": True}, "rows", "wrong type"),
])
def test_invalid_values_name_field_value_and_allowed(changes, field, phrase):
    with pytest.raises(ConfigError) as err:
        LcpConfig(**changes)
    msg = str(err.value)
    assert f"'{field}'" in msg and phrase in msg and "\n" not in msg


def test_overrides_parse_types_and_reject_unknown_keys():
    cfg = resolve_config("lcp", sets=["rows=8", "cols=0x10", "clock_mhz=250"])
    assert (cfg.rows, cfg.cols, cfg.clock_mhz) == (8, 16, 250.0)
    with pytest.raises(ConfigError, match="unknown config key 'dim_m'"):
        resolve_config("lcp", sets=["dim_m=4"])
    with pytest.raises(ConfigError, match="malformed"):
        resolve_config("lcp", sets=["rows"])
    with pytest.raises(ConfigError, match="not a valid int"):
        resolve_config("lcp", sets=["rows=eight"])


def test_resolve_rejects_mismatches_and_unknowns(tmp_path):
    with pytest.raises(ConfigError, match="--preset 'nope' is unknown"):
        resolve_config(preset="nope")
    with pytest.raises(ConfigError, match="no architecture"):
        resolve_config()
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"arch": "lcp", "rows": 4, "colz": 4}))
    with pytest.raises(ConfigError, match="unknown config key 'colz'"):
        load_config(bad)
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="not valid json"):
        load_config(bad)
    with pytest.raises(ConfigError, match="field 'arch'"):
        config_from_dict({"arch": "tpu"})


def test_every_arch_has_a_default_preset():
    from tessera.config import DEFAULT_PRESET
    assert set(DEFAULT_PRESET) == set(ARCHS)
