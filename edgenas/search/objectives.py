"""The LDP objectives (paper Eq. 1 and 4) and the Pareto front, as pure functions.

Compactness term of one resource with target ``P`` and value ``P(m)``::

    (P / P(m))^r,   r = 0 if P(m) <= P else 1

so a network within the target gets the full term 1 and a larger one is penalised in
proportion. With several targets (e.g. parameters and latency) the compactness term is
the product of the per-target terms: every target must be met for the term to be 1.

Validation grade:   G(m) = a * A(m) + (1 - a) * compactness(m)
Mutation reward:    R(m_i, m_j) = a * score(m_j) / score(m_i) + (1 - a) * compactness(m_j)

NASWOT scores are log-determinants, normally large and positive (hundreds). The ratio
``score(m_j) / score(m_i)`` is used as is when both are finite and ``score(m_i) > 1``;
otherwise (a collapsed or pathological parent with a score near or below zero, where a
ratio would flip sign or explode) it is replaced by ``1 + (score(m_j) - score(m_i)) /
max(|score(m_i)|, 1)``, which agrees with the ratio for large positive scores and stays
monotone in the child's score. A child scoring ``-inf`` (singular kernel: inputs it
cannot tell apart) gets ratio 0.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence


def compactness(values: Mapping[str, float], targets: Mapping[str, float]) -> float:
    """Product over targets of ``(P / P(m))^r`` (``r = 0`` within target, else 1)."""
    term = 1.0
    for resource, target in targets.items():
        value = values[resource]
        if value > target:
            term *= target / value
    return term


def grade(
    accuracy: float, values: Mapping[str, float], targets: Mapping[str, float], a: float
) -> float:
    """Validation grade ``G = a * A + (1 - a) * compactness``."""
    return a * accuracy + (1.0 - a) * compactness(values, targets)


def score_ratio(parent_score: float, child_score: float) -> float:
    """``score(child) / score(parent)``, made safe for non-positive or infinite scores."""
    if child_score == -math.inf or math.isnan(child_score):
        return 0.0
    if math.isinf(parent_score) or math.isnan(parent_score):
        return 1.0
    if parent_score > 1.0:
        return child_score / parent_score
    return 1.0 + (child_score - parent_score) / max(abs(parent_score), 1.0)


def reward(
    parent_score: float,
    child_score: float,
    child_values: Mapping[str, float],
    targets: Mapping[str, float],
    a: float,
) -> float:
    """Mutation reward ``R = a * score ratio + (1 - a) * compactness(child)``."""
    return a * score_ratio(parent_score, child_score) + (1.0 - a) * compactness(
        child_values, targets
    )


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the points not dominated when maximising the first coordinate
    (accuracy) and minimising the second (a resource), sorted by the resource."""
    order = sorted(range(len(points)), key=lambda i: (points[i][1], -points[i][0]))
    front, best_accuracy = [], -math.inf
    for index in order:
        accuracy = points[index][0]
        if accuracy > best_accuracy:
            front.append(index)
            best_accuracy = accuracy
    return front


def closest_to_target(sizes: Iterable[float], target: float) -> list[int]:
    """Indices ordered by ``|log(size / target)|`` (relative closeness to the target)."""
    values = list(sizes)
    return sorted(range(len(values)), key=lambda i: abs(math.log(max(values[i], 1e-12) / target)))
