"""The training losses of DSOL's two stages (SPEC §4), shared by the trainer and its tools."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def bce(p: torch.Tensor, target: float) -> torch.Tensor:
    return F.binary_cross_entropy(p, torch.full_like(p, target))


def quadrant_l1(l_pos: torch.Tensor, l_neg: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Stage 2's matching term L1 on sounding maps (N, 1, H, W): BCE of each true pair's max of l
    against 1 and of each mismatched scene's four quadrant maxima against 0, halves weighing alike.
    Returns (L1, the true pairs' maxima, the mismatches' quadrant maxima)."""
    pos_max = torch.amax(l_pos, dim=(1, 2, 3))
    neg_q = F.adaptive_max_pool2d(l_neg, 2).flatten()
    return 0.5 * (bce(pos_max, 1.0) + bce(neg_q, 0.0)), pos_max, neg_q


def all_pairs_loss(logits: torch.Tensor, infonce: float = 0.0) -> torch.Tensor:
    """Stage-1 matching loss over a batch's (N_img, N_aud) matching logits, pairs on the diagonal:
    BCE on the N positives and on the N(N-1) mismatches, each half weighing the same, plus `infonce`
    times the batch-softmax term (which picture goes with this audio, which audio with this picture).
    The softmax term is what gets training from scratch off the ground: a constant audio embedding
    leaves every score at 0.5, a plateau of the BCE (ln 2) but ln N for the softmax term."""
    n = logits.shape[0]
    eye = torch.eye(n, dtype=torch.bool, device=logits.device)
    loss = 0.5 * (F.binary_cross_entropy_with_logits(logits[eye], torch.ones_like(logits[eye]))
                  + F.binary_cross_entropy_with_logits(logits[~eye], torch.zeros_like(logits[~eye])))
    if infonce > 0:
        idx = torch.arange(n, device=logits.device)
        loss = loss + infonce * 0.5 * (F.cross_entropy(logits, idx) + F.cross_entropy(logits.t(), idx))
    return loss
