"""Agreement tables built from a pairwise metrics table: per image and per factor.

The pairwise table has one row per pair of masks of an image, in the IMA++
layout (:data:`PAIRWISE_COLUMNS`): human-human pairs and pairs with a consensus
mask (annotator ``ST`` for STAPLE, ``MV`` for majority vote). From it we derive

- the image-level table (:func:`image_level_table`): mean and sample std of the
  human-human pairs of each image, in the exact IMA++ schema
  (:data:`IMAGE_LEVEL_COLUMNS`); ``dice_score_mean`` is the image's IAA;
- factor tables (:func:`factor_table`): mean metrics per unordered pair of
  levels of ``annotator``, ``tool`` or ``skill_level``;
- intra/inter summaries (:func:`intra_inter_table`): same level vs different
  levels of a factor.

Means and standard deviations are computed per group in the order the pairs
appear in the table, with compensated (Kahan) summation for means and
Welford's update for variances. That is the arithmetic of pandas 2.x
``groupby().mean()`` / ``.std()``, which produced the published IMA++ tables, so
our image-level table equals the published one bit for bit and does not drift
with the installed pandas version (pandas 3 rounds some group means differently).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from iaa_desktop.core.agreement.metrics import METRIC_COLUMNS
from iaa_desktop.core.dataset.model import CONSENSUS_ANNOTATORS
from iaa_desktop.core.errors import IAAError

#: Columns of an IMA++ pairwise table, in the published order.
PAIRWISE_COLUMNS = (
    "img_id",
    "mask1",
    "mask2",
    "annotator1",
    "annotator2",
    *METRIC_COLUMNS,
    "tool1",
    "skill_level1",
    "tool2",
    "skill_level2",
)

#: Identifier columns of the pairwise table (read as strings).
ID_COLUMNS = tuple(c for c in PAIRWISE_COLUMNS if c not in METRIC_COLUMNS)

#: The metrics the published image-level table summarises (it leaves out the
#: normalized HD95 and ASSD).
IMAGE_LEVEL_METRICS = METRIC_COLUMNS[:6]

#: Columns of an IMA++ image-level table, in the published order.
IMAGE_LEVEL_COLUMNS = ("img_id",) + tuple(
    f"{metric}_{stat}" for metric in IMAGE_LEVEL_METRICS for stat in ("mean", "std")
)

#: Factors a pair of masks can be compared on; column ``<factor>1`` / ``<factor>2``.
FACTORS = ("annotator", "tool", "skill_level")

_MEAN_COLUMNS = tuple(f"{metric}_mean" for metric in METRIC_COLUMNS)

#: Columns of :func:`factor_table`.
FACTOR_TABLE_COLUMNS = ("level_a", "level_b", "relation", "n_pairs", "n_images", *_MEAN_COLUMNS)

#: Columns of :func:`intra_inter_table`.
INTRA_INTER_COLUMNS = ("relation", "n_pairs", "n_images", *_MEAN_COLUMNS)

# Cells read as a missing metric (besides an empty cell), as pandas and R write them.
# Ids that may not be missing: without them a pair cannot be grouped or filtered.
_REQUIRED_IDS = ("img_id", "annotator1", "annotator2")


class PairwiseTableError(IAAError):
    """A pairwise metrics table cannot be read or lacks what the agreement tables need."""


def _require(pairwise: pd.DataFrame, columns: Sequence[str]) -> None:
    """Check that a pairwise frame has ``columns``, with no missing image / annotator id."""
    missing = [c for c in columns if c not in pairwise.columns]
    if missing:
        raise PairwiseTableError(f"pairwise table lacks column(s) {', '.join(missing)}")
    for name in _REQUIRED_IDS:
        if name in columns:
            empty = np.flatnonzero(pairwise[name].isna().to_numpy())
            if len(empty):
                rows = ", ".join(map(str, pairwise.index[empty[:5]]))
                raise PairwiseTableError(f"pairwise table has no {name} in row(s) {rows}")


def _metrics(pairwise: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
    """The metric columns as a float64 (rows, metrics) array."""
    try:
        return np.column_stack(
            [pairwise[c].to_numpy(dtype=np.float64, na_value=np.nan) for c in columns]
        ).reshape(len(pairwise), len(columns))
    except (TypeError, ValueError) as exc:
        raise PairwiseTableError(f"pairwise table has non-numeric metrics ({exc})") from None


def is_consensus_pair(pairwise: pd.DataFrame) -> np.ndarray:
    """Boolean mask of the pairs that involve a consensus mask (``ST`` or ``MV``)."""
    _require(pairwise, ("annotator1", "annotator2"))
    return (
        pairwise["annotator1"].isin(CONSENSUS_ANNOTATORS).to_numpy()
        | pairwise["annotator2"].isin(CONSENSUS_ANNOTATORS).to_numpy()
    )


def human_pairs(pairwise: pd.DataFrame) -> pd.DataFrame:
    """The human-human pairs of a pairwise table (consensus masks excluded)."""
    return pairwise.loc[~is_consensus_pair(pairwise)]


def _grouped_mean_std(
    values: np.ndarray, codes: np.ndarray, n_groups: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-group count, mean and sample std (ddof=1) of each column, skipping NaN.

    Rows are visited in table order within each group. Means use Kahan
    summation and variances Welford's update, step for step as pandas 2.x
    ``group_mean`` / ``group_var`` do: that is what reproduces the published
    IMA++ numbers exactly. The loop runs over positions within a group (at most
    the largest group's size), each step vectorised over groups and columns.

    Returns
    -------
    count, mean, std
        Arrays of shape (n_groups, n_columns); mean is NaN where count is 0 and
        std where count < 2.
    """
    n_cols = values.shape[1]
    shape = (n_groups, n_cols)
    count = np.zeros(shape, dtype=np.int64)
    total = np.zeros(shape)
    compensation = np.zeros(shape)
    w_mean = np.zeros(shape)
    m2 = np.zeros(shape)
    if len(codes) == 0:
        nan = np.full(shape, np.nan)
        return count, nan, nan.copy()
    order = np.argsort(codes, kind="stable")
    sorted_codes = codes[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_codes)) + 1]
    sizes = np.diff(np.r_[starts, len(codes)])
    position = np.arange(len(codes)) - np.repeat(starts, sizes)
    # Rows grouped by their position within their group: step k takes a slice.
    n_steps = int(sizes.max())
    by_step = np.argsort(position, kind="stable")
    edges = np.searchsorted(position[by_step], np.arange(n_steps + 1))
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        for step in range(n_steps):
            at = by_step[edges[step] : edges[step + 1]]
            rows, groups = order[at], sorted_codes[at]
            x = values[rows]
            ok = ~np.isnan(x)
            n = count[groups] + ok
            # Kahan: the compensation carries the low bits lost by each addition.
            s, c = total[groups], compensation[groups]
            y = x - c
            t = s + y
            new_c = (t - s) - y
            new_c[np.isnan(new_c)] = 0.0  # an infinite value: keep it infinite, not NaN
            total[groups] = np.where(ok, t, s)
            compensation[groups] = np.where(ok, new_c, c)
            # Welford: running mean and sum of squared deviations.
            old = w_mean[groups]
            mean = old + (x - old) / np.maximum(n, 1)
            w_mean[groups] = np.where(ok, mean, old)
            m2[groups] = np.where(ok, m2[groups] + (x - mean) * (x - old), m2[groups])
            count[groups] = n
        mean = np.where(count > 0, total / count, np.nan)
        std = np.where(count > 1, np.sqrt(m2 / (count - 1)), np.nan)
    return count, mean, std


def image_level_table(pairwise: pd.DataFrame) -> pd.DataFrame:
    """Per-image mean and std of the human-human pairs, in the IMA++ image-level schema.

    Parameters
    ----------
    pairwise
        A pairwise table (see :func:`read_pairwise_csv`); needs ``img_id``,
        ``annotator1``, ``annotator2`` and the :data:`IMAGE_LEVEL_METRICS`.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`IMAGE_LEVEL_COLUMNS`: one row per image that has at least
        one human-human pair, sorted by ``img_id``. Pairs with a consensus mask
        (``ST``, ``MV``) are left out. Std is the sample std (ddof=1), so it is
        NaN for an image with a single pair (an empty cell once written). NaN
        metrics are skipped, as pandas does. ``dice_score_mean`` is the IAA.
    """
    _require(pairwise, ("img_id", "annotator1", "annotator2", *IMAGE_LEVEL_METRICS))
    humans = human_pairs(pairwise)
    codes, images = pd.factorize(humans["img_id"], sort=True)
    _, mean, std = _grouped_mean_std(_metrics(humans, IMAGE_LEVEL_METRICS), np.asarray(codes), len(images))
    table = {"img_id": pd.Series(np.asarray(images), dtype=humans["img_id"].dtype)}
    for j, metric in enumerate(IMAGE_LEVEL_METRICS):
        table[f"{metric}_mean"] = mean[:, j]
        table[f"{metric}_std"] = std[:, j]
    return pd.DataFrame(table, columns=list(IMAGE_LEVEL_COLUMNS))


def _factor_pairs(
    pairwise: pd.DataFrame, factor: str, include_consensus: bool
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """The pairs to summarise and their two levels of ``factor``, ordered ``a <= b``.

    Pairs with a missing level are dropped; so are consensus pairs unless
    ``include_consensus``.
    """
    if factor not in FACTORS:
        raise ValueError(f"factor must be one of {', '.join(FACTORS)}, not {factor!r}")
    first, second = f"{factor}1", f"{factor}2"
    _require(pairwise, ("img_id", "annotator1", "annotator2", first, second, *METRIC_COLUMNS))
    a = pairwise[first].astype("string").to_numpy(dtype=object, na_value=None)
    b = pairwise[second].astype("string").to_numpy(dtype=object, na_value=None)
    keep = np.array([x is not None and y is not None for x, y in zip(a, b, strict=True)], bool)
    if not include_consensus:
        keep = keep & ~is_consensus_pair(pairwise)
    a, b = a[keep], b[keep]
    # Unordered pairs: A03-A00 and A00-A03 are the same comparison.
    low = np.array([min(x, y) for x, y in zip(a, b, strict=True)], dtype=object)
    high = np.array([max(x, y) for x, y in zip(a, b, strict=True)], dtype=object)
    return pairwise.loc[keep], low, high


def _n_images(codes: np.ndarray, images: pd.Series, n_groups: int) -> np.ndarray:
    """Number of distinct images per group."""
    image_codes, _ = pd.factorize(images)
    distinct = pd.DataFrame({"g": codes, "i": image_codes}).drop_duplicates()
    return np.bincount(distinct["g"].to_numpy(dtype=np.int64), minlength=n_groups)


def _summary_frame(
    head: dict[str, object],
    codes: np.ndarray,
    chosen: pd.DataFrame,
    n_groups: int,
    columns: Sequence[str],
) -> pd.DataFrame:
    """``head`` columns, then n_pairs, n_images and the mean of every metric per group."""
    _, mean, _ = _grouped_mean_std(_metrics(chosen, METRIC_COLUMNS), codes, n_groups)
    table = {
        **head,
        "n_pairs": np.bincount(codes, minlength=n_groups).astype(np.int64),
        "n_images": _n_images(codes, chosen["img_id"], n_groups),
    }
    for j, name in enumerate(_MEAN_COLUMNS):
        table[name] = mean[:, j]
    return pd.DataFrame(table, columns=list(columns))


def factor_table(pairwise: pd.DataFrame, factor: str, *, include_consensus: bool = True) -> pd.DataFrame:
    """Mean metrics per unordered pair of levels of a factor.

    Parameters
    ----------
    pairwise
        A pairwise table (see :func:`read_pairwise_csv`).
    factor
        ``"annotator"``, ``"tool"`` or ``"skill_level"``: the pair's levels are
        read from ``<factor>1`` and ``<factor>2``.
    include_consensus
        Keep the pairs with a consensus mask, whose level is ``ST`` or ``MV``
        for every factor (default), so that e.g. annotator ``A03`` vs ``ST``
        gets a row; ``False`` keeps human-human pairs only.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`FACTOR_TABLE_COLUMNS`: one row per level pair with
        ``level_a <= level_b`` (string order; A-B and B-A pairs are pooled),
        sorted by ``(level_a, level_b)``. ``relation`` is ``"intra"`` when both
        levels are the same and ``"inter"`` otherwise: for ``annotator``, an
        intra pair is one annotator's two masks of the same image
        (intra-annotator agreement); for ``tool`` or ``skill_level``, two masks
        made with the same tool or at the same skill level, usually by
        different annotators. ``n_pairs`` counts the pairs, ``n_images`` the
        distinct images among them; ``<metric>_mean`` is the mean over pairs
        (each pair weighs the same; NaN metrics skipped). Pairs with a missing
        level are left out.
    """
    chosen, low, high = _factor_pairs(pairwise, factor, include_consensus)
    keys = pd.MultiIndex.from_arrays([low, high])
    codes, levels = pd.factorize(keys, sort=True)
    level_a = [a for a, _ in levels]
    level_b = [b for _, b in levels]
    head = {
        "level_a": pd.Series(level_a, dtype="str"),
        "level_b": pd.Series(level_b, dtype="str"),
        "relation": pd.Series(
            ["intra" if a == b else "inter" for a, b in zip(level_a, level_b, strict=True)],
            dtype="str",
        ),
    }
    return _summary_frame(head, np.asarray(codes, dtype=np.int64), chosen, len(levels), FACTOR_TABLE_COLUMNS)


def intra_inter_table(
    pairwise: pd.DataFrame, factor: str, *, include_consensus: bool = False
) -> pd.DataFrame:
    """Mean metrics of pairs with the same level of a factor vs different levels.

    Parameters
    ----------
    pairwise
        A pairwise table (see :func:`read_pairwise_csv`).
    factor
        ``"annotator"``, ``"tool"`` or ``"skill_level"``.
    include_consensus
        Also count pairs with a consensus mask (default ``False``: agreement
        between people only; a human-consensus pair would always be "inter").

    Returns
    -------
    pandas.DataFrame
        Columns :data:`INTRA_INTER_COLUMNS`, two rows: ``intra`` then ``inter``
        (with ``n_pairs`` 0 and NaN means when there is no such pair). Means are
        over pairs, each pair weighing the same, as in :func:`factor_table`;
        ``n_images`` counts distinct images.
    """
    chosen, low, high = _factor_pairs(pairwise, factor, include_consensus)
    codes = np.where(low == high, 0, 1).astype(np.int64)
    head = {"relation": pd.Series(["intra", "inter"], dtype="str")}
    return _summary_frame(head, codes, chosen, 2, INTRA_INTER_COLUMNS)


def agreement_tables(pairwise: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Every agreement table of a pairwise table, by name (the CSV file stem).

    ``image_level``, ``factor_<factor>`` (consensus pairs included) and
    ``intra_inter_<factor>`` (human-human pairs only) for each of :data:`FACTORS`.
    """
    tables = {"image_level": image_level_table(pairwise)}
    for factor in FACTORS:
        tables[f"factor_{factor}"] = factor_table(pairwise, factor)
    for factor in FACTORS:
        tables[f"intra_inter_{factor}"] = intra_inter_table(pairwise, factor)
    return tables
