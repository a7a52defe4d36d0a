"""Trainer parts on their own: metrics, losses, data selection and augmentation, models, checkpoints."""

import pickle
from pathlib import Path, PurePosixPath

import h5py
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from scipy import stats

from trainer import checkpoints as ckpt
from trainer import metrics, models
from trainer.data import H5ImageDataset, TrainingTable, normalize, select_indices, train_augmentation
from trainer.losses import FocalLoss, TaskLoss, class_weights, masked_regression_loss
from trainer.train import resolve_device

# --- metrics ---------------------------------------------------------------------------------------


def test_regression_metrics_match_scipy_and_skip_unknown_targets():
    rng = np.random.default_rng(0)
    target = rng.uniform(0.5, 1.0, 40)
    pred = target + rng.normal(0, 0.05, 40)
    labels = (np.arange(40) % 3 == 0).astype(int)
    target_with_nan = np.append(target, np.nan)
    out = metrics.regression_metrics(np.append(pred, 0.0), target_with_nan, np.append(labels, 1))
    assert out["mae"] == pytest.approx(np.mean(np.abs(pred - target)))
    assert out["mse"] == pytest.approx(np.mean((pred - target) ** 2))
    assert out["pearson"] == pytest.approx(stats.pearsonr(pred, target).statistic)
    assert out["spearman"] == pytest.approx(stats.spearmanr(pred, target).statistic)
    pred_all = np.append(pred, 0.0)
    mal, ben = pred_all[np.append(labels, 1) == 1], pred_all[np.append(labels, 1) == 0]
    assert out["ks_p"] == pytest.approx(stats.ks_2samp(mal, ben).pvalue)
    assert out["mwu_p"] == pytest.approx(stats.mannwhitneyu(mal, ben).pvalue)


def test_regression_metrics_are_nan_where_undefined():
    out = metrics.regression_metrics(np.array([0.5]), np.array([0.7]))
    assert out["mae"] == pytest.approx(0.2)
    assert all(np.isnan(out[k]) for k in ("pearson", "spearman", "ks_stat", "ks_p", "mwu_p"))
    assert np.isnan(metrics.regression_metrics(np.zeros(3), np.full(3, np.nan))["mae"])


def test_auroc_equals_the_pair_count_with_ties_halved():
    rng = np.random.default_rng(1)
    scores = rng.integers(0, 5, 60).astype(float)
    labels = rng.integers(0, 2, 60)
    pos, neg = scores[labels == 1], scores[labels == 0]
    expected = np.mean((pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :]))
    assert metrics.auroc(scores, labels) == pytest.approx(expected)
    assert np.isnan(metrics.auroc(scores, np.ones(60)))


def test_classification_metrics_by_hand():
    prob = np.array([0.9, 0.2, 0.6, 0.4, 0.1, 0.8, 0.3])
    labels = np.array([1, 0, 0, 1, 0, 1, -1])  # the last is unknown and skipped
    out = metrics.classification_metrics(prob, labels)
    # predictions 1 0 1 0 0 1: benign recall 2/3, malignant recall 2/3
    assert out["accuracy"] == pytest.approx(4 / 6)
    assert out["balanced_accuracy"] == pytest.approx(2 / 3)
    f1_benign = 2 * 2 / (3 + 3)
    f1_malignant = 2 * 2 / (3 + 3)
    assert out["f1_macro"] == pytest.approx((f1_benign + f1_malignant) / 2)
    assert out["auroc"] == pytest.approx(8 / 9)
    assert np.isnan(metrics.classification_metrics(prob, np.full(7, -1))["accuracy"])


def test_best_checkpoint_selection():
    assert metrics.selection_metric("regression") == ("mae", False)
    assert metrics.selection_metric("multitask") == ("balanced_accuracy", True)
    assert metrics.is_better(0.5, None, True) and metrics.is_better(float("nan"), None, True)
    assert metrics.is_better(0.1, 0.2, False) and not metrics.is_better(0.3, 0.2, False)
    assert metrics.is_better(0.3, float("nan"), True) and not metrics.is_better(float("nan"), 0.2, True)


# --- losses ----------------------------------------------------------------------------------------


def test_masked_regression_loss_ignores_unknown_iaa():
    pred = torch.tensor([0.5, 0.9, 0.1], requires_grad=True)
    target = torch.tensor([0.6, float("nan"), 0.1])
    assert masked_regression_loss(pred, target, "l1").item() == pytest.approx(0.05)
    assert masked_regression_loss(pred, target, "mse").item() == pytest.approx(0.005)
    none = masked_regression_loss(pred, torch.full((3,), float("nan")))
    none.backward()
    assert none.item() == 0.0 and pred.grad is not None


def test_focal_loss_weights_and_masking():
    logits = torch.tensor([[2.0, -1.0], [0.5, 0.2], [-1.0, 1.0], [0.0, 3.0]])
    labels = torch.tensor([0, 1, 1, -1])
    weight = torch.tensor([0.7, 2.0])
    log_p = F.log_softmax(logits[:3], 1)[torch.arange(3), labels[:3]]
    expected = (-weight[labels[:3]] * (1 - log_p.exp()) ** 2 * log_p).mean()
    assert FocalLoss(weight, 2.0)(logits, labels).item() == pytest.approx(expected.item())
    ce = F.cross_entropy(logits[:3], labels[:3], weight=weight)
    assert FocalLoss(weight, 0.0)(logits, labels).item() == pytest.approx(ce.item())
    assert FocalLoss(weight)(logits, torch.full((4,), -1)).item() == 0.0


def test_class_weights_from_the_training_distribution():
    assert class_weights(np.array([0, 0, 0, 1, -1])).tolist() == pytest.approx([4 / 6, 4 / 2])
    assert class_weights(np.array([0, 0])).tolist() == pytest.approx([1.0, 1.0])


def test_multitask_loss_blends_with_alpha():
    outputs = {"iaa": torch.tensor([0.5, 0.7]), "logits": torch.tensor([[1.0, 0.0], [0.0, 1.0]])}
    iaa, labels = torch.tensor([0.6, 0.9]), torch.tensor([0, 1])
    reg = TaskLoss("regression")(outputs, iaa, labels)
    cls = TaskLoss("classification")(outputs, iaa, labels)
    both = TaskLoss("multitask", alpha=0.2)(outputs, iaa, labels)
    assert both.item() == pytest.approx(0.2 * cls.item() + 0.8 * reg.item())


# --- data ------------------------------------------------------------------------------------------


def _table(tmp_path: Path, n: int = 6) -> TrainingTable:
    path = tmp_path / "tiny.h5"
    with h5py.File(path, "w") as h5:
        h5.create_dataset("images", data=np.arange(n * 8 * 8 * 3, dtype=np.uint8).reshape(n, 8, 8, 3),
                          chunks=(1, 8, 8, 3))
    return TrainingTable(path=path, image_id=np.array([f"i{k}" for k in range(n)], dtype=object),
                         split=np.array(["train", "train", "train", "val", "test", "train"], dtype=object),
                         iaa=np.array([0.8, np.nan, 0.7, 0.9, np.nan, np.nan], dtype=np.float32),
                         malignant=np.array([1, 0, -1, 0, 1, -1]), input_size=8,
                         mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25), fingerprint="x")


def test_select_indices_drops_rows_without_the_mode_labels(tmp_path):
    table = _table(tmp_path)
    assert select_indices(table, "train", "regression").tolist() == [0, 2]
    assert select_indices(table, "train", "classification").tolist() == [0, 1]
    assert select_indices(table, "train", "multitask").tolist() == [0, 1, 2]
    assert select_indices(table, None, "classification").tolist() == [0, 1, 3, 4]


def test_dataset_reads_one_index_as_uint8_normalised_per_batch_and_pickles_without_its_handle(tmp_path):
    table = _table(tmp_path)
    dataset = H5ImageDataset(table, np.array([3, 0]))
    item = dataset[0]
    raw = np.arange(6 * 8 * 8 * 3, dtype=np.uint8).reshape(6, 8, 8, 3)[3]
    # The loader ships uint8; the batch is normalised on the device with the file's mean/std.
    assert item["image"].dtype == torch.uint8
    assert torch.equal(item["image"], torch.from_numpy(raw).permute(2, 0, 1))
    expected = (torch.from_numpy(raw).permute(2, 0, 1).float() / 255 - 0.5) / 0.25
    batch = normalize(item["image"][None], dataset.mean, dataset.std)
    assert torch.allclose(batch[0], expected)
    assert item["row"].item() == 3 and item["malignant"].item() == 0
    assert item["iaa"].item() == pytest.approx(0.9)
    clone = pickle.loads(pickle.dumps(dataset))  # what a DataLoader worker receives
    assert clone._h5 is None and torch.equal(clone[1]["image"], dataset[1]["image"])
    dataset.close()
    clone.close()


def test_augmentation_keeps_uint8_shape_and_pixels_count():
    torch.manual_seed(0)
    image = torch.randint(0, 256, (3, 16, 16), dtype=torch.uint8)
    augment = train_augmentation()
    outs = [augment(image) for _ in range(20)]
    assert all(o.dtype == torch.uint8 and o.shape == image.shape for o in outs)
    assert any(not torch.equal(o, image) for o in outs)


# --- models and devices ----------------------------------------------------------------------------


def test_model_heads_per_mode():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 32, 32)
    for mode, keys in (("regression", {"iaa"}), ("classification", {"logits"}),
                       ("multitask", {"iaa", "logits"})):
        model = models.build_model("resnet10t", mode).eval()
        out = model(x)
        assert set(out) == keys
        assert out.get("iaa", torch.zeros(2)).shape == (2,)
        assert out.get("logits", torch.zeros(2, 2)).shape == (2, 2)
    head = models.make_head(16, 1)
    assert [type(m).__name__ for m in head] == ["Linear", "BatchNorm1d", "ReLU", "Dropout", "Linear"]
    assert head[3].p == 0.5


@pytest.mark.parametrize("reachable", [True, False], ids=["hub-fails", "hub-unreachable"])
@pytest.mark.parametrize("choice", ["imagenet", "timm"])
def test_pretrained_imagenet_offline_gives_a_clear_error(monkeypatch, reachable, choice):
    from trainer import pretrained

    def offline(name, pretrained=False, **kwargs):
        if pretrained:
            raise OSError("could not reach huggingface.co")
        raise AssertionError("no model should be built without its weights")

    monkeypatch.setattr(models.timm, "create_model", offline)
    monkeypatch.setattr(pretrained, "hub_reachable", lambda: reachable)
    monkeypatch.setattr(pretrained, "_in_hub_cache", lambda name: False)
    # resnet10t has no packaged weights: the message says which backbones do.
    with pytest.raises(models.ModelError,
                       match="need internet access.*offline ImageNet weights exist for tf_"):
        models.build_model("resnet10t", "regression", pretrained=choice)


def test_pretrained_from_a_local_weights_file(tmp_path):
    torch.manual_seed(1)
    source = models.build_model("resnet10t", "regression").backbone
    state = {f"backbone.{k}": v.contiguous() for k, v in source.state_dict().items()}
    save_file(state, tmp_path / "w.safetensors")
    torch.save({"state_dict": source.state_dict()}, tmp_path / "w.pt")
    for name in ("w.safetensors", "w.pt"):
        torch.manual_seed(2)
        model = models.build_model("resnet10t", "classification", pretrained=str(tmp_path / name))
        assert torch.equal(model.backbone.conv1[0].weight, source.conv1[0].weight)
    with pytest.raises(models.ModelError, match="does not exist"):
        models.build_model("resnet10t", "regression", pretrained=str(tmp_path / "missing.pt"))
    save_file({"x": torch.zeros(3)}, tmp_path / "other.safetensors")
    with pytest.raises(models.ModelError, match="no tensor of these weights fits"):
        models.build_model("resnet10t", "regression", pretrained=str(tmp_path / "other.safetensors"))


def test_device_resolution():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type in ("cpu", "cuda", "mps")
    if not torch.cuda.is_available():
        with pytest.raises(Exception, match="CUDA is not available"):
            resolve_device("cuda")


# --- checkpoints -----------------------------------------------------------------------------------


def test_checkpoint_round_trip_and_refusals(tmp_path):
    torch.manual_seed(0)
    model = models.build_model("resnet10t", "regression")
    meta = {"backbone": "resnet10t", "mode": "regression", "metrics": {"mae": float("nan")}}
    path = ckpt.save_weights(model, tmp_path, "best", meta)
    assert ckpt.read_metadata(path)["metrics"]["mae"] is None  # strict JSON: NaN -> null
    assert not list((tmp_path / "checkpoints").glob("*.tmp"))
    other = models.build_model("resnet10t", "regression")
    ckpt.load_weights(other, ckpt.resolve_checkpoint(tmp_path), backbone="resnet10t", mode="regression")
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), other.state_dict().values(),
                                                 strict=True))
    with pytest.raises(ckpt.CheckpointError, match="trained as backbone=resnet10t, mode=regression"):
        ckpt.load_weights(models.build_model("resnet10t", "multitask"), path, backbone="resnet10t",
                          mode="multitask")
    with pytest.raises(ckpt.CheckpointError, match="backbone=resnet18"):
        ckpt.load_weights(model, path, backbone="resnet18", mode="regression")


def test_resume_state_is_tensors_only_and_pickles_are_refused(tmp_path):
    model = torch.nn.Linear(2, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True)
    model(torch.ones(1, 2)).sum().backward()
    optimizer.step()
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 10)
    np.random.seed(5)
    ckpt.save_state(tmp_path, epoch=3, optimizer=optimizer, scheduler=scheduler, best={"value": 0.1},
                    extra={})
    expected = np.random.rand()
    state = ckpt.load_state(tmp_path)
    assert state["epoch"] == 3 and state["best"] == {"value": 0.1}
    ckpt.set_rng_state(state["rng"])
    assert np.random.rand() == expected

    torch.save({"epoch": 1, "evil": PurePosixPath("not/a/tensor")},
               tmp_path / "checkpoints" / ckpt.STATE_FILE)
    with pytest.raises(ckpt.CheckpointError, match="unreadable resume state"):
        ckpt.load_state(tmp_path)


# --- Grad-CAM --------------------------------------------------------------------------------------


def test_grad_cam_maps_per_head():
    from trainer.predict import grad_cam

    torch.manual_seed(0)
    model = models.build_model("resnet10t", "multitask").eval()
    images = torch.randn(2, 3, 64, 64)
    for head in ("regression", "classification"):
        cam = grad_cam(model, images, head)
        assert cam.shape == (2, 64, 64)
        assert float(cam.min()) >= 0.0 and float(cam.max()) <= 1.0 + 1e-6
    with pytest.raises(models.ModelError, match="no classification head"):
        grad_cam(models.build_model("resnet10t", "regression"), images, "classification")
