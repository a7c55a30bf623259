"""How close a model's expressive instruction is to the dataset's reference one (the synth suite
has ground truth): exact match and token F1, both higher is better; NaN for a model that gives no
expressive instruction or a sample without a reference.

Convention: the SQuAD v1.1 evaluation script (Rajpurkar et al. 2016, ``evaluate-v1.1.py``):
normalise by lower-casing, removing punctuation and the articles a/an/the, and collapsing
whitespace; exact match compares the normalised strings, F1 is the harmonic mean of precision
and recall of the bag of normalised tokens (counted with multiplicity).
"""

from __future__ import annotations

import math
import re
import string
from collections import Counter

from benchmark.metrics.base import Metric, MetricInput

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = set(string.punctuation)


def normalize_answer(text: str) -> str:
    text = "".join(ch for ch in text.lower() if ch not in _PUNCT)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction: str, reference: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(reference))


def token_f1(prediction: str, reference: str) -> float:
    pred, ref = normalize_answer(prediction).split(), normalize_answer(reference).split()
    if not pred or not ref:
        return float(pred == ref)
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


class _ExpressiveMetric(Metric):
    higher_is_better = True
    requires = ("expressive",)  # the sample's reference expressive instruction

    @staticmethod
    def compare(prediction: str, reference: str) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    def score_one(self, item: MetricInput) -> float:
        if item.expressive is None:
            return math.nan
        return type(self).compare(item.expressive, item.sample.expressive)


class ExpressiveExactMatch(_ExpressiveMetric):
    key = "expressive_exact_match"
    compare = staticmethod(exact_match)


class ExpressiveTokenF1(_ExpressiveMetric):
    key = "expressive_token_f1"
    compare = staticmethod(token_f1)
