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
