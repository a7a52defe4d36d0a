"""The public Python API: the README's notebook session runs, and its results are the core's."""

import json
import re
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest

import iaa_desktop as iaa
from iaa_desktop.core.errors import IAAError
from tests.shared_data import REPO_ROOT


def _readme_snippet() -> str:
    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(r"<!-- api-snippet -->\n```python\n(.*?)```", text, re.S)
    assert match, "README.md lost its API snippet (<!-- api-snippet --> + a python block)"
    return match.group(1)


def test_readme_api_session_runs_and_agrees_with_the_core(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(_readme_snippet(), "README.md (API snippet)", "exec"), namespace)

    dataset, agreement, result = namespace["dataset"], namespace["agreement"], namespace["result"]
    assert len(dataset.lesions) > 0
    # The table the API computed is the one the image-level IAA and the analysis use.
    image_level = namespace["tables"]["image_level"]
    assert set(image_level["img_id"]) <= set(agreement.pairwise["img_id"])
    analysed = np.sort(result.images["iaa"].dropna())
    assert np.allclose(analysed, np.sort(image_level["dice_score_mean"].dropna()))
    # The written report holds the same statistics.
    stats = json.loads((tmp_path / "demo-report" / "stats.json").read_text())
    assert stats["malignant_vs_benign"]["p_mannwhitney"] == pytest.approx(result.malignancy.p_mannwhitney)
    assert (tmp_path / "demo-report" / "report.html").is_file()
    # The consensus of the lowest-IAA lesion: STAPLE's rates per human mask, masks of the image's size.
    lowest, majority, staple = namespace["lowest"], namespace["majority"], namespace["staple"]
    assert majority.dtype == bool and majority.shape == staple.mask.shape
    assert len(staple.sensitivity) == len(lowest.human_segmentations)
    assert namespace["info"].n_images > 0 and (tmp_path / "demo-train.h5").is_file()


def test_consensus_names_the_lesion_when_masks_are_missing():
    lesion = iaa.demo_dataset().lesions[0]
    one_mask = replace(lesion, segmentations=lesion.human_segmentations[:1])
    with pytest.raises(IAAError, match=lesion.image_id):
        iaa.consensus(one_mask)


def test_importing_the_package_loads_no_numpy_and_lists_the_api():
    code = ("import sys, iaa_desktop as iaa\n"
            "assert 'numpy' not in sys.modules and 'pandas' not in sys.modules, 'eager import'\n"
            "assert {'load_dataset', 'compute_agreement', 'analyse'} <= set(dir(iaa))\n"
            "print(iaa.__version__)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == iaa.__version__
    with pytest.raises(AttributeError, match="no_such_function"):
        iaa.no_such_function  # noqa: B018
