"""DSOL network shapes, sizes and output invariants (SPEC §2)."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
torch = pytest.importorskip("torch")

from dsol.export import random_model  # noqa: E402
from dsol.model import DSOL, MUSIC_CLASSES, AudioNet, ResNetS5  # noqa: E402


def stage_shapes(net, x):
    """Output shape after conv1, maxpool and each layer of a ResNetS5 trunk."""
    shapes = []
    x = torch.relu(net.bn1(net.conv1(x)))
    shapes.append(tuple(x.shape[1:]))
    x = net.maxpool(x)
    shapes.append(tuple(x.shape[1:]))
    for i in range(1, 5):
        x = getattr(net, f"layer{i}")(x)
        shapes.append(tuple(x.shape[1:]))
    return shapes


@pytest.mark.parametrize("width", [64, 4])
def test_stage_shapes(width):
    w = width
    with torch.no_grad():
        vis = stage_shapes(ResNetS5(3, w).eval(), torch.zeros(1, 3, 224, 224))
        aud = stage_shapes(AudioNet(w).eval(), torch.zeros(1, 1, 201, 64))
    assert vis == [(w, 112, 112), (w, 56, 56), (w, 56, 56), (2 * w, 28, 28), (4 * w, 14, 14), (8 * w, 14, 14)]
    assert aud == [(w, 101, 32), (w, 51, 16), (w, 51, 16), (2 * w, 26, 8), (4 * w, 13, 4), (8 * w, 13, 4)]


@pytest.mark.parametrize("width,k", [(64, 11), (8, 5)])
def test_forward_shapes_and_invariants(width, k):
    model = random_model(width, k, seed=3)
    d = 8 * width
    img = torch.randn(2, 3, 224, 224)
    aud = torch.rand(2, 1, 201, 64) * 120 - 100
    with torch.no_grad():
        out = model(img, aud)
    want = {"fv": (2, d, 14, 14), "ga": (2, d), "l": (2, 1, 14, 14), "match": (2,),
            "s": (2, k, 14, 14), "class_maps": (2, k, 14, 14), "p_a": (2, k), "p_v": (2, k),
            "audio_logits": (2, k), "vision_logits": (2, k)}
    assert {n: tuple(t.shape) for n, t in out.items()} == want
    assert torch.allclose(out["class_maps"].sum(1), torch.ones(2, 14, 14), atol=1e-5)
    assert torch.allclose(out["p_a"].sum(1), torch.ones(2), atol=1e-6)
    assert torch.allclose(out["p_v"].sum(1), torch.ones(2), atol=1e-6)
    assert torch.equal(out["match"], out["l"].amax(dim=(1, 2, 3)))
    assert bool(((out["l"] > 0) & (out["l"] < 1)).all())
    # g(a) is the global max of the audio trunk's 13x4 map.
    with torch.no_grad():
        trunk = ResNetS5.forward(model.audio, aud)
    assert trunk.shape[2:] == (13, 4)
    assert torch.equal(out["ga"], trunk.amax(dim=(2, 3)))


def test_head_matches_spec_formulas():
    model = random_model(4, 3, seed=7).double()
    img = torch.randn(1, 3, 224, 224, dtype=torch.float64)
    aud = torch.rand(1, 1, 201, 64, dtype=torch.float64) * 120 - 100
    with torch.no_grad():
        out = model(img, aud)
        fv, ga = out["fv"][0], out["ga"][0]
        loc = model.loc
        v = fv.reshape(fv.shape[0], -1).T  # 196 x D
        v = loc.v_fc2.weight @ torch.relu(loc.v_fc1.weight @ v.T + loc.v_fc1.bias[:, None]) + loc.v_fc2.bias[:, None]
        a = loc.a_fc2.weight @ torch.relu(loc.a_fc1.weight @ ga + loc.a_fc1.bias) + loc.a_fc2.bias
        cos = (v / v.norm(dim=0)).T @ (a / a.norm())
        l = torch.sigmoid(loc.scale * cos).reshape(14, 14)
        w_o, b_o = model.dsol.affine
        m = w_o * (model.dsol.dictionary @ fv.reshape(fv.shape[0], -1)) + b_o
        s = (m * l.reshape(1, -1)).reshape(-1, 14, 14)
        vis_logits = model.cls.vision.weight @ fv.mean(dim=(1, 2)) + model.cls.vision.bias
    assert torch.allclose(out["l"][0, 0], l, rtol=1e-12, atol=1e-12)
    assert torch.allclose(out["s"][0], s, rtol=1e-12, atol=1e-12)
    assert torch.allclose(out["class_maps"][0], torch.softmax(3 * s, dim=0), rtol=1e-12, atol=1e-12)
    assert torch.allclose(out["p_v"][0], torch.softmax(s.mean(dim=(1, 2)), dim=0), rtol=1e-12, atol=1e-12)
    assert torch.allclose(out["vision_logits"][0], vis_logits, rtol=1e-12, atol=1e-12)


def test_parameter_counts_width64():
    model = DSOL(64, 11)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    # torchvision ResNet-18 without fc (11,689,512 - 513,000); audio conv1 has 1 input channel.
    assert count(model.vision) == 11_176_512
    assert count(model.audio) == 11_170_240
    assert count(model.loc) == 2 * (512 * 128 + 128 + 128 * 128 + 128) + 1
    assert count(model.cls) == 2 * (512 * 11 + 11)
    assert count(model.dsol) == 11 * 512 + 2
    assert model.classes == MUSIC_CLASSES


def test_multiply_adds_width64():
    """SPEC §2: about 3.05 G (vision) and 0.79 G (audio) multiply-adds."""
    totals = {}

    def hook(name):
        def f(mod, inp, out):
            totals[name] = totals.get(name, 0) + out.numel() * mod.in_channels * mod.kernel_size[0] * mod.kernel_size[1]
        return f

    model = DSOL(64, 11).eval()
    for name, net in (("vision", model.vision), ("audio", model.audio)):
        for m in net.modules():
            if isinstance(m, torch.nn.Conv2d):
                m.register_forward_hook(hook(name))
    with torch.no_grad():
        model.vision(torch.zeros(1, 3, 224, 224))
        model.audio(torch.zeros(1, 1, 201, 64))
    assert abs(totals["vision"] / 1e9 - 3.05) < 0.02
    assert abs(totals["audio"] / 1e9 - 0.79) < 0.02
