"""Batch export of per-lesion overlay figures: formats, cancelling, refusals, bad lesions."""

import cv2
import pytest

from iaa_desktop.core.dataset.io import load_dataset
from iaa_desktop.core.figures.lesion_batch import ExportLocationError, iter_export_lesion_figures
from iaa_desktop.core.progress import run_to_end
from tests.builders import make_folder, tree_digest


@pytest.fixture
def dataset(tmp_path):
    return load_dataset(make_folder(tmp_path / "ds", shape=(60, 80)))


@pytest.mark.parametrize("fmt", ["png", "svg", "pdf"])
def test_writes_one_figure_per_lesion(dataset, tmp_path, fmt):
    before = tree_digest(dataset.root)
    steps = []
    job = iter_export_lesion_figures(dataset, ["a", "b", "c"], tmp_path / "out", fmt)
    result = run_to_end(job, steps.append)
    assert [(s.done, s.total, s.message) for s in steps] == [(1, 3, "a"), (2, 3, "b"), (3, 3, "c")]
    assert [p.name for p in result.written] == [f"{i}_overlay.{fmt}" for i in "abc"]
    assert result.skipped == ()
    head = result.written[0].read_bytes()[:400]
    if fmt == "png":
        image = cv2.imread(str(result.written[0]))
        assert image is not None and image.shape[1] > 500  # a journal-width figure at 300 dpi
    elif fmt == "svg":
        assert b"<svg" in head
    else:
        assert head.startswith(b"%PDF")
    assert tree_digest(dataset.root) == before  # the dataset is never written


def test_closing_the_generator_stops_between_lesions(dataset, tmp_path):
    out = tmp_path / "out"
    job = iter_export_lesion_figures(dataset, ["a", "b", "c"], out, "png")
    assert next(job).done == 1
    job.close()
    assert sorted(p.name for p in out.iterdir()) == ["a_overlay.png"]


def test_refuses_a_folder_inside_the_dataset(dataset):
    before = tree_digest(dataset.root)
    for inside in (dataset.root, dataset.root / "figures", dataset.root / "masks" / "x"):
        with pytest.raises(ExportLocationError, match="inside the dataset"):
            next(iter_export_lesion_figures(dataset, ["a"], inside, "png"))
    assert tree_digest(dataset.root) == before


def test_refuses_an_unknown_format(dataset, tmp_path):
    with pytest.raises(ExportLocationError, match="unknown figure format 'tiff'"):
        next(iter_export_lesion_figures(dataset, ["a"], tmp_path / "out", "tiff"))


def test_bad_lesions_are_skipped_with_a_reason(tmp_path):
    root = make_folder(tmp_path / "ds", shape=(60, 80))
    (root / "masks" / "R2" / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    dataset = load_dataset(root)
    before = tree_digest(root)
    result = run_to_end(iter_export_lesion_figures(dataset, ["a", "b", "nope", "c"], tmp_path / "out", "png"))
    assert [p.name for p in result.written] == ["a_overlay.png", "c_overlay.png"]
    reasons = dict(result.skipped)
    assert list(reasons) == ["b", "nope"]
    assert "b.png" in reasons["b"] and "no lesion with image id 'nope'" in reasons["nope"]
    assert tree_digest(root) == before
