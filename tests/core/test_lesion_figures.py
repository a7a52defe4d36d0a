"""Per-lesion report figures: overlay, pairwise Dice matrix, disagreement map."""

import numpy as np
import pandas as pd
from PIL import Image

from iaa_desktop.cli import main
from iaa_desktop.core.agreement.engine import iter_dataset_agreement
from iaa_desktop.core.dataset.io import load_dataset
from iaa_desktop.core.figures.lesion_set import pairwise_dice_matrix, write_lesion_figures
from iaa_desktop.core.progress import run_to_end
from tests.builders import make_imapp, tree_digest


def test_pairwise_dice_matrix_is_symmetric_with_unit_diagonal():
    table = pd.DataFrame({"mask1": ["a", "a", "b"], "mask2": ["b", "c", "c"],
                          "dice_score": [0.5, 0.25, 0.75]})
    values = pairwise_dice_matrix(table, ["a", "b", "c"])
    np.testing.assert_array_equal(values, [[1, 0.5, 0.25], [0.5, 1, 0.75], [0.25, 0.75, 1]])
    assert np.isnan(pairwise_dice_matrix(table.iloc[:1], ["a", "b", "c"])[0, 2])


def test_three_figures_per_lesion_in_every_format(tmp_path, monkeypatch):
    monkeypatch.setenv("IAA_DESKTOP_CACHE_DIR", str(tmp_path / "cache"))
    dataset = load_dataset(make_imapp(tmp_path / "r"))
    pairwise = run_to_end(iter_dataset_agreement(dataset, workers=1)).pairwise
    lesion = dataset.lesion("ISIC_0000002")
    paths = write_lesion_figures(lesion, pairwise[pairwise["img_id"] == "ISIC_0000002.JPG"],
                                 tmp_path / "out", formats=("png", "pdf"), dpi=50)
    assert sorted(p.name for p in paths) == sorted(
        f"ISIC_0000002_{kind}.{ext}" for kind in ("overlay", "pairwise_dice", "disagreement")
        for ext in ("png", "pdf"))
    for path in paths:
        if path.suffix == ".png":
            with Image.open(path) as img:
                assert img.size[0] > 50
        else:
            assert path.read_bytes().startswith(b"%PDF")
    # A lesion with a single human mask has nothing to compare: no figure.
    assert write_lesion_figures(dataset.lesion("ISIC_0000003"), pairwise, tmp_path / "out") == []


def test_report_on_a_dataset_writes_lesion_figures_outside_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("IAA_DESKTOP_CACHE_DIR", str(tmp_path / "cache"))
    root = make_imapp(tmp_path / "r")
    before = tree_digest(root)
    out = tmp_path / "report"
    assert main(["report", str(root), "--out", str(out), "--workers", "1", "--n-boot", "100",
                 "--figure-formats", "png", "--dpi", "50", "--lesion-figures", "1"]) == 0
    lowest = sorted((out / "lesions").glob("*.png"))
    assert len(lowest) == 3 and len({p.name.split("_")[1] for p in lowest}) == 1
    assert tree_digest(root) == before
