"""Per-token output (``output.per_token``): Parquet shards written while scoring, never held whole.

Each shard holds up to :data:`SHARD_ROWS` rows: document, position (index of the
target in the document), token id, context length, NLL in nats, then each
statistic's own columns (:meth:`lm_eval_it.stats.base.Statistic.columns`: for every
swept T, entropy and NLL at T, ``entropy_T0.5`` …; ``target_rank``). A shard is written to a
temporary name and renamed when full, so a folder never holds half a shard.
A resumed run writes rows only for the documents it scores itself. Under torchrun every
rank writes the rows it scores (rank r > 0: ``part-rank<r>-NNNNN.parquet``).

Example::

    w = PerTokenWriter(folder / "per_token-m-d", statistics=[TemperatureStats([1.0], vocab)])
    ex = Executor(prepared, scorer, statistics, batch_size=4, token_sink=w)   # called once per chunk
    list(ex.run())
    w.close()
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lm_eval_it.io import atomic_write_bytes

SHARD_ROWS = 1 << 20


class PerTokenWriter:
    def __init__(self, folder: Path, statistics: list, rank: int = 0):
        self.folder = Path(folder)
        self.prefix = "part-" if rank == 0 else f"part-rank{rank}-"  # under torchrun every rank writes its own rows
        self.folder.mkdir(parents=True, exist_ok=True)
        self.statistics = list(statistics)
        self.parts: dict[str, list[np.ndarray]] = {}
        self.rows = 0
        self.shards = 0
        self.total = 0

    def __call__(self, chunk, nll: np.ndarray, rows: dict, keep: np.ndarray) -> None:
        seg = list(chunk.segments) + [len(chunk.doc)]
        mask = np.zeros(len(chunk.doc), bool)
        for j, k in enumerate(keep):
            mask[seg[j] : seg[j + 1]] = k
        if not mask.any():
            return
        cols = {"document": chunk.doc[mask].astype(np.int32), "position": chunk.position[mask].astype(np.int32),
                "token_id": chunk.targets.cpu().numpy()[mask].astype(np.int32),
                "context": chunk.context[mask].astype(np.int32), "nll": nll[mask].astype(np.float32)}
        for stat in self.statistics:
            if stat.name in rows:
                cols.update(stat.columns(rows[stat.name], mask))
        for k, v in cols.items():
            self.parts.setdefault(k, []).append(v)
        self.rows += int(mask.sum())
        if self.rows >= SHARD_ROWS:
            self.flush()

    def flush(self) -> None:
        if not self.rows:
            return
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.table({k: np.concatenate(v) for k, v in self.parts.items()})
        buf = pa.BufferOutputStream()
        pq.write_table(table, buf)
        atomic_write_bytes(self.folder / f"{self.prefix}{self.shards:05d}.parquet", buf.getvalue().to_pybytes())
        self.total += self.rows
        self.shards += 1
        self.parts, self.rows = {}, 0

    def close(self) -> dict:
        self.flush()
        return {"folder": self.folder.name, "shards": self.shards, "rows": self.total}

