"""The records plane: high-rate protocol records, flows and telemetry samples as columnar batches.

Records never touch the ORM. They arrive as `RecordBatch` (numpy columns, one schema per kind),
pass the storage policy (`policy.py`), and are written in bulk as columnar chunks into
time-partitioned storage with exactly one writer per partition (`plane.py`). Queries select
chunks through small indexes (time, address or device, protocol and operation) and return
batches again.
"""
