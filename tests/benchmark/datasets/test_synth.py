"""Tests of the synth suite: determinism, exact ground truth, masks, splits and words."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from benchmark.api import EditSample
from benchmark.datasets import synth
from benchmark.datasets.synth import edits, scene as sc, tasks

LOCAL_OPS = {"recolour", "remove", "add", "replace"}
GLOBAL_OPS = {"brightness", "contrast", "saturation", "gamma", "white_balance"}
CATEGORIES = LOCAL_OPS | GLOBAL_OPS | {"background", "zoom", "multi-step", "referring"}
EXPECTED_CATEGORIES = {
    "evr": {"background", "remove", "recolour", "zoom", "referring"},
    "gier": GLOBAL_OPS | LOCAL_OPS | {"referring"},
    "ma5k": GLOBAL_OPS | {"referring"},
    "magicbrush": LOCAL_OPS | {"referring"},
    "complex": {"multi-step", "referring"},
}


@pytest.fixture(scope="module")
def test_split() -> dict[str, list[EditSample]]:
    return {v: synth.load(v, "test") for v in synth.VARIANTS}


def _arr(img) -> np.ndarray:
    return np.asarray(img)


def _key(s: EditSample) -> str:
    h = hashlib.sha256(s.instruction.encode())
    h.update(s.source.tobytes())
    return h.hexdigest()


def _fingerprint(samples: list[EditSample]) -> list[tuple]:
    return [
        (s.id, s.instruction, s.expressive, s.input_caption, s.goal_caption, s.category, s.session_id, s.turn,
         s.source.tobytes(), s.target.tobytes(), None if s.mask is None else s.mask.tobytes(),
         json.dumps(s.meta, sort_keys=True))
        for s in samples
    ]


# --------------------------------------------------------------------------- API and arguments


def test_public_api():
    assert synth.SYNTH_VERSION == 1
    assert synth.VARIANTS == ("evr", "gier", "ma5k", "magicbrush", "complex")
    assert synth.SPLITS == {"train": 50_000, "val": 200, "test": 100}
    for name in ("generate", "load", "iter_samples", "random_scene", "render"):
        assert callable(getattr(synth, name))


def test_seed_follows_documented_scheme():
    key = "editbench-synth/v1/gier/test/7"
    seed = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "little")
    assert tasks.sample_rng("gier", "test", 7).random() == np.random.default_rng(seed).random()


@pytest.mark.parametrize(
    "call, needle",
    [
        (lambda: synth.generate("nope", "test", 0), "evr, gier, ma5k, magicbrush, complex"),
        (lambda: synth.generate("gier", "dev", 0), "train, val, test"),
        (lambda: synth.generate("gier", "test", 100), "0..99"),
        (lambda: synth.generate("gier", "test", -1), "0..99"),
        (lambda: synth.generate("gier", "val", 200), "0..199"),
        (lambda: synth.load("nope"), "evr, gier"),
        (lambda: list(synth.iter_samples("gier", "oops")), "train, val, test"),
        (lambda: synth.generate("gier", "test", 0, version=2), "1"),
        (lambda: synth.generate("gier", "test", 0, size=4), ">= 8"),
    ],
)
def test_bad_arguments_raise_one_line_value_error(call, needle):
    with pytest.raises(ValueError) as exc:
        call()
    msg = str(exc.value)
    assert needle in msg and "\n" not in msg


# --------------------------------------------------------------------------- determinism and splits


@pytest.mark.parametrize("variant", synth.VARIANTS)
def test_deterministic_bytes_and_strings(variant):
    a = synth.generate(variant, "train", 123)
    b = synth.generate(variant, "train", 123)
    assert _fingerprint(a) == _fingerprint(b)
    c = synth.generate(variant, "train", 124)
    assert _key(a[0]) != _key(c[0])


def test_random_scene_is_deterministic_and_labelled():
    s1 = synth.random_scene(np.random.default_rng(5))
    s2 = synth.random_scene(np.random.default_rng(5))
    assert s1 == s2 and 1 <= len(s1.shapes) <= 4
    for shape in s1.to_dict()["shapes"]:
        assert shape["kind"] in sc.KINDS and shape["colour"] in sc.PALETTE
        assert shape["size"] in sc.SIZE_CLASSES and shape["position"] in sc.POSITIONS


@pytest.mark.parametrize("variant", synth.VARIANTS)
def test_test_split_disjoint_from_train(variant, test_split):
    test_keys = {_key(s) for s in test_split[variant]}
    train = synth.iter_samples(variant, "train", stop=2_000)
    train_keys = {_key(s) for _, s in zip(range(2_000), train)}
    assert len(train_keys) == 2_000
    assert not test_keys & train_keys


@pytest.mark.slow
def test_twenty_thousand_distinct_train_samples():
    keys = {_key(s) for s in synth.iter_samples("ma5k", "train", stop=20_000)}
    assert len(keys) == 20_000


@pytest.mark.parametrize("variant", synth.VARIANTS)
def test_test_split_size(variant, test_split):
    samples = test_split[variant]
    assert len(samples) >= 100
    assert len({s.id for s in samples}) == len(samples)
    assert {s.meta["index"] for s in samples} == set(range(100))


def test_load_limit_and_iter_agree():
    first = synth.load("magicbrush", "val", limit=3)
    assert _fingerprint(first) == _fingerprint(list(synth.iter_samples("magicbrush", "val", stop=3)))
    assert {s.meta["index"] for s in first} == {0, 1, 2}
    assert _fingerprint(list(synth.iter_samples("gier", "val", start=5, stop=6))) == _fingerprint(
        synth.generate("gier", "val", 5))


# --------------------------------------------------------------------------- ground truth


@pytest.mark.parametrize("variant", synth.VARIANTS)
def test_mask_bit_identical_outside_and_differs_inside(variant, test_split):
    n_masked = 0
    for s in test_split[variant]:
        src, tgt = _arr(s.source), _arr(s.target)
        assert src.shape == tgt.shape == (64, 64, 3) and src.dtype == np.uint8
        if s.mask is None:
            assert s.category in GLOBAL_OPS | {"zoom", "multi-step", "referring"}
            continue
        n_masked += 1
        assert s.mask.mode == "L"
        m = _arr(s.mask)
        assert set(np.unique(m)) <= {0, 255}
        inside = m == 255
        assert np.array_equal(src[~inside], tgt[~inside]), s.id
        assert np.any(src[inside] != tgt[inside]), s.id
    if variant in ("evr", "gier", "magicbrush"):
        assert n_masked >= 30


@pytest.mark.parametrize("variant", synth.VARIANTS)
def test_local_edits_have_masks_global_edits_do_not(variant, test_split):
    for s in test_split[variant]:
        ops = s.meta["ops"]
        if variant == "complex":
            assert len(ops) in (2, 3) and s.mask is None
        elif ops[0] in LOCAL_OPS | {"background"}:
            assert s.mask is not None, s.id
        else:
            assert s.mask is None, s.id


@pytest.mark.parametrize("variant", synth.VARIANTS)
def test_every_edit_changes_the_image(variant, test_split):
    for s in test_split[variant]:
        changed = np.any(_arr(s.source) != _arr(s.target), axis=-1)
        if set(s.meta["ops"]) <= GLOBAL_OPS:
            assert changed.mean() >= 0.25, s.id
        else:
            assert changed.sum() >= 8, s.id


def test_targets_are_exact_functions_of_the_recorded_scenes(test_split):
    """Re-rendering meta's target scene (and re-applying its adjustments) gives the target bit for bit."""
    checked = set()
    for variant in ("gier", "ma5k", "evr", "complex"):
        for s in test_split[variant][:40]:
            meta = s.meta
            scene_d = meta["target_scene"] or meta["source_scene"]
            view = scene_d.get("view")
            rendered = sc.render_float(synth.Scene.from_dict(scene_d), 64, view)
            img = rendered.image
            for name, params in meta["adjust"]:
                img = edits.apply_adjust(img, name, params)
            assert np.array_equal(sc.quantise(img), _arr(s.target)), s.id
            checked.update(meta["ops"])
    assert {"brightness", "zoom", "background", "recolour"} <= checked


def test_zoom_is_an_exact_analytic_close_up():
    rng = np.random.default_rng(3)
    scene = synth.random_scene(rng)
    big, _ = synth.render(scene, 128)
    zoomed, _ = synth.render(scene, 64, view=synth.View.on_region("bottom right", 2.0))
    # Pixel centres coincide, so only float32 rounding of coordinates may differ.
    diff = np.abs(big[64:, 64:].astype(int) - zoomed.astype(int))
    assert diff.max() <= 1 and (diff > 0).mean() < 0.01


def test_retouch_amounts_follow_the_words():
    img = np.full((4, 4, 3), 0.5, np.float32)
    img[0, 0] = (0.8, 0.2, 0.4)
    assert np.allclose(edits.apply_adjust(img, "brightness", (1.2,))[1, 1], 0.6)
    assert np.allclose(edits.apply_adjust(img, "saturation", (0.0,)).std(axis=-1), 0, atol=1e-6)
    assert np.allclose(edits.apply_adjust(img, "white_balance", (1.1, 1.0, 0.9))[1, 1], (0.55, 0.5, 0.45))
    c = edits.apply_adjust(img, "contrast", (1.3,))
    luma = img @ np.array([0.299, 0.587, 0.114], np.float32)
    assert np.allclose(c.mean(), img.mean() + (1.3 - 1) * (img.mean() - luma.mean()), atol=1e-5)
    for op, amounts in edits.RETOUCH.items():
        for r in amounts:
            assert any(ch.isdigit() for ch in r.expressive), r
            assert not any(any(ch.isdigit() for ch in p) for p in r.plain), r


# --------------------------------------------------------------------------- sessions


def test_magicbrush_turns_chain(test_split):
    sessions: dict[str, list[EditSample]] = {}
    for s in test_split["magicbrush"]:
        sessions.setdefault(s.session_id, []).append(s)
    lengths = {len(v) for v in sessions.values()}
    assert lengths == {1, 2, 3}
    for sid, turns in sessions.items():
        assert sid == f"magicbrush-test-{turns[0].meta['index']:05d}"
        assert [t.turn for t in turns] == list(range(1, len(turns) + 1))
        assert [t.id for t in turns] == [f"{sid}-t{k}" for k in range(1, len(turns) + 1)]
        for prev, cur in zip(turns, turns[1:]):
            assert cur.source.tobytes() == prev.target.tobytes()
            assert cur.input_caption == prev.goal_caption
            assert cur.meta["source_scene"] == prev.meta["target_scene"]
        for t in turns:
            assert t.mask is not None and t.expressive and t.input_caption and t.goal_caption


# --------------------------------------------------------------------------- referring and words


@pytest.mark.parametrize("variant", synth.VARIANTS)
def test_referring_share(variant, test_split):
    samples = test_split[variant]
    referring = [s for s in samples if s.category == "referring"]
    assert 0.15 <= len(referring) / len(samples) <= 0.40
    assert all(s.meta["referring"] == (s.category == "referring") for s in samples)


def _changed_object(s: EditSample) -> dict:
    src = s.meta["source_scene"]["shapes"]
    tgt = s.meta["target_scene"]["shapes"]
    cells = {d["cell"]: d for d in tgt}
    for d in src:
        if cells.get(d["cell"]) != d:
            return d
    raise AssertionError(s.id)


def test_referring_edits_resolve_to_the_right_object(test_split):
    seen = set()
    sizes = {"small": 0, "medium": 1, "large": 2}
    for variant in ("evr", "gier", "magicbrush"):
        for s in test_split[variant]:
            rule = s.meta["refer"][0]
            if not s.meta["referring"] or s.meta["ops"][0] in ("add", "zoom") or rule.startswith("if_"):
                continue
            obj = _changed_object(s)
            shapes = s.meta["source_scene"]["shapes"]
            others = [d for d in shapes if d is not obj]
            assert f"{obj['size']} {obj['colour']} {obj['kind']} {obj['position']}" in s.expressive
            if rule in ("largest", "smallest"):
                sign = 1 if rule == "largest" else -1
                assert all(sign * (sizes[obj["size"]] - sizes[d["size"]]) > 0 for d in others), s.id
            elif rule in ("leftmost", "rightmost"):
                sign = -1 if rule == "leftmost" else 1
                assert all(sign * (obj["cell"] % 3 - d["cell"] % 3) > 0 for d in others), s.id
            elif rule == "odd_one_out":
                assert len(others) >= 2
                same = [a for a in ("kind", "colour") if len({d[a] for d in others}) == 1]
                assert any(obj[a] != others[0][a] for a in same), s.id
            seen.add(rule)
    assert {"largest", "odd_one_out", "same_colour_as"} <= seen


def test_conditional_edits_follow_the_image(test_split):
    n = 0
    for s in test_split["ma5k"]:
        rule = s.meta["refer"][0]
        if rule == "if_dark":
            luma = (_arr(s.source) / 255.0) @ np.array([0.299, 0.587, 0.114])
            brighter = "increase" in s.expressive
            assert (luma.mean() < 0.45) == brighter, s.id
            n += 1
    assert n >= 2


@pytest.mark.parametrize("variant", synth.VARIANTS)
def test_words_captions_and_categories(variant, test_split):
    cats = set()
    for s in test_split[variant]:
        for text in (s.instruction, s.expressive, s.input_caption, s.goal_caption):
            assert isinstance(text, str) and text.strip() and "  " not in text and "{" not in text
        assert len(s.input_caption.split()) < 60 and len(s.goal_caption.split()) < 60, s.id
        assert s.category in CATEGORIES
        cats.add(s.category)
        meta = s.meta
        assert {"variant", "split", "index", "version", "ops", "referring", "source_scene", "target_scene"} <= set(meta)
        assert meta["variant"] == variant and meta["split"] == "test" and meta["version"] == 1
        json.dumps(meta)
        if set(meta["ops"]) <= GLOBAL_OPS:
            assert meta["target_scene"] is None
            assert s.goal_caption.endswith(s.input_caption) and s.goal_caption != s.input_caption
        if "zoom" in meta["ops"]:
            assert "close-up" in s.goal_caption and "zoom in" in s.expressive
        if variant != "magicbrush":
            assert s.id == f"{variant}-test-{meta['index']:05d}" and s.session_id is None and s.turn == 1
    assert cats == EXPECTED_CATEGORIES[variant]


def test_plain_names_the_shortest_unique_description():
    bg = synth.Background("solid", ("white",))
    shapes = (
        sc.make_shape("circle", "red", "small", 0),
        sc.make_shape("circle", "blue", "small", 4),
        sc.make_shape("square", "red", "large", 8),
    )
    scene = synth.Scene(bg, shapes)
    assert edits.refer(scene, 0) == "the red circle"
    assert edits.refer(scene, 2) == "the square"
    twins = synth.Scene(bg, (shapes[0], sc.make_shape("circle", "red", "small", 3)))
    assert edits.refer(twins, 1) == "the circle on the left"
    assert edits.refer(scene, 0, colour=False) == "the circle at the top left"


# --------------------------------------------------------------------------- scenes and rendering


@pytest.mark.parametrize("size", [32, 128])
def test_size_parameter(size):
    for variant in ("evr", "magicbrush"):
        at64 = synth.generate(variant, "test", 4)
        other = synth.generate(variant, "test", 4, size=size)
        assert [s.instruction for s in other] == [s.instruction for s in at64]
        assert [s.goal_caption for s in other] == [s.goal_caption for s in at64]
        for s in other:
            assert s.source.size == s.target.size == (size, size)
            if s.mask is not None:
                m = _arr(s.mask) == 255
                assert np.array_equal(_arr(s.source)[~m], _arr(s.target)[~m])
                assert np.any(_arr(s.source)[m] != _arr(s.target)[m])


def test_scene_round_trip_through_json():
    rng = np.random.default_rng(11)
    for _ in range(20):
        scene = synth.random_scene(rng)
        back = synth.Scene.from_dict(json.loads(json.dumps(scene.to_dict())))
        assert back == scene
        assert np.array_equal(synth.render(back, 48)[0], synth.render(scene, 48)[0])


def test_render_outputs_and_coverage():
    bg = synth.Background("gradient", ("black", "white"), "horizontal")
    scene = synth.Scene(bg, (sc.make_shape("square", "red", "large", 4), sc.make_shape("circle", "blue", "small", 4)))
    img, cov = synth.render(scene, 64)
    assert img.shape == (64, 64, 3) and img.dtype == np.uint8
    assert cov.shape == (2, 64, 64) and cov.dtype == np.float32
    assert 0 <= cov.min() and cov.max() <= 1
    # the circle sits on the square and hides part of it
    full_square = sc.render_float(synth.Scene(bg, scene.shapes[:1]), 64).raw_coverage(0)
    assert cov[0].sum() < full_square.sum() - 20
    assert np.allclose(cov[1].sum() / 64**2, np.pi * sc.SIZES["small"] ** 2, rtol=0.03)
    assert tuple(img[32, 32]) == sc.PALETTE["blue"]
    assert tuple(img[32, 25]) == sc.PALETTE["red"]
    assert img[2, 2].max() < img[2, 61].min()  # gradient runs black -> white
    # every background kind renders, for every size
    for kind in sc.BACKGROUND_KINDS:
        b = synth.Background(kind, ("green", "white")[: 1 if kind == "solid" else 2],
                             "diagonal" if kind in ("gradient", "stripes") else None, 7 if kind == "noise" else None)
        for size in (17, 64):
            im = synth.render(synth.Scene(b), size)[0]
            assert im.shape == (size, size, 3)
            assert (kind == "solid") == (len(np.unique(im.reshape(-1, 3), axis=0)) == 1)


def test_referring_share_is_exactly_the_referring_samples_of_every_variant():
    from collections import Counter

    got = synth.load_referring("test", limit=8)
    assert got and all(s.category == "referring" for s in got)
    expected = [s.id for v in synth.VARIANTS for s in synth.load(v, "test", limit=8)
                if s.category == "referring"]
    assert [s.id for s in got] == expected
    per_variant = Counter(s.id.split("-")[0] for s in got)
    assert set(per_variant) == set(synth.VARIANTS)
    # single-turn variants: exactly one referring sample per aligned block of four
    assert all(per_variant[v] == 2 for v in ("evr", "gier", "ma5k", "complex"))
