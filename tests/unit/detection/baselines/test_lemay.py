"""Per-packet precision and recall of the baselines on the Lemay & Fernandez Modbus captures
(learning from every packet before the first labelled one). Skipped without the datasets."""

from __future__ import annotations

import pytest

from plantwarden.detection.baselines import lemay

pytestmark = pytest.mark.skipif(
    not lemay.available(),
    reason=f"the Lemay Modbus captures are not in {lemay.DATASET} (shared datasets absent)",
)

MEASURED = {
    # capture: (packets learnt from, malicious after, flagged, true positives)
    "characterization_modbus_6RTU_with_operate": (2, 6719, 12294, 6719),
    "CnC_uploading_exe_modbus_6RTU_with_operate": (810, 121, 121, 120),
    "moving_two_files_modbus_6RTU": (324, 75, 46, 42),
}
PRECISION_RECALL = {
    "characterization_modbus_6RTU_with_operate": (0.547, 1.000),
    "CnC_uploading_exe_modbus_6RTU_with_operate": (0.992, 0.992),
    "moving_two_files_modbus_6RTU": (0.913, 0.560),
}


@pytest.mark.parametrize("name", lemay.CAPTURES)
def test_per_packet_precision_and_recall(name: str) -> None:
    score = lemay.evaluate(lemay.DATASET / f"{name}.pcap")
    assert (score.learned, score.malicious, score.flagged, score.true_positives) == pytest.approx(
        MEASURED[name], rel=0.02
    )
    precision, recall = PRECISION_RECALL[name]
    assert score.precision == pytest.approx(precision, abs=0.01)
    assert score.recall == pytest.approx(recall, abs=0.01)
