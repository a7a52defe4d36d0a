"""The bad-input corpus: every case gives a clear message, the rest of the dataset stays usable,
and the dataset directory is byte-identical afterwards.

Each case starts from the small IMA++-layout dataset of ``tests.builders.make_imapp``
(ISIC_0000001: A00, A01 + shipped ST, MV; ISIC_0000002: A00 twice, A01, A02;
ISIC_0000003: A02), breaks something (mostly in ISIC_0000002, the "victim"),
then runs what a user runs: load, QA, agreement, every lesion's overlay and a
training-set export to a folder outside the dataset. The witness lesion
ISIC_0000001 must still give its 6 pairs and its outlines, the expected
message must name the file and the problem, and the dataset tree (files,
folders, links) must be unchanged.

``python -m tests.core.test_bad_input_corpus`` prints the table of cases and
messages for the documentation.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import h5py
import numpy as np
import pandas as pd
import pytest

from iaa_desktop.core.agreement.cache import AgreementCache
from iaa_desktop.core.agreement.engine import iter_dataset_agreement
from iaa_desktop.core.dataset.io import load_dataset
from iaa_desktop.core.dataset.qa import iter_qa
from iaa_desktop.core.display.overlay import iter_lesion_overlay
from iaa_desktop.core.errors import IAAError
from iaa_desktop.core.progress import run_to_end
from iaa_desktop.core.training.training_set import iter_export_training_set
from tests.builders import disk, make_imapp, png_header_only, write_image, write_mask

SHAPE = (48, 64)
VICTIM = "ISIC_0000002"
WITNESS = "ISIC_0000001"
SEG_CSV = "IMAplusplus_seg_metadata.csv"
IMG_CSV = "IMAplusplus_img_metadata.csv"


# --- building bad files --------------------------------------------------------------------------

def victim_mask(root: Path, annotator: str = "A01") -> Path:
    return next((root / "segs").glob(f"{VICTIM}_{annotator}_*.png"))


def victim_image(root: Path) -> Path:
    return root / "ISIC_images" / f"{VICTIM}.JPG"


def victim_truth(root: Path) -> np.ndarray:
    return cv2.imread(str(victim_mask(root)), cv2.IMREAD_GRAYSCALE) > 0


def edit_csv(path: Path, change: Callable[[pd.DataFrame], pd.DataFrame], **to_csv) -> Path:
    frame = change(pd.read_csv(path, dtype=str, keep_default_na=False))
    frame.to_csv(path, index=False, **to_csv)
    return path


@dataclass(frozen=True)
class Case:
    name: str
    setup: Callable[[Path], Path]  # breaks the dataset; returns the file the message must name
    expect: tuple[str, ...]  # every one must appear in one message (besides the file name)
    kind: str | None = None  # the problem kind of that message (None: a raised error or a log line)
    load_fails: bool = False  # the dataset cannot be indexed at all (the message says why)
    accepted: bool = False  # a flavour we read: no problem names the file
    victim_pairs: bool = True  # the victim lesion still has pairs


CASES: list[Case] = []


def case(name: str, *expect: str, **options):
    def register(setup):
        CASES.append(Case(name, setup, tuple(expect), **options))
        return setup
    return register


# --- masks ---------------------------------------------------------------------------------------

@case("corrupt mask (valid header, garbage body)", "not a readable image (the header is fine, the pixel "
      "data is damaged)", kind="unreadable_mask")
def _corrupt_mask(root):
    path = victim_mask(root)
    data = path.read_bytes()
    path.write_bytes(data[:33] + bytes(range(256)) * 2 + data[-12:])
    return path


@case("truncated mask", "PNG file is truncated (no IEND chunk", kind="truncated_file")
def _truncated_mask(root):
    path = victim_mask(root)
    path.write_bytes(path.read_bytes()[:-40])
    return path


@case("zero-byte mask", "file is empty (0 bytes)", kind="empty_file")
def _zero_byte_mask(root):
    path = victim_mask(root)
    path.write_bytes(b"")
    return path


@case("non-image file named .png (mask)", "not a readable image (not a known image format)",
      kind="unreadable_mask")
def _text_mask(root):
    path = victim_mask(root)
    path.write_text("these are my notes, not a mask\n" * 20)
    return path


@case("mask of the wrong size", "mask is 30 x 20 but its image is 64 x 48", kind="size_mismatch")
def _wrong_size_mask(root):
    return write_mask(victim_mask(root), disk((20, 30), (10, 15), 6))


@case("16-bit mask (0/65535)", accepted=True)
def _mask_16bit(root):
    path = victim_mask(root)
    assert cv2.imwrite(str(path), victim_truth(root).astype(np.uint16) * 65535)
    return path


@case("RGBA mask (mask in the alpha channel)", accepted=True)
def _mask_rgba(root):
    path = victim_mask(root)
    rgba = np.zeros((*SHAPE, 4), np.uint8)
    rgba[..., 3] = victim_truth(root) * 255
    assert cv2.imwrite(str(path), rgba)
    return path


@case("palette mask (index 1 = lesion)", accepted=True)
def _mask_palette(root):
    from PIL import Image

    path = victim_mask(root)
    image = Image.fromarray(victim_truth(root).astype(np.uint8), mode="P")
    image.putpalette([0, 0, 0, 0, 0, 0] + [255] * 762)  # index 1 is black too: indices count
    image.save(path)
    return path


@case("non-binary mask (0, 128, 255)", "mask has 2 non-zero values", "every non-zero pixel is taken "
      "as foreground", kind="non_binary_mask")
def _non_binary_mask(root):
    path = victim_mask(root)
    values = victim_truth(root).astype(np.uint8) * 255
    values[20:24, 30:34] = 128
    assert cv2.imwrite(str(path), values)
    return path


@case("empty mask (all background)", "Empty mask (no foreground pixel)", kind="empty_mask")
def _empty_mask(root):
    return write_mask(victim_mask(root), np.zeros(SHAPE, bool))


@case("full mask (all foreground)", "Mask covers entire image (every pixel is foreground)",
      kind="full_image_mask")
def _full_mask(root):
    return write_mask(victim_mask(root), np.ones(SHAPE, bool))


@case("missing mask (listed, no file)", "not found", kind="missing_mask")
def _missing_mask(root):
    path = victim_mask(root)
    path.unlink()
    return path


@case("the same mask listed twice", "is listed more than once; kept once", kind="duplicate_mask")
def _mask_listed_twice(root):
    name = victim_mask(root).name
    edit_csv(root / SEG_CSV, lambda f: pd.concat([f, f[f["seg_filename"] == name]]))
    return victim_mask(root)


@case("mask as large as a 20,000 x 20,000 image (header-only bomb)", "image is 20000 x 20000 pixels, "
      "above the limit", kind="image_too_large")
def _mask_bomb(root):
    path = victim_mask(root)
    path.write_bytes(png_header_only(20_000, 20_000))
    assert path.stat().st_size < 200
    return path


@case("mask path escaping the dataset (../../etc/passwd)", "is a path, not a file name",
      kind="bad_metadata")
def _mask_path_traversal(root):
    name = victim_mask(root).name
    edit_csv(root / SEG_CSV, lambda f: f.replace({"seg_filename": {name: "../../../../etc/passwd"}}))
    return root / SEG_CSV


# --- images --------------------------------------------------------------------------------------

@case("corrupt image (valid JPEG start, garbage inside)", "not a readable image", kind="unreadable_image")
def _corrupt_image(root):
    path = victim_image(root)
    data = path.read_bytes()
    path.write_bytes(data[:20] + b"\x13" * 400 + data[-2:])
    return path


@case("truncated image", "JPEG file is truncated (no end-of-image marker)", kind="truncated_file")
def _truncated_image(root):
    path = victim_image(root)
    path.write_bytes(path.read_bytes()[:-300])
    return path


@case("zero-byte image", "file is empty (0 bytes)", kind="empty_file")
def _zero_byte_image(root):
    path = victim_image(root)
    path.write_bytes(b"")
    return path


@case("non-image file named .png (image)", "not a readable image (not a known image format)",
      kind="unreadable_image")
def _text_image(root):
    victim_image(root).unlink()
    path = root / "ISIC_images" / f"{VICTIM}.png"
    path.write_text("<html>404 not found</html>\n" * 10)
    return path


@case("missing image", "no image file for ISIC_0000002", kind="missing_image")
def _missing_image(root):
    victim_image(root).unlink()
    return root / "ISIC_images"


@case("two images whose ids differ only in case", "several image files share the id",
      "isic_0000002.JPG", kind="duplicate_image")
def _ids_differ_in_case(root):
    write_image(root / "ISIC_images" / "isic_0000002.JPG", SHAPE, seed=9)
    return root / "ISIC_images" / "ISIC_0000002.JPG"


@case("two images whose ids differ only in extension", "several image files share the id",
      "ISIC_0000002.png", kind="duplicate_image")
def _ids_differ_in_extension(root):
    write_image(root / "ISIC_images" / f"{VICTIM}.png", SHAPE, seed=9)
    return victim_image(root)


@case("a 20,000 x 20,000 image (decompression-bomb limit)", "image is 20000 x 20000 pixels, above the "
      "limit", "IAA_DESKTOP_MAX_IMAGE_PIXELS", kind="image_too_large")
def _image_bomb(root):
    victim_image(root).unlink()
    path = root / "ISIC_images" / f"{VICTIM}.png"
    path.write_bytes(png_header_only(20_000, 20_000))
    return path


# --- tables --------------------------------------------------------------------------------------

@case("segmentation CSV missing a required column", "segmentation metadata lacks column(s) seg_filename",
      load_fails=True)
def _seg_csv_missing_column(root):
    return edit_csv(root / SEG_CSV, lambda f: f.drop(columns="seg_filename"))


@case("image CSV missing its id column", "image metadata lacks column(s) isic_id", "labels and sizes "
      "ignored", kind="bad_metadata")
def _img_csv_missing_column(root):
    return edit_csv(root / IMG_CSV, lambda f: f.rename(columns={"isic_id": "picture"}))


@case("extra columns in both CSVs", accepted=True)
def _extra_columns(root):
    edit_csv(root / SEG_CSV, lambda f: f.assign(comment="extra", **{"Unnamed: 9": ""}))
    return edit_csv(root / IMG_CSV, lambda f: f.assign(scanner="XYZ"))


@case("semicolon- and tab-delimited CSVs", accepted=True)
def _other_delimiters(root):
    edit_csv(root / SEG_CSV, lambda f: f, sep=";")
    return edit_csv(root / IMG_CSV, lambda f: f, sep="\t")


@case("CSV with an unknown delimiter (#)", "lacks column(s) ISIC_id, seg_filename, annotator",
      load_fails=True)
def _unknown_delimiter(root):
    return edit_csv(root / SEG_CSV, lambda f: f, sep="#")


@case("CSVs with a UTF-8 BOM", accepted=True)
def _bom(root):
    edit_csv(root / SEG_CSV, lambda f: f, encoding="utf-8-sig")
    return edit_csv(root / IMG_CSV, lambda f: f, encoding="utf-8-sig")


@case("CSV row with NaN mask file name", "a row lacks its image id or mask file name; skipped",
      kind="bad_metadata")
def _nan_in_seg_csv(root):
    name = victim_mask(root).name
    return edit_csv(root / SEG_CSV, lambda f: f.replace({"seg_filename": {name: "NaN"}}))


@case("NaN benign/malignant label and sizes", accepted=True)
def _nan_labels(root):
    return edit_csv(root / IMG_CSV, lambda f: f.assign(
        benign_malignant=np.where(f["isic_id"] == VICTIM, "NaN", f["benign_malignant"]),
        pixels_x=np.where(f["isic_id"] == VICTIM, "", f["pixels_x"])))


@case("unknown benign/malignant label", "has an unknown benign/malignant label (taken as unknown)",
      kind="unknown_label")
def _unknown_label(root):
    return edit_csv(root / IMG_CSV, lambda f: f.assign(
        benign_malignant=np.where(f["isic_id"] == VICTIM, "probably fine?", f["benign_malignant"])))


# --- the file system -----------------------------------------------------------------------------

@case("symlink loop inside the dataset", accepted=True)
def _symlink_loop(root):
    (root / "segs" / "loop").symlink_to(root, target_is_directory=True)
    (root / "ISIC_images" / "self").symlink_to("self")
    return root / "segs" / "loop"


@case("read-only dataset directory", accepted=True)
def _read_only(root):
    for folder, _dirs, files in os.walk(root):
        for name in files:
            os.chmod(Path(folder) / name, 0o444)
        os.chmod(folder, 0o555)
    return root


@case("truncated HDF5 agreement cache", "is unusable", "rebuilding it")
def _truncated_cache(root):
    cache = _fill_cache(root)
    cache.write_bytes(cache.read_bytes()[:2000])
    return cache


@case("agreement cache of an older format version", "was made by another version; rebuilding it")
def _older_cache(root):
    cache = _fill_cache(root)
    with h5py.File(cache, "a") as h5:
        h5.attrs["format_version"] = 0
    return cache


def _fill_cache(root: Path) -> Path:
    cache = _cache_path(root)
    run_to_end(iter_dataset_agreement(load_dataset(root), workers=1, cache=AgreementCache(cache)))
    assert len(AgreementCache(cache)) == 3
    return cache


def _cache_path(root: Path) -> Path:
    return root.parent / "cache" / "agreement.h5"


# --- running a case ------------------------------------------------------------------------------

def tree_state(root: Path) -> dict[str, object]:
    """Every entry under ``root``: file bytes, symlink targets, folders (nothing followed)."""
    state: dict[str, object] = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder) / name
            key = str(path.relative_to(root))
            if path.is_symlink():
                state[key] = ("link", os.readlink(path))
            elif path.is_dir():
                state[key] = ("dir",)
            else:
                state[key] = ("file", path.read_bytes())
    return state


@dataclass
class Outcome:
    messages: list[tuple[str, str]]  # (kind, message); kind "" for raised errors and log lines
    pairs_per_image: dict[str, int]
    overlays: dict
    from_cache: int = 0


def exercise(root: Path, work: Path, caplog) -> Outcome:
    """What a user runs on a dataset: load, QA, agreement, overlays, training-set export."""
    try:
        dataset = load_dataset(root)
    except IAAError as exc:
        return Outcome([("", str(exc))], {}, {})
    messages = [(p.kind, p.message) for p in dataset.problems]
    qa = run_to_end(iter_qa(dataset))
    messages += list(zip(qa["kind"], qa["message"], strict=True))
    cache = AgreementCache(_cache_path(root))
    agreement = run_to_end(iter_dataset_agreement(dataset, workers=1, cache=cache))
    messages += [(p.kind, p.message) for p in agreement.problems]
    overlays = {lesion.image_id: run_to_end(iter_lesion_overlay(lesion)) for lesion in dataset}
    messages += [(p.kind, p.message) for o in overlays.values() for p in o.problems]
    out = work / "export"
    out.mkdir()
    info = run_to_end(iter_export_training_set(dataset, out / "set.h5", size=16, workers=1, cache=None))
    messages += [(p.kind, p.message) for p in info.skipped]
    messages += [("", record.getMessage()) for record in caplog.records]
    pairs = agreement.pairwise.groupby("img_id").size().to_dict()
    return Outcome(messages, {k.rsplit(".", 1)[0]: v for k, v in pairs.items()}, overlays,
                   agreement.from_cache)


def _restore_permissions(root: Path) -> None:
    for folder, _dirs, files in os.walk(root):
        os.chmod(folder, 0o755)
        for name in files:
            with contextlib.suppress(OSError):
                os.chmod(Path(folder) / name, stat.S_IRUSR | stat.S_IWUSR)


def run_case(bad: Case, tmp_path: Path, caplog) -> tuple[Path, Outcome]:
    root = make_imapp(tmp_path / "dataset ü")
    target = bad.setup(root)
    before = tree_state(root)
    try:
        with caplog.at_level(logging.INFO, logger="iaa_desktop"):
            outcome = exercise(root, tmp_path, caplog)
        assert tree_state(root) == before, "the dataset directory changed"
    finally:
        _restore_permissions(root)
    return target, outcome


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("IAA_DESKTOP_CACHE_DIR", str(tmp_path / "user-cache"))


def test_the_corpus_has_at_least_30_distinct_cases():
    assert len(CASES) >= 30
    assert len({c.name for c in CASES}) == len(CASES)


@pytest.mark.parametrize("bad", CASES, ids=[c.name for c in CASES])
def test_bad_input_gives_a_clear_message_and_the_rest_stays_usable(bad, tmp_path, caplog):
    target, outcome = run_case(bad, tmp_path, caplog)
    if bad.accepted:
        assert not [m for _k, m in outcome.messages if target.name in m and target != target.anchor], \
            outcome.messages
    else:
        matching = [(kind, m) for kind, m in outcome.messages
                    if target.name in m and all(e in m for e in bad.expect)]
        assert matching, f"no message names {target.name} with {bad.expect}: {outcome.messages}"
        if bad.kind is not None:
            assert bad.kind in {kind for kind, _m in matching}
    if bad.load_fails:
        return
    # The rest of the dataset still works: the witness's pairs and outlines.
    assert outcome.pairs_per_image[WITNESS] == 6
    witness = outcome.overlays[WITNESS]
    assert witness.image is not None and witness.problems == ()
    assert [bool(layer.contours) for layer in witness.layers] == [True, True]
    if bad.victim_pairs:
        assert outcome.pairs_per_image.get(VICTIM, 0) >= 6  # at least 3 readable human masks + ST, MV


def test_accepted_mask_flavours_give_the_same_agreement(tmp_path, caplog):
    reference = None
    for flavour in [c for c in CASES if c.name.startswith(("16-bit", "RGBA", "palette"))]:
        work = tmp_path / flavour.name.split()[0]
        work.mkdir()
        _target, outcome = run_case(flavour, work, caplog)
        assert outcome.pairs_per_image[VICTIM] == 15
        overlay = outcome.overlays[VICTIM]
        outline = [np.concatenate(layer.contours).tolist() for layer in overlay.layers]
        reference = reference or outline
        assert outline == reference


def test_a_rebuilt_cache_is_not_trusted(tmp_path, caplog):
    bad = next(c for c in CASES if c.name == "truncated HDF5 agreement cache")
    _target, outcome = run_case(bad, tmp_path, caplog)
    assert outcome.from_cache == 0


def test_a_mask_changed_in_place_with_size_and_mtime_restored_is_recomputed(tmp_path):
    """Caches are keyed by content: the same size and mtime do not make a changed mask look unchanged."""
    root = make_imapp(tmp_path / "data")
    cache = AgreementCache(tmp_path / "cache.h5")
    first = run_to_end(iter_dataset_agreement(load_dataset(root), workers=1, cache=cache))
    path = victim_mask(root)
    info = path.stat()
    data = bytearray(path.read_bytes())
    moved = write_mask(tmp_path / "other.png", disk(SHAPE, (20, 20), 7)).read_bytes()
    assert len(moved) != len(data) or moved != bytes(data)
    # Same length: flip the mask by rewriting it with an equally long, different PNG.
    candidates = [disk(SHAPE, (24, 30 + dx), r) for dx in range(-6, 7) for r in range(6, 16)]
    for mask in candidates:
        ok, encoded = cv2.imencode(".png", mask.astype(np.uint8) * 255)
        if ok and len(encoded) == len(data) and encoded.tobytes() != bytes(data):
            path.write_bytes(encoded.tobytes())
            break
    else:
        pytest.fail("no equally long PNG found")
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns))
    assert (path.stat().st_size, path.stat().st_mtime_ns) == (info.st_size, info.st_mtime_ns)
    again = run_to_end(iter_dataset_agreement(load_dataset(root), workers=1, cache=AgreementCache(
        tmp_path / "cache.h5")))
    assert (again.computed, again.from_cache) == (1, 2)
    changed = again.pairwise[again.pairwise["img_id"] == f"{VICTIM}.JPG"]["dice_score"].to_numpy()
    before = first.pairwise[first.pairwise["img_id"] == f"{VICTIM}.JPG"]["dice_score"].to_numpy()
    assert not np.array_equal(changed, before)


def corpus_table(tmp_root: Path) -> str:
    """The corpus as a markdown table: case, problem kind, the message a user sees."""

    class _Records:
        records: list = []

        @contextlib.contextmanager
        def at_level(self, *_args, **_kwargs):
            handler = logging.Handler()
            handler.emit = self.records.append
            logger = logging.getLogger("iaa_desktop")
            logger.addHandler(handler)
            logger.setLevel(logging.INFO)
            try:
                yield
            finally:
                logger.removeHandler(handler)

    lines = ["| # | case | kind | message a user sees |", "|---|---|---|---|"]
    for number, bad in enumerate(CASES, 1):
        work = tmp_root / f"case{number}"
        work.mkdir()
        records = _Records()
        records.records = []
        target, outcome = run_case(bad, work, records)
        if bad.accepted:
            shown = "(read normally: no message)"
            kind = "-"
        else:
            hits = [(k, m) for k, m in outcome.messages
                    if target.name in m and all(e in m for e in bad.expect)]
            hits.sort(key=lambda hit: hit[0] != bad.kind)  # the expected kind first
            kind, shown = hits[0] if hits else ("?", "?")
            shown = shown.replace(str(work), "…").replace("\n", " ").replace("|", "\\|")
            kind = kind or ("error" if bad.load_fails else "log")
        lines.append(f"| {number} | {bad.name} | {kind} | {shown} |")
    return "\n".join(lines)


if __name__ == "__main__":
    import tempfile

    os.environ.setdefault("IAA_DESKTOP_CACHE_DIR", tempfile.mkdtemp())
    with tempfile.TemporaryDirectory() as folder:
        print(corpus_table(Path(folder)))
