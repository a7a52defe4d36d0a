"""On-disk cache of per-lesion agreement results (HDF5), keyed by mask content.

One file per dataset in the user cache directory (never in the dataset). Each
lesion's results are stored under its fingerprint (``lesion_fingerprint``:
engine version, options and the bytes of every mask), so reopening a dataset
reads results back instead of recomputing, and a changed mask changes its
lesion's key and is recomputed. A truncated, corrupt or older-format file is
discarded and rebuilt, never trusted.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
from pathlib import Path

import h5py
import numpy as np
import platformdirs

from iaa_desktop.core.agreement.lesion import ENGINE_VERSION, LesionAgreement
from iaa_desktop.core.dataset.model import Problem

log = logging.getLogger(__name__)

FORMAT_VERSION = 2
_STR = h5py.string_dtype("utf-8")
# (table, number of text columns, number of float columns)
_TABLES = {"pairs": (9, 8), "staple": (5, 3), "problems": (5, 0), "lesions": (4, 0)}
# Tables of one variable-length float row per entry: the MetricsReloaded values of each pair
# (as many as the lesion's extra_columns), and each lesion's chance-corrected agreement.
_VLEN_TABLES = ("pair_extra", "chance")


def cache_root() -> Path:
    """The user cache directory (``IAA_DESKTOP_CACHE_DIR`` overrides it)."""
    override = os.environ.get("IAA_DESKTOP_CACHE_DIR")
    return Path(override) if override else Path(platformdirs.user_cache_dir("iaa-desktop"))


def default_cache_path(dataset_root: Path) -> Path:
    """The cache file for a dataset: named after its resolved path."""
    digest = hashlib.blake2b(str(Path(dataset_root).resolve()).encode(), digest_size=10).hexdigest()
    return cache_root() / "agreement" / f"{Path(dataset_root).name or 'dataset'}-{digest}.h5"


def _split_pair(row: tuple) -> tuple[list[str], list[float], list[float]]:
    # PAIRWISE_COLUMNS: 5 ids, 8 metrics, 4 factors; then the extra (MetricsReloaded) values.
    return ([str(v) for v in (*row[:5], *row[13:17])], [float(v) for v in row[5:13]],
            [float(v) for v in row[17:]])


def _join_pair(text: list[str], values: np.ndarray, extra: np.ndarray) -> tuple:
    return (*text[:5], *(float(v) for v in values), *text[5:9], *(float(v) for v in extra))


class AgreementCache:
    """Read all cached lesions at open; ``put`` adds results; ``flush`` appends them to disk."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._entries: dict[str, LesionAgreement] = {}
        self._pending: dict[str, LesionAgreement] = {}
        self._load()

    def __contains__(self, key: str) -> bool:
        return key in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> LesionAgreement | None:
        return self._entries.get(key)

    def put(self, key: str, result: LesionAgreement) -> None:
        self._entries[key] = result
        self._pending[key] = result

    def _load(self) -> None:
        if not self.path.exists():
            return
        try:
            with h5py.File(self.path, "r") as h5:
                if (h5.attrs.get("format_version") != FORMAT_VERSION
                        or h5.attrs.get("engine_version") != ENGINE_VERSION):
                    log.info("agreement cache %s was made by another version; rebuilding it", self.path)
                    outdated = True
                else:
                    outdated = False
                    tables = {name: self._read_table(h5, name) for name in _TABLES}
                    vlen = {name: self._read_vlen(h5, name) for name in _VLEN_TABLES}
        except (OSError, ValueError, KeyError) as exc:
            log.warning("agreement cache %s is unusable (%s); rebuilding it", self.path, exc)
            self._discard()
            return
        if outdated:
            self._discard()
            return
        pairs, staple_rows, problems = {}, {}, {}
        keys, text, values = tables["pairs"]
        extra_keys, extra_values = vlen["pair_extra"]
        if extra_keys != keys:
            log.warning("agreement cache %s has mismatched pair tables; rebuilding it", self.path)
            self._discard()
            return
        for key, t, v, e in zip(keys, text, values, extra_values, strict=True):
            pairs.setdefault(key, []).append(_join_pair(list(t), v, e))
        chance = dict(zip(*vlen["chance"], strict=True))
        keys, text, values = tables["staple"]
        for key, t, v in zip(keys, text, values, strict=True):
            staple_rows.setdefault(key, []).append((*t, float(v[0]), float(v[1]), int(v[2])))
        keys, text, _ = tables["problems"]
        for key, t in zip(keys, text, strict=True):
            problems.setdefault(key, []).append(Problem(*t))
        keys, text, _ = tables["lesions"]
        for key, (image_id, source, image_name, extra_columns) in zip(keys, text, strict=True):
            self._entries[key] = LesionAgreement(
                image_id, tuple(pairs.get(key, ())), tuple(staple_rows.get(key, ())),
                tuple(problems.get(key, ())), source, image_name,
                extra_columns=tuple(extra_columns.split("\t")) if extra_columns else (),
                chance=tuple(float(v) for v in chance.get(key, ())))

    @staticmethod
    def _read_table(h5: h5py.File, name: str) -> tuple[list[str], list, np.ndarray]:
        group = h5[name]
        keys = [k.decode() for k in group["key"][()]]
        text = [[s.decode() if isinstance(s, bytes) else s for s in row] for row in group["text"][()]]
        values = group["values"][()] if "values" in group else np.empty((len(keys), 0))
        if not (len(keys) == len(text) == len(values)):
            raise ValueError(f"table {name} has columns of different lengths")
        return keys, text, values

    @staticmethod
    def _read_vlen(h5: h5py.File, name: str) -> tuple[list[str], list[np.ndarray]]:
        if name not in h5:
            return [], []
        group = h5[name]
        keys = [k.decode() for k in group["key"][()]]
        lengths = group["lengths"][()]
        flat = group["values"][()]
        if len(keys) != len(lengths) or int(lengths.sum()) != flat.size:
            raise ValueError(f"table {name} has columns of different lengths")
        return keys, np.split(flat, np.cumsum(lengths)[:-1]) if len(keys) else []

    def _discard(self) -> None:
        self._entries.clear()
        with contextlib.suppress(OSError):
            self.path.unlink()

    def flush(self) -> None:
        """Append pending results to the file (created if needed). Errors are logged, not raised."""
        if not self._pending:
            return
        rows = {name: ([], [], []) for name in _TABLES}
        vlen = {name: ([], []) for name in _VLEN_TABLES}
        for key, result in self._pending.items():
            for pair in result.pairs:
                text, values, extra = _split_pair(pair)
                rows["pairs"][0].append(key)
                rows["pairs"][1].append(text)
                rows["pairs"][2].append(values)
                vlen["pair_extra"][0].append(key)
                vlen["pair_extra"][1].append(np.asarray(extra, np.float64))
            if result.chance:
                vlen["chance"][0].append(key)
                vlen["chance"][1].append(np.asarray(result.chance, np.float64))
            for s in result.staple_rows:
                rows["staple"][0].append(key)
                rows["staple"][1].append([str(v) for v in s[:5]])
                rows["staple"][2].append([float(s[5]), float(s[6]), float(s[7])])
            for p in result.problems:
                rows["problems"][0].append(key)
                rows["problems"][1].append([p.kind, p.severity, p.message, p.path, p.image_id])
            rows["lesions"][0].append(key)
            rows["lesions"][1].append([result.image_id, result.consensus_source,
                                       result.image_file_name, "\t".join(result.extra_columns)])
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with h5py.File(self.path, "a") as h5:
                h5.attrs["format_version"] = FORMAT_VERSION
                h5.attrs["engine_version"] = ENGINE_VERSION
                for name, (n_text, n_values) in _TABLES.items():
                    self._append(h5, name, n_text, n_values, *rows[name])
                for name in _VLEN_TABLES:
                    self._append_vlen(h5, name, *vlen[name])
        except OSError as exc:
            log.warning("could not write the agreement cache %s: %s", self.path, exc)
            return
        self._pending.clear()

    @staticmethod
    def _append(h5, name, n_text, n_values, keys, text, values) -> None:
        group = h5.require_group(name)
        if "key" not in group:
            group.create_dataset("key", (0,), "S32", maxshape=(None,), chunks=(4096,))
            group.create_dataset("text", (0, n_text), _STR, maxshape=(None, n_text), chunks=(1024, n_text))
            if n_values:
                group.create_dataset("values", (0, n_values), "f8", maxshape=(None, n_values),
                                     chunks=(4096, n_values))
        if not keys:
            return
        start = group["key"].shape[0]
        stop = start + len(keys)
        group["key"].resize((stop,))
        group["key"][start:stop] = np.array(keys, dtype="S32")
        group["text"].resize((stop, n_text))
        group["text"][start:stop] = np.array(text, dtype=object).reshape(len(keys), n_text)
        if n_values:
            group["values"].resize((stop, n_values))
            group["values"][start:stop] = np.array(values, dtype=np.float64).reshape(len(keys), n_values)

    @staticmethod
    def _append_vlen(h5, name, keys, arrays) -> None:
        # Stored flat with one length per row: h5py's vlen type mangles equal-length rows.
        group = h5.require_group(name)
        if "key" not in group:
            group.create_dataset("key", (0,), "S32", maxshape=(None,), chunks=(4096,))
            group.create_dataset("lengths", (0,), "i4", maxshape=(None,), chunks=(4096,))
            group.create_dataset("values", (0,), "f8", maxshape=(None,), chunks=(16384,))
        if not keys:
            return
        start = group["key"].shape[0]
        stop = start + len(keys)
        group["key"].resize((stop,))
        group["key"][start:stop] = np.array(keys, dtype="S32")
        group["lengths"].resize((stop,))
        group["lengths"][start:stop] = [len(a) for a in arrays]
        flat = np.concatenate([np.asarray(a, np.float64) for a in arrays])
        begin = group["values"].shape[0]
        group["values"].resize((begin + flat.size,))
        group["values"][begin:] = flat
