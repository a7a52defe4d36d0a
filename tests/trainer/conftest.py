"""Fixtures shared by the trainer tests."""

import pytest

from iaa_desktop.core.dataset import demo
from iaa_desktop.core.dataset.io import load_dataset
from iaa_desktop.core.progress import run_to_end
from iaa_desktop.core.training.training_set import iter_export_training_set


@pytest.fixture(scope="module")
def training_set(tmp_path_factory):
    """12 demo lesions exported at 32 px: 8 train, 1 val, 3 test (3 malignant in all)."""
    root = tmp_path_factory.mktemp("set")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("IAA_DESKTOP_CACHE_DIR", str(root / "cache"))
        dataset = load_dataset(demo.write_demo(root / "demo", n_lesions=12))
        run_to_end(iter_export_training_set(dataset, root / "set.h5", size=32, cache=None, workers=1))
    return root / "set.h5"


@pytest.fixture(scope="module")
def one_thread():
    """Torch on one thread: the tiny models train faster so on 2 shared cores."""
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
