"""The shipped synth backbones: manifest, files, tokenizer, loading, quality bars, training command."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from benchmark.metrics.backbones import SYNTH, resolve, synth as S
from benchmark.metrics.backbones import train as T
from benchmark.metrics.backbones.base import sha256_file

torch.set_num_threads(1)


def test_manifest_records_every_file_with_its_sha256_command_seed_and_bar():
    manifest = S.read_manifest()
    assert set(manifest) == set(S.FILES)
    total = 0
    for name, entry in manifest.items():
        path = S.HERE / entry["file"]
        assert sha256_file(path, sidecar=False) == entry["sha256"]
        assert entry["command"].startswith("editbench train-backbones")
        assert isinstance(entry["seed"], int) and entry["steps"] > 0
        (key, bar), = entry["bar"].items()
        assert entry["passed"] == (entry["quality"][key] >= bar)
        total += path.stat().st_size
    assert total < 5 * 2**20


@pytest.mark.parametrize("name", sorted(S.FILES))
def test_quality_bar(name):
    """The bars printed by the training command, as recorded for the shipped weights."""
    entry = S.read_manifest()[name]
    (key, bar), = entry["bar"].items()
    if not entry["passed"]:
        pytest.xfail(f"{name}: {key} {entry['quality'][key]:.4f} is below its bar {bar} "
                     f"(see benchmark/metrics/backbones/manifest.json)")
    assert entry["quality"][key] >= bar


def test_backbones_load_and_describe_themselves():
    manifest = S.read_manifest()
    for role, name in SYNTH.items():
        bb = resolve(role, "synth")
        file = "synth-classifier" if name == "synth-lpips-uncalibrated" else name
        assert bb.describe() == {"backbone": name, "backbone_sha256": manifest[file]["sha256"]}
        assert bb.origin == "synth"
    clip = resolve("clip", "synth")
    img = Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8))
    a = clip.forward_images(clip.preprocess(img, "clip")[None], "clip")
    b = clip.forward_images(clip.preprocess(img, "ip2p")[None], "ip2p")
    assert torch.allclose(a, b, atol=1e-5)  # at the native 64 px both views are the identity
    big = img.resize((128, 96))
    assert clip.preprocess(big, "clip").shape == (3, 64, 64) == clip.preprocess(big, "ip2p").shape
    assert clip.forward_texts(clip.tokenize(["a red circle"], False)).shape == (1, S.EMBED_DIM)


def test_word_tokenizer_strict_and_truncating():
    tok = S.WordTokenizer(list(S.SPECIALS) + ["a", "red", "circle"], context_length=6)
    ids = tok(["A red, circle"], truncate=False)[0].tolist()
    assert ids == [S.SOS, 4, 5, S.UNK, 6, S.EOS]
    with pytest.raises(ValueError, match="over the synth-clip context length of 6"):
        tok(["a red circle a red circle"], truncate=False)
    cut = tok(["a red circle a red circle"], truncate=True)[0].tolist()
    assert len(cut) == 6 and cut[-1] == S.EOS
    with pytest.raises(ValueError):
        S.WordTokenizer(["a", "b"])


def test_knn_classifier_follows_dino_protocol():
    train_f = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]])
    train_y = torch.tensor([0, 0, 1])
    assert T.knn_accuracy(train_f, train_y, torch.tensor([[1.0, 0.05], [0.1, 1.0]]),
                          torch.tensor([0, 1]), k=2) == 1.0


def test_dino_teacher_is_an_exponential_moving_average_of_the_student():
    torch.manual_seed(0)
    student = (torch.nn.Linear(3, 2), torch.nn.Linear(2, 4))
    teacher = (torch.nn.Linear(3, 2), torch.nn.Linear(2, 4))
    before = [p.detach().clone() for m in teacher for p in m.parameters()]
    student_before = [p.detach().clone() for m in student for p in m.parameters()]
    T.ema_update(student, teacher, 0.9)
    after = [p for m in teacher for p in m.parameters()]
    for b, s, a in zip(before, student_before, after):
        torch.testing.assert_close(a, 0.9 * b + 0.1 * s, rtol=0, atol=1e-7)
    for s, p in zip(student_before, (p for m in student for p in m.parameters())):
        assert torch.equal(s, p)


def test_dino_loss_averages_cross_entropy_over_distinct_view_pairs():
    torch.manual_seed(0)
    teacher = [torch.softmax(torch.randn(4, 5) / 0.04, -1) for _ in range(2)]
    student = [torch.randn(4, 5) for _ in range(3)]  # 2 global views (the teacher's) + 1 local

    def h(q, s):
        return float((-(q * torch.log_softmax(s / 0.1, -1))).sum(-1).mean())

    pairs = [(0, 1), (0, 2), (1, 0), (1, 2)]
    want = sum(h(teacher[i], student[j]) for i, j in pairs) / len(pairs)
    assert float(T.dino_loss(teacher, student)) == pytest.approx(want, rel=1e-6)


def test_training_command_is_deterministic_and_writes_a_manifest(tmp_path, monkeypatch):
    """The real command on a tiny budget (2 steps, small data) twice: same bytes, same sha256."""
    monkeypatch.setattr(T, "render_scenes", _small(T.render_scenes))
    monkeypatch.setattr(T, "eval_classifier", lambda model, meta=None: {"object_accuracy": 0.0})
    digests = []
    for run in ("a", "b"):
        out = tmp_path / run
        report = T.run(["synth-classifier"], {"synth-classifier": 2}, out, seed=3)
        manifest = json.loads((out / "manifest.json").read_text())
        entry = manifest["synth-classifier"]
        assert entry["steps"] == 2 and entry["seed"] == 3 and report["synth-classifier"]["passed"] is False
        digests.append(entry["sha256"])
    assert digests[0] == digests[1]


def _small(render):
    def small(seed, n, n_shapes=None, masks=False):
        return render(seed, min(n, 16), n_shapes=n_shapes, masks=masks)

    return small


def test_train_backbones_cli_arguments():
    import argparse

    sub = argparse.ArgumentParser().add_subparsers()
    T.add_cli(sub)
    args = sub.choices["train-backbones"].parse_args(["--only", "synth-clip", "--steps", "synth-clip=5"])
    assert args.only == "synth-clip" and args.steps == ["synth-clip=5"] and args.func is T.cmd_train_backbones
    bad = sub.choices["train-backbones"].parse_args(["--only", "synth-vgg"])
    with pytest.raises(ValueError, match="unknown synth backbone"):
        bad.func(bad)


def test_edge_map_keeps_outlines_and_drops_colour_and_polarity():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 16, 16, generator=g) * 2 - 1
    e = S.edge_map(x)
    assert e.shape == x.shape and float(e.min()) >= -1 and float(e.max()) == pytest.approx(1.0)
    torch.testing.assert_close(S.edge_map(-x), e)                 # which side is darker
    torch.testing.assert_close(S.edge_map(x[:, [2, 0, 1]]), e)    # which channel carries it
    torch.testing.assert_close(S.edge_map(0.3 * x), e)            # contrast
    assert torch.equal(S.edge_map(torch.zeros(1, 3, 8, 8)), torch.full((1, 3, 8, 8), -1.0))
    flat = S.edge_map(torch.full((1, 3, 8, 8), 0.4))[0, 0]  # zero padding: the frame is an edge
    torch.testing.assert_close(flat[1:-1, 1:-1], torch.full((6, 6), -1.0))
    assert bool((flat[0] > 0).all())
    square = torch.zeros(1, 3, 16, 16)
    square[..., 4:12, 4:12] = 1.0
    ring = S.edge_map(square)[0, 0]
    assert ring[8, 8] == -1 and ring[3, 8] > 0 and ring[8, 12] > 0  # inside flat, border lit


def test_synth_dino_feature_is_the_max_pooled_trunk_of_the_edge_map():
    torch.manual_seed(0)
    model = S.SynthDINO().eval()
    x = torch.rand(3, 3, S.INPUT_SIZE, S.INPUT_SIZE) * 2 - 1
    with torch.no_grad():
        want = model.trunk(S.edge_map(x))[-1].amax(dim=(2, 3))
        torch.testing.assert_close(model(x), want)
        torch.testing.assert_close(model(-x), want)  # blind to polarity, as its input is
    assert want.shape == (3, model.trunk.out_channels)


def test_object_views_zoom_onto_the_object_and_redraw_the_rest():
    import dataclasses

    from benchmark.datasets import synth
    from benchmark.datasets.synth import scene as SC

    scene = synth.random_scene(np.random.default_rng(5), n_shapes=1)
    scene = dataclasses.replace(scene, background=SC.random_background(np.random.default_rng(0),
                                                                       kinds=("solid",)))
    full = synth.render(scene, S.INPUT_SIZE)[0]
    assert np.array_equal(T.render_object_view(scene, np.random.default_rng(1)), full)  # the defaults
    a = T.render_object_view(scene, np.random.default_rng(1), **T.EASY_VIEWS)
    assert np.array_equal(a, T.render_object_view(scene, np.random.default_rng(1), **T.EASY_VIEWS))

    def object_share(im):  # pixels that differ from the corner (a solid background's colour)
        return (np.abs(im.astype(int) - im[0, 0].astype(int)).sum(-1) > 30).mean()

    assert object_share(a) > 3 * object_share(full)  # zoomed 3x onto the object
    views = [T.render_object_view(scene, np.random.default_rng(s), **T.SCENE_VIEWS) for s in range(6)]
    assert len({v.tobytes() for v in views}) == 6  # background, colour, zoom and window redrawn
    batch = T.object_view_batch([scene, scene], T.SCENE_VIEWS, 3, np.random.default_rng(0),
                                torch.Generator().manual_seed(0), augment=False)
    assert batch.shape == (6, 3, S.INPUT_SIZE, S.INPUT_SIZE) and -1 <= batch.min() < batch.max() <= 1


def test_train_dino_moves_the_teacher_towards_the_student():
    torch.manual_seed(0)
    init = {k: v.clone() for k, v in S.SynthDINO().named_parameters()}
    torch.manual_seed(0)
    teacher, _ = T.train_dino(2, batch=4, n_student=1)
    assert not teacher.training
    moved = [k for k, v in teacher.named_parameters() if not torch.equal(v, init[k])]
    assert moved  # parameters, not BatchNorm statistics: only the EMA of the student moves them
