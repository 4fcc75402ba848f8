"""The column extractor equals the exact path on a plant's mix (its speed: bench/, not here)."""

from __future__ import annotations

from plantwarden.protocols.modbus import ModbusFinding, decode_segments, extract

from .plant_mix import segments


def test_the_plant_mix_decodes_the_same_on_both_paths() -> None:
    batch = segments(5_000, seed=11)
    fast = extract(batch.buffer, batch.starts, batch.lengths, batch.from_server)
    exact = decode_segments(batch.buffer, batch.starts, batch.lengths, batch.from_server)
    assert fast.columns.differences(exact.columns) == [] and len(fast.columns) == batch.adus
    assert set(fast.columns.finding.tolist()) == {ModbusFinding.OK}
