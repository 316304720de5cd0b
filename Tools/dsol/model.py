"""DSOL network (SPEC §2): ResNet-18-S5 backbones, localisation head, classifiers, class-aware head.

Parameter names map 1:1 onto Models/FORMAT.md once BatchNorm is folded (see export.py); the
only renaming is torchvision's ``downsample.0`` (conv) / ``downsample.1`` (BN) pair, which the
file stores as a single folded ``downsample`` conv.

Two flavours of the same network:
  * ``folded=False`` (training): convolutions without bias, each followed by BatchNorm.
  * ``folded=True`` (a loaded model file): convolutions with bias, no BatchNorm.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

MUSIC_CLASSES = [
    "accordion", "acoustic_guitar", "cello", "clarinet", "erhu", "flute",
    "saxophone", "trumpet", "tuba", "violin", "xylophone",
]

# Per-layer strides of ResNet-18-S5: layer4 keeps stride 1 so vision ends at 14x14.
LAYER_STRIDES = (1, 2, 2, 1)
EMBED_DIM = 128
INIT_SCALE = 5.0
# F.normalize's eps; the Swift engine must use the same: v / max(||v||, eps).
NORM_EPS = 1e-12


def _conv(cin: int, cout: int, k: int, stride: int, folded: bool) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, bias=folded)


def _norm(c: int, folded: bool) -> nn.Module:
    return nn.Identity() if folded else nn.BatchNorm2d(c)


class BasicBlock(nn.Module):
    """torchvision BasicBlock: two 3x3 convs + identity or 1x1-projection shortcut."""

    def __init__(self, cin: int, cout: int, stride: int, folded: bool):
        super().__init__()
        self.conv1 = _conv(cin, cout, 3, stride, folded)
        self.bn1 = _norm(cout, folded)
        self.conv2 = _conv(cout, cout, 3, 1, folded)
        self.bn2 = _norm(cout, folded)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(_conv(cin, cout, 1, stride, folded), _norm(cout, folded))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return F.relu(out + shortcut)


class ResNetS5(nn.Module):
    """ResNet-18-S5 trunk (no pooling, no classifier); output has 8*width channels."""

    def __init__(self, in_channels: int = 3, width: int = 64, folded: bool = False):
        super().__init__()
        self.in_channels = in_channels
        self.width = width
        self.conv1 = nn.Conv2d(in_channels, width, 7, stride=2, padding=3, bias=folded)
        self.bn1 = _norm(width, folded)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        cin = width
        for i, stride in enumerate(LAYER_STRIDES):
            cout = width * 2 ** i
            blocks = [BasicBlock(cin, cout, stride, folded), BasicBlock(cout, cout, 1, folded)]
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
            cin = cout
        self.out_channels = cin

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(F.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


class AudioNet(ResNetS5):
    """Audio trunk: (N,1,201,64) log-mel -> (N,D,13,4) -> global max pool -> g(a) (N,D)."""

    def __init__(self, width: int = 64, folded: bool = False):
        super().__init__(1, width, folded)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.amax(super().forward(x), dim=(2, 3))


class LocHead(nn.Module):
    """Stage-1 localisation head: l = sigmoid(scale * cos(v, a)) per pixel."""

    def __init__(self, feat_dim: int, embed_dim: int = EMBED_DIM):
        super().__init__()
        # Linear on channels == 1x1 conv; Linear keeps FORMAT.md's [E, D] weight shape.
        self.v_fc1 = nn.Linear(feat_dim, embed_dim)
        self.v_fc2 = nn.Linear(embed_dim, embed_dim)
        self.a_fc1 = nn.Linear(feat_dim, embed_dim)
        self.a_fc2 = nn.Linear(embed_dim, embed_dim)
        self.scale = nn.Parameter(torch.full((1,), INIT_SCALE))

    def forward(self, fv: torch.Tensor, ga: torch.Tensor) -> torch.Tensor:
        v = fv.permute(0, 2, 3, 1)  # N,H,W,D
        v = self.v_fc2(F.relu(self.v_fc1(v)))
        a = self.a_fc2(F.relu(self.a_fc1(ga)))
        v = F.normalize(v, dim=-1, eps=NORM_EPS)
        a = F.normalize(a, dim=-1, eps=NORM_EPS)
        cos = torch.einsum("nhwe,ne->nhw", v, a).unsqueeze(1)
        return torch.sigmoid(self.scale * cos)

    def pair_logits(self, fv: torch.Tensor, ga: torch.Tensor) -> torch.Tensor:
        """scale * max over pixels of cos(v, a) for every image i and audio j, (N_img, N_aud)."""
        return self.logits_of_embeddings(self.embed_vision(fv), self.embed_audio(ga))

    def embed_vision(self, fv: torch.Tensor) -> torch.Tensor:
        """The unit-length pixel embeddings v (N, H, W, E) of pair_logits."""
        return F.normalize(self.v_fc2(F.relu(self.v_fc1(fv.permute(0, 2, 3, 1)))), dim=-1, eps=NORM_EPS)

    def embed_audio(self, ga: torch.Tensor) -> torch.Tensor:
        """The unit-length audio embeddings a (N, E) of pair_logits."""
        return F.normalize(self.a_fc2(F.relu(self.a_fc1(ga))), dim=-1, eps=NORM_EPS)

    def logits_of_embeddings(self, v: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """pair_logits from embed_vision's and embed_audio's outputs (e.g. gathered from several processes)."""
        cos = torch.einsum("ihwe,je->ijhw", v, a)
        return self.scale * torch.amax(cos, dim=(2, 3))

    def pair_scores(self, fv: torch.Tensor, ga: torch.Tensor) -> torch.Tensor:
        """Matching score max(l) of every image i with every audio j, (N_img, N_aud): the same
        value forward() gives for the pair, for all pairs of a batch at the cost of one trunk pass."""
        return torch.sigmoid(self.pair_logits(fv, ga))  # sigmoid is monotonic: max commutes


class Classifiers(nn.Module):
    def __init__(self, feat_dim: int, num_classes: int):
        super().__init__()
        self.audio = nn.Linear(feat_dim, num_classes)
        self.vision = nn.Linear(feat_dim, num_classes)


class ClassAware(nn.Module):
    """Stage-2 parameters: the object dictionary d^k and the scalar affine (w_o, b_o)."""

    def __init__(self, feat_dim: int, num_classes: int):
        super().__init__()
        # Filled by K-means after stage 1 and frozen in stage 2, hence no gradient by default.
        self.dictionary = nn.Parameter(torch.zeros(num_classes, feat_dim), requires_grad=False)
        self.affine = nn.Parameter(torch.tensor([1.0, 0.0]))


class DSOL(nn.Module):
    """Full DSOL model; forward(image (N,3,224,224), audio (N,1,201,64)) -> dict of outputs."""

    def __init__(self, width: int = 64, num_classes: int = 11, embed_dim: int = EMBED_DIM,
                 classes: list[str] | None = None, folded: bool = False):
        super().__init__()
        if classes is None:
            classes = MUSIC_CLASSES if num_classes == len(MUSIC_CLASSES) else \
                [f"class{k}" for k in range(num_classes)]
        if len(classes) != num_classes:
            raise ValueError(f"{len(classes)} class names for {num_classes} classes")
        self.width, self.num_classes, self.embed_dim = width, num_classes, embed_dim
        self.classes = list(classes)
        self.folded = folded
        self.vision = ResNetS5(3, width, folded)
        self.audio = AudioNet(width, folded)
        d = self.vision.out_channels
        self.feat_dim = d
        self.loc = LocHead(d, embed_dim)
        self.cls = Classifiers(d, num_classes)
        self.dsol = ClassAware(d, num_classes)

    def object_response(self, fv: torch.Tensor) -> torch.Tensor:
        """m (N, K, H, W) = w_o * (d_k . f(v)) + b_o: where each class is visible (SPEC §2)."""
        w_o, b_o = self.dsol.affine[0], self.dsol.affine[1]
        return w_o * torch.einsum("kd,ndhw->nkhw", self.dsol.dictionary, fv) + b_o

    def forward(self, image: torch.Tensor, audio: torch.Tensor) -> dict[str, torch.Tensor]:
        fv = self.vision(image)
        ga = self.audio(audio)
        l = self.loc(fv, ga)
        audio_logits = self.cls.audio(ga)
        vision_logits = self.cls.vision(fv.mean(dim=(2, 3)))
        m = self.object_response(fv)
        s = m * l
        return {
            "fv": fv,
            "ga": ga,
            "l": l,
            "match": torch.amax(l, dim=(1, 2, 3)),
            "s": s,
            "class_maps": torch.softmax(3.0 * s, dim=1),
            "p_a": torch.softmax(audio_logits, dim=1),
            "p_v": torch.softmax(s.mean(dim=(2, 3)), dim=1),
            "audio_logits": audio_logits,
            "vision_logits": vision_logits,
        }
