"""Expressive-instruction exact match and token F1 against the SQuAD v1.1 script's functions,
written out here as that script has them."""

import collections
import math
import re
import string

import numpy as np
from PIL import Image

from benchmark.api import EditSample
from benchmark.metrics.base import MetricInput
from benchmark.metrics.expressive import ExpressiveExactMatch, ExpressiveTokenF1


def squad_normalize(s):
    def remove_articles(text):
        return re.sub(r"\b(a|an|the)\b", " ", text)

    def white_space_fix(text):
        return " ".join(text.split())

    def remove_punc(text):
        exclude = set(string.punctuation)
        return "".join(ch for ch in text if ch not in exclude)

    return white_space_fix(remove_articles(remove_punc(s.lower())))


def squad_f1(prediction, ground_truth):
    prediction_tokens = squad_normalize(prediction).split()
    ground_truth_tokens = squad_normalize(ground_truth).split()
    common = collections.Counter(prediction_tokens) & collections.Counter(ground_truth_tokens)
    num_same = sum(common.values())
    if num_same == 0:
        return 0
    precision = 1.0 * num_same / len(prediction_tokens)
    recall = 1.0 * num_same / len(ground_truth_tokens)
    return (2 * precision * recall) / (precision + recall)


PAIRS = [("Remove the largest shape, the red circle.", "remove the largest shape the red circle"),
         ("turn the blue square red", "turn the small blue square at the top red"),
         ("make it darker", "brighten the whole picture"),
         ("the the circle circle", "a circle"),
         ("An  orange, hexagon!", "orange hexagon")]


def _item(pred, ref):
    img = Image.fromarray(np.zeros((8, 8, 3), np.uint8))
    return MetricInput(output=img, sample=EditSample(id="x", source=img, target=img,
                                                     instruction="i", expressive=ref),
                       expressive=pred)


def test_exact_match_and_f1_equal_the_squad_script():
    em, f1 = ExpressiveExactMatch(), ExpressiveTokenF1()
    items = [_item(p, r) for p, r in PAIRS]
    got_em, got_f1 = em.score(items), f1.score(items)
    for (p, r), e, f in zip(PAIRS, got_em, got_f1):
        assert e == float(squad_normalize(p) == squad_normalize(r))
        assert abs(f - squad_f1(p, r)) < 1e-12
    assert got_em[0] == 1.0 and got_em[4] == 1.0 and got_em[2] == 0.0
    assert 0 < got_f1[1] < 1 and got_f1[2] == 0.0


def test_nan_without_a_model_expressive_or_a_reference():
    em = ExpressiveExactMatch()
    assert math.isnan(em.score([_item(None, "remove it")])[0])
    assert math.isnan(em.score([_item("remove it", None)])[0])
