"""Training objectives over causal-LM logits: supervised NLL, DPO and ORPO."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kolmbuild.train.encoding import IGNORE

if TYPE_CHECKING:
    import torch


def answer_logps(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per sequence: the summed log-probability of the answer tokens and how many there are.
    ``logits`` [B, T, V] predict position t+1 from t; ``labels`` [B, T] hold IGNORE off-answer."""
    import torch

    shifted = labels[:, 1:]
    mask = shifted != IGNORE
    logp = torch.log_softmax(logits[:, :-1, :].float(), dim=-1)
    picked = torch.gather(logp, 2, shifted.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return (picked * mask).sum(-1), mask.sum(-1)


def sft_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean negative log-likelihood over every answer token in the batch."""
    total, count = answer_logps(logits, labels)
    return -total.sum() / count.sum().clamp(min=1)


def dpo_loss(
    policy_chosen: torch.Tensor,
    policy_rejected: torch.Tensor,
    ref_chosen: torch.Tensor,
    ref_rejected: torch.Tensor,
    beta: float,
) -> torch.Tensor:
    """Direct Preference Optimization (Rafailov et al., 2023), sigmoid form: the mean over pairs of
    -log sigma(beta * ((pi_c - ref_c) - (pi_r - ref_r))), on summed answer log-probabilities."""
    import torch

    margin = (policy_chosen - ref_chosen) - (policy_rejected - ref_rejected)
    return -torch.nn.functional.logsigmoid(beta * margin).mean()


def orpo_loss(
    chosen_logps: torch.Tensor,
    chosen_counts: torch.Tensor,
    rejected_logps: torch.Tensor,
    rejected_counts: torch.Tensor,
    lam: float,
) -> torch.Tensor:
    """Odds Ratio Preference Optimization (Hong et al., 2024): the chosen answer's mean NLL plus
    lam * -log sigma(log odds(chosen) - log odds(rejected)), with odds(p) = p / (1 - p) and p the
    per-token mean probability of the answer. No reference model."""
    import torch

    mean_c = chosen_logps / chosen_counts.clamp(min=1)
    mean_r = rejected_logps / rejected_counts.clamp(min=1)

    def log_odds(mean_logp: torch.Tensor) -> torch.Tensor:
        # log(p / (1 - p)) with p = exp(mean_logp) < 1, computed without cancelling to -inf
        return mean_logp - torch.log1p(-torch.exp(mean_logp.clamp(max=-1e-6)))

    ratio = torch.nn.functional.logsigmoid(log_odds(mean_c) - log_odds(mean_r))
    nll = -(chosen_logps.sum() / chosen_counts.sum().clamp(min=1))
    return nll - lam * ratio.mean()
