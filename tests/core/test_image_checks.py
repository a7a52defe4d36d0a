"""Images are checked like masks: each bad-image kind, in both multi-annotator layouts, named by
``info`` (header), ``qa`` and ``metrics`` (decoded), and the dataset directory never written."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from iaa_desktop.cli import main
from iaa_desktop.core.dataset.image_checks import check_image, iter_image_checks, read_image_header
from iaa_desktop.core.dataset.io import load_dataset
from iaa_desktop.core.dataset.qa import iter_qa
from iaa_desktop.core.progress import run_to_end
from tests.builders import make_folder, make_imapp, png_chunk, png_header_only, tree_digest


def _victim(root: Path) -> Path:
    """The image the cases break: ISIC_0000002 (IMA++ layout) or b (folder layout)."""
    found = list((root / "ISIC_images").glob("ISIC_0000002.*")) if (root / "ISIC_images").is_dir() \
        else list((root / "images").glob("b.*"))
    assert len(found) == 1
    return found[0]


def _as_png(path: Path) -> Path:
    """Move the victim to a .png name (the loaders find any image extension)."""
    target = path.with_suffix(".png")
    if target != path:
        path.rename(target)
    return target


def _garbage_after_signature(path: Path) -> Path:
    target = _as_png(path)
    target.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    return target


def _damaged_pixels(path: Path) -> Path:
    """A valid header and end marker around garbage compressed data: only decoding finds it."""
    target = _as_png(path)
    ihdr = png_chunk(b"IHDR", np.array([64, 48], ">u4").tobytes() + bytes([8, 2, 0, 0, 0]))
    target.write_bytes(b"\x89PNG\r\n\x1a\n" + ihdr + png_chunk(b"IDAT", bytes(range(200)))
                       + png_chunk(b"IEND", b""))
    return target


def _truncated(path: Path) -> Path:
    path.write_bytes(path.read_bytes()[:-60])
    return path


def _empty(path: Path) -> Path:
    path.write_bytes(b"")
    return path


def _bomb(path: Path) -> Path:
    target = _as_png(path)
    target.write_bytes(png_header_only(20_000, 20_000))
    return target


def _rgba(path: Path) -> Path:
    target = _as_png(path)
    assert cv2.imwrite(str(target), np.full((48, 64, 4), 200, np.uint8))
    return target


def _missing(path: Path) -> Path:
    path.unlink()
    return path.parent


#: name -> (break the victim, kind, words the message holds, found by the header check alone)
CASES: dict[str, tuple[Callable[[Path], Path], str, str, bool]] = {
    "png signature then garbage": (_garbage_after_signature, "unreadable_image", "not a readable image",
                                   True),
    "damaged pixel data": (_damaged_pixels, "unreadable_image", "pixel data is damaged", False),
    "truncated": (_truncated, "truncated_file", "truncated", True),
    "empty": (_empty, "empty_file", "file is empty (0 bytes)", True),
    "too large": (_bomb, "image_too_large", "above the limit", True),
    "four channels": (_rgba, "unexpected_channels", "image has 4 channels", True),
    "missing": (_missing, "missing_image", "no image file for", True),
}
LAYOUTS = {"imapp": make_imapp, "folder": make_folder}


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("name", CASES)
def test_each_bad_image_kind_is_named_by_qa_and_by_the_header_check(tmp_path, layout, name):
    root = LAYOUTS[layout](tmp_path / "data")
    breaker, kind, words, header_finds = CASES[name]
    target = breaker(_victim(root))
    before = tree_digest(root)
    dataset = load_dataset(root)
    qa = run_to_end(iter_qa(dataset))
    hits = qa[(qa["kind"] == kind) & qa["message"].str.contains(words, regex=False)
              & qa["message"].str.contains(str(target), regex=False)]
    assert len(hits) == 1, qa[["kind", "message"]].to_string()
    assert hits.iloc[0]["severity"] == ("medium" if kind in ("unexpected_channels", "missing_image")
                                        else "high")
    header = [p for p in run_to_end(iter_image_checks(dataset)) if p.kind == kind]
    if kind != "missing_image":  # the loader reports a missing file, not the image checks
        assert bool(header) == header_finds
    assert tree_digest(root) == before


def test_good_images_give_no_problem_in_either_layout(tmp_path):
    for layout, make in LAYOUTS.items():
        dataset = load_dataset(make(tmp_path / layout))
        assert run_to_end(iter_image_checks(dataset, decode=True)) == []


def test_decoding_in_processes_finds_the_same(tmp_path):
    root = make_imapp(tmp_path / "data")
    _damaged_pixels(_victim(root))
    dataset = load_dataset(root)
    serial = run_to_end(iter_image_checks(dataset, decode=True))
    parallel = run_to_end(iter_image_checks(dataset, decode=True, workers=2))
    assert [p.kind for p in serial] == [p.kind for p in parallel] == ["unreadable_image"]


def test_header_reads_size_and_channels_without_decoding(tmp_path):
    gray = tmp_path / "gray.png"
    assert cv2.imwrite(str(gray), np.zeros((30, 40), np.uint8))
    jpeg = tmp_path / "rgb.jpg"
    assert cv2.imwrite(str(jpeg), np.zeros((31, 41, 3), np.uint8))
    assert (read_image_header(gray).height, read_image_header(gray).width,
            read_image_header(gray).channels) == (30, 40, 1)
    assert read_image_header(jpeg).channels == 3
    assert check_image(gray, decode=True) == [] and check_image(jpeg, decode=True) == []
    two = tmp_path / "gray_alpha.png"
    from PIL import Image

    Image.fromarray(np.zeros((5, 6, 2), np.uint8), mode="LA").save(two)
    (problem,) = check_image(two)
    assert problem.kind == "unexpected_channels" and "2 channels (gray + alpha)" in problem.message


@pytest.mark.parametrize("layout", LAYOUTS)
def test_info_qa_and_metrics_name_a_corrupt_image(tmp_path, capsys, layout, monkeypatch):
    monkeypatch.setenv("IAA_DESKTOP_CACHE_DIR", str(tmp_path / "cache"))
    root = LAYOUTS[layout](tmp_path / "data")
    target = _garbage_after_signature(_victim(root))
    before = tree_digest(root)
    relative = str(target.relative_to(root))

    assert main(["info", str(root)]) == 0
    out = capsys.readouterr().out
    assert "unreadable_image" in out and str(target) in out

    assert main(["qa", str(root), "--workers", "1"]) == 1
    out = capsys.readouterr().out
    assert "unreadable_image" in out and relative in out and "not a readable image" in out

    assert main(["metrics", str(root), "--out", str(tmp_path / "m"), "--workers", "1", "--no-maps"]) == 0
    out = capsys.readouterr().out
    assert "[unreadable_image]" in out and str(target) in out
    problems = pd.read_csv(tmp_path / "m" / "problems.csv")
    assert str(target) in set(problems.loc[problems["kind"] == "unreadable_image", "path"])
    assert tree_digest(root) == before


def test_info_json_counts_image_problems_and_can_skip_them(tmp_path, capsys):
    import json

    root = make_folder(tmp_path / "data")
    _truncated(_victim(root))
    assert main(["info", str(root), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["problems"] == {"truncated_file": 1}
    assert main(["info", str(root), "--json", "--no-image-check"]) == 0
    assert json.loads(capsys.readouterr().out)["problems"] == {}


@pytest.mark.parametrize("width", [60, 100, 200])
def test_qa_lines_fit_the_terminal_and_keep_the_whole_message(tmp_path, width):
    from iaa_desktop.cli.qa import findings_lines

    root = make_folder(tmp_path / "a dataset with a rather long folder name")
    target = _truncated(_victim(root))
    qa = run_to_end(iter_qa(load_dataset(root)))
    lines = findings_lines(qa, root, width)
    assert all(len(line) <= width for line in lines[1:])  # the first names the root in full
    text = " ".join(line.strip() for line in lines)
    relative = str(target.relative_to(root))
    assert f"{relative}: JPEG file is truncated (no end-of-image marker)" in text or \
        f"{relative}: PNG file is truncated (no IEND chunk at the end)" in text
    assert str(root) + "/" not in text
