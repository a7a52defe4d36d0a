"""``iaa-desktop aggregate PAIRWISE_CSV --out DIR``: per-image and per-factor agreement tables."""

from __future__ import annotations

import math
from pathlib import Path

from iaa_desktop.cli.common import fail
from iaa_desktop.core.agreement.table_io import read_pairwise_csv, write_agreement_tables
from iaa_desktop.core.agreement.tables import agreement_tables, is_consensus_pair
from iaa_desktop.core.errors import IAAError


def add_parser(sub) -> None:
    parser = sub.add_parser(
        "aggregate",
        help="per-image IAA and per-annotator/tool/skill tables from a pairwise metrics CSV",
        description=(
            "Read a pairwise metrics CSV (IMA++ layout) and write image_level.csv "
            "(IMA++ image-level schema: mean and std over human-human pairs), "
            "factor_<factor>.csv and intra_inter_<factor>.csv for annotator, tool "
            "and skill_level into DIR."
        ),
    )
    parser.add_argument("pairwise", type=Path, metavar="PAIRWISE_CSV", help="pairwise metrics CSV")
    parser.add_argument(
        "--out", type=Path, required=True, metavar="DIR", help="folder to write the tables to"
    )
    parser.set_defaults(func=run)


def _number(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.4f}"


def run(args) -> int:
    try:
        pairwise = read_pairwise_csv(args.pairwise)
        if pairwise.empty:
            return fail(f"{args.pairwise}: pairwise table has no pairs (header only)")
        tables = agreement_tables(pairwise)
        paths = write_agreement_tables(pairwise, args.out, tables)
    except IAAError as exc:
        return fail(str(exc))

    consensus = int(is_consensus_pair(pairwise).sum())
    image_level = tables["image_level"]
    tool = tables["intra_inter_tool"].set_index("relation")
    print(f"pairs    {len(pairwise):>8,}  ({len(pairwise) - consensus:,} human-human)")
    print(f"images   {pairwise['img_id'].nunique():>8,}  ({len(image_level):,} with an IAA)")
    iaa = float(image_level["dice_score_mean"].mean()) if len(image_level) else math.nan
    print(f"mean IAA {_number(iaa):>8}  (mean over images of the human-human mean Dice)")
    print("Dice by tool, human-human pairs:")
    for relation, label in (("intra", "same tool"), ("inter", "different tools")):
        row = tool.loc[relation]
        print(f"  {label:<16}{_number(float(row['dice_score_mean'])):>8}  over {int(row['n_pairs']):,} pairs")
    print(f"wrote {len(paths)} tables to {args.out}")
    return 0
