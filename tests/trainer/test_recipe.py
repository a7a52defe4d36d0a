"""The fine-tuning recipe's parts (trainer.recipe) and the frozen-feature learners (trainer.features)."""

import math

import numpy as np
import pytest
import torch

from trainer import recipe
from trainer.features import extract_features, fit_logistic, fit_ridge, head_outputs, train_heads
from trainer.losses import TaskLoss
from trainer.models import build_model

BACKBONE = "resnet10t"


@pytest.fixture
def model():
    torch.manual_seed(0)
    return build_model(BACKBONE, "multitask", "none")


def test_param_groups_split_backbone_and_heads_and_spare_biases_from_decay(model):
    groups = recipe.param_groups(model, lr=1e-3, backbone_lr_mult=0.1, weight_decay=0.05)
    by_part = {(g["name"], g["weight_decay"] > 0): g for g in groups}
    assert by_part[("backbone", True)]["lr"] == pytest.approx(1e-4)
    assert by_part[("heads", True)]["lr"] == pytest.approx(1e-3)
    assert all(p.ndim == 1 for g in groups if g["weight_decay"] == 0 for p in g["params"])
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))


def test_param_groups_leave_out_frozen_parameters(model):
    for p in model.reg_head.parameters():
        p.requires_grad_(False)
    grouped = {id(p) for g in recipe.param_groups(model, 1e-3, 1.0, 0.0) for p in g["params"]}
    assert not grouped & {id(p) for p in model.reg_head.parameters()}


@pytest.mark.parametrize(("kind", "state_key"), [("adamw", "exp_avg"), ("sgd", "momentum_buffer")])
def test_build_optimizer_kinds(model, kind, state_key):
    optimizer = recipe.build_optimizer(model, optimizer=kind, lr=1e-3, backbone_lr_mult=0.5)
    model(torch.rand(2, 3, 32, 32))["iaa"].sum().backward()
    optimizer.step()
    assert state_key in next(iter(optimizer.state.values()))
    with pytest.raises(ValueError, match="optimizer must be one of"):
        recipe.build_optimizer(model, optimizer="lion", lr=1e-3)


def test_lr_factor_cosine_and_step():
    cosine = [recipe.lr_factor(e, schedule="cosine", epochs=4) for e in range(4)]
    quarter = 0.5 * math.cos(math.pi / 4)
    assert cosine == pytest.approx([1.0, 0.5 + quarter, 0.5, 0.5 - quarter])
    steps = [recipe.lr_factor(e, schedule="step", epochs=30, lr_step=2, lr_gamma=0.1) for e in (0, 1, 2, 4)]
    assert steps == pytest.approx([1.0, 1.0, 0.1, 0.01])
    with pytest.raises(ValueError, match="schedule"):
        recipe.lr_factor(0, schedule="linear", epochs=3)


def test_scheduler_scales_each_group_from_its_own_rate(model):
    optimizer = recipe.build_optimizer(model, optimizer="adamw", lr=1e-3, backbone_lr_mult=0.1)
    scheduler = recipe.build_scheduler(optimizer, schedule="cosine", epochs=2)
    optimizer.step()
    scheduler.step()
    rates = {g["name"]: g["lr"] for g in optimizer.param_groups}
    assert rates["heads"] == pytest.approx(5e-4) and rates["backbone"] == pytest.approx(5e-5)


def test_frozen_backbone_gets_no_gradient_and_keeps_its_batchnorm_statistics(model):
    model.frozen_heads = ("reg_head",)  # as a fine-tune run leaves it
    recipe.set_backbone_frozen(model, True)
    model.train()
    before = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    out = model(torch.rand(4, 3, 32, 32))
    (out["iaa"].sum() + out["logits"].sum()).backward()
    assert all(p.grad is None for p in model.backbone.parameters())
    assert all(p.grad is not None for p in model.cls_head.parameters())
    assert all(torch.equal(before[k], v) for k, v in model.backbone.state_dict().items())
    assert set(model.frozen_heads) == {"reg_head", "backbone"}
    recipe.set_backbone_frozen(model, False)
    model.train()
    assert model.frozen_heads == ("reg_head",) and model.backbone.training
    assert all(p.requires_grad for p in model.backbone.parameters())


def test_tta_averages_views_and_probabilities(model):
    model.eval()
    images = torch.rand(3, 3, 32, 32)
    with torch.no_grad():
        out = recipe.tta_forward(model, images, "flip")
        views = [model(v) for v in (images, images.flip(3), images.flip(2))]
        assert torch.allclose(out["iaa"], torch.stack([v["iaa"] for v in views]).mean(0))
        mean_prob = torch.stack([torch.softmax(v["logits"], 1) for v in views]).mean(0)
        assert torch.allclose(torch.softmax(out["logits"], 1), mean_prob, atol=1e-6)
        assert len(recipe.tta_views(images, "flip_rot")) == 8
        assert torch.equal(recipe.tta_forward(model, images, "none")["iaa"], model(images)["iaa"])
    with pytest.raises(ValueError, match="tta"):
        recipe.tta_views(images, "mixup")


def test_iaa_output_starts_at_the_given_value(model):
    recipe.init_iaa_output(model, 0.86)
    model.eval()
    with torch.no_grad():
        iaa = model(torch.rand(8, 3, 32, 32))["iaa"]
    assert float(iaa.mean()) == pytest.approx(0.86, abs=0.1)


def test_iaa_output_start_accounts_for_a_sigmoid_bounded_head():
    # A head other than IAAModel's (which bounds its output in forward and sets its own prior):
    # a Sigmoid module after the last Linear makes the start logit(value).
    class Head(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.reg_head = torch.nn.Sequential(torch.nn.Linear(4, 1), torch.nn.Sigmoid())

    head = Head()
    recipe.init_iaa_output(head, 0.86)
    with torch.no_grad():
        iaa = head.reg_head(torch.rand(8, 4))
    assert float(iaa.mean()) == pytest.approx(0.86, abs=0.05)
def test_ridge_recovers_a_linear_signal_with_the_median_intercept():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 5))
    y = 0.8 + x @ np.array([0.1, -0.05, 0.0, 0.0, 0.02])
    predict = fit_ridge(x, y, l2=1.0)
    assert np.abs(predict(x) - y).max() < 0.01
    constant = fit_ridge(np.zeros((5, 2)), np.array([0.1, 0.9, 0.95, 0.96, 0.97]), l2=1.0)
    assert constant(np.zeros((1, 2)))[0] == pytest.approx(0.95)  # the median, not the mean 0.776


def test_balanced_logistic_separates_a_minority_class():
    rng = np.random.default_rng(1)
    labels = (np.arange(300) < 30).astype(int)  # 10 % positives
    x = rng.normal(size=(300, 4)) + labels[:, None] * 2.0
    prob = fit_logistic(x, labels, l2=1.0)(x)
    recall = [np.mean((prob >= 0.5)[labels == c] == c) for c in (0, 1)]
    assert min(recall) > 0.85


def test_heads_learn_from_features_and_extract_features_averages_flips(model):
    torch.manual_seed(0)
    features = torch.randn(64, model.backbone.num_features)
    iaa = torch.sigmoid(features[:, 0])
    malignant = (features[:, 1] > 0).long()
    loss_fn = TaskLoss("multitask", reg_loss="l1")
    losses = train_heads(model, features, iaa, malignant, loss_fn, epochs=30, lr=3e-3, batch_size=16)
    assert losses[-1] < 0.6 * losses[0]
    out = head_outputs(model, features)
    assert set(out) == {"iaa", "logits"} and out["logits"].shape == (64, 2)

    images = torch.randint(0, 256, (3, 3, 40, 40), dtype=torch.uint8)
    mean, std = torch.full((3,), 0.5), torch.full((3,), 0.5)
    both = extract_features(model.backbone, images, mean, std, size=32, flip=True)
    plain = extract_features(model.backbone, images, mean, std, size=32, flip=False)
    mirrored = extract_features(model.backbone, images.flip(3), mean, std, size=32, flip=False)
    assert both.shape == (3, model.backbone.num_features)
    assert torch.allclose(both, 0.5 * (plain + mirrored), atol=1e-5)


def test_the_fast_modes_bounded_iaa_head_learns_faster_by_the_sigmoids_slope():
    assert recipe.fast_iaa_lr_mult(0.5) == pytest.approx(recipe.FAST_IAA_LR_GAIN / 0.25)
    assert recipe.fast_iaa_lr_mult(0.86) == pytest.approx(recipe.FAST_IAA_LR_GAIN / (0.86 * 0.14))
    assert recipe.fast_iaa_lr_mult(1.0) == recipe.fast_iaa_lr_mult(0.98)  # bounded, never infinite
    assert recipe.fast_iaa_lr_mult(math.nan) == 1.0


def test_train_heads_gives_the_iaa_head_its_own_learning_rate(model, monkeypatch):
    seen = []
    real = torch.optim.AdamW

    def spy(groups, **kwargs):
        optimizer = real(groups, **kwargs)
        seen.append(optimizer)
        return optimizer

    monkeypatch.setattr(torch.optim, "AdamW", spy)
    features = torch.randn(32, model.backbone.num_features)
    train_heads(model, features, torch.rand(32), torch.randint(0, 2, (32,)), TaskLoss("multitask"),
                epochs=1, lr=1e-3, batch_size=16, reg_lr_mult=8.0)
    reg = {id(p) for p in model.reg_head.parameters()}
    lrs = {("reg" if id(g["params"][0]) in reg else "cls"): g["initial_lr"] for g in seen[0].param_groups}
    assert lrs == {"reg": pytest.approx(8e-3), "cls": pytest.approx(1e-3)}
