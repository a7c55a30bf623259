"""The 7b preset's code path (mgie/pretrained.py) on tiny random stand-ins of its public models:
a LLaVA / LLaMA folder in transformers' format and a Stable Diffusion folder in diffusers'."""

import json

import numpy as np
import pytest
import torch

from _dataset_fixtures import write_ipr2pr_folder
from _helpers import needs_cuda, tiny_sd_folder
from benchmark.api import MissingWeightsError
from baselines.lgie import LGIE
from benchmark.api import EditRequest
from benchmark.datasets import ipr2pr
from benchmark.files import to_rgb_image
from mgie.core import IMG_TOKENS
from mgie.mgie import MGIE
from mgie.pretrained import TEMPLATE_MLLM, expressive_table

TEXTS = [f"make it look like painting {i}" for i in range(6)] + [
    "what will this image be like if", "a painting with bold strokes and warm colours", "USER:",
    "ASSISTANT:", "A chat between a curious user and an artificial intelligence assistant."] * 4


def _lm_folder(root, multimodal: bool):
    """A tiny LLaVA (vision tower 32 px, 16 patches) or LLaMA folder with a tokenizer."""
    from transformers import CLIPImageProcessor, CLIPVisionConfig, LlamaConfig, LlamaForCausalLM
    from transformers import LlavaConfig, LlavaForConditionalGeneration

    from benchmark.diffusion.text import train_tokenizer

    torch.manual_seed(1)
    tok = train_tokenizer(TEXTS, vocab_size=400)
    ids = dict(bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    if multimodal:
        tok.add_tokens(["<image>"], special_tokens=True)
    text = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                       num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=256, **ids)
    if multimodal:
        cfg = LlavaConfig(vision_config=CLIPVisionConfig(image_size=32, patch_size=8, hidden_size=32,
                                                         intermediate_size=64, num_hidden_layers=2,
                                                         num_attention_heads=2),
                          text_config=text, image_token_index=tok.convert_tokens_to_ids("<image>"),
                          image_seq_length=16, vision_feature_layer=-2,
                          vision_feature_select_strategy="default")
        LlavaForConditionalGeneration(cfg).save_pretrained(root)
        CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(root)
    else:
        LlamaForCausalLM(text).save_pretrained(root)
    tok.save_pretrained(root)
    return root


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("hub")
    data = write_ipr2pr_folder(root / "ipr2pr", n_prompts=6, seeds_per_prompt=2, size=40)["root"]
    train_pairs = [it for it in ipr2pr.load(data_dir=str(data), split="train")]
    table = {it.meta["prompt"]: {"expressive": f"a painting with bold strokes {i}"}
             for i, it in enumerate(train_pairs)}
    (root / "expressive.json").write_text(json.dumps(table))
    return {"data": data, "expressive": root / "expressive.json", "samples": train_pairs,
            "sd": tiny_sd_folder(root / "sd", TEXTS), "llava": _lm_folder(root / "llava", True),
            "llama": _lm_folder(root / "llama", False)}


def _train(cls, world, out, lm, checkpoint_every=500, resume=False, device="cpu", **recipe):
    return cls.train(preset="7b", output_dir=str(out), steps=2, batch_size=2, seed=0, device=device,
                     data_dir=str(world["data"]), base_checkpoint=str(world["sd"]), log_every=1,
                     checkpoint_every=checkpoint_every, resume=resume,
                     recipe_overrides={"lm": str(world[lm]), "expressive_file": str(world["expressive"]),
                                       "per_device_batch_size": 1, "resolution": 16, **recipe})


@pytest.fixture(scope="module")
def trained_mgie(world, tmp_path_factory):
    out = tmp_path_factory.mktemp("mgie7b")
    return out, _train(MGIE, world, out, "llava")


def test_7b_training_updates_only_mgies_trainable_parts(world, trained_mgie):
    from diffusers import UNet2DConditionModel
    from safetensors.torch import load_file
    from transformers import LlavaForConditionalGeneration

    out, manifest = trained_mgie
    assert manifest["preset"] == "7b" and manifest["gradient_accumulation"] == 2
    assert [h["step"] for h in manifest["loss_history"]] == [1, 2]
    assert all(np.isfinite([h["loss_ins"], h["loss_edit"]]).all() for h in manifest["loss_history"])
    unet = UNet2DConditionModel.from_pretrained(out / "unet")
    assert unet.config.in_channels == 8  # SD's 4 + the source latents
    base = LlavaForConditionalGeneration.from_pretrained(world["llava"])
    state = load_file(str(out / "guide_trainable.safetensors"))
    vocab = base.get_input_embeddings().weight.shape[0]
    assert state["embed_tokens"].shape[0] == vocab + len(IMG_TOKENS)  # [IMG0..7] added
    assert not torch.equal(state["embed_tokens"][:vocab], base.get_input_embeddings().weight)  # trained
    assert state["edit_head.llm2hid.weight"].shape == (512, 32)  # MGIE-7B's head: 4096 -> 512 -> 768
    assert "lm_head" in state
    # the frozen body is not saved: the checkpoint holds the trainable parts only
    assert not any(k.startswith(("model.", "language_model")) for k in state)
    files = json.loads((out / "manifest.json").read_text())["files"]
    assert {"guide_trainable.safetensors", "unet/diffusion_pytorch_model.safetensors"} <= set(files)


def test_7b_mgie_edits_from_its_trained_folder_deterministically(world, trained_mgie):
    out, _ = trained_mgie
    model = MGIE(preset="7b", weights_dir=str(out))
    assert model.resolution == 16 and model.guide.n_image_tokens == 16
    prompt = model.guide.tokenizer.decode(model.guide.prompt_ids("make it look like painting 1"))
    assert "what will this image be like if 'make it look like painting 1'" in prompt
    sample = world["samples"][0]
    reqs = [EditRequest(sample, seed=s, settings={"steps": 2}) for s in (0, 1)]
    a, b = model.edit(reqs), model.edit(reqs)
    assert np.asarray(to_rgb_image(a[0].image)).shape == (16, 16, 3)
    assert all(np.array_equal(x.image, y.image) for x, y in zip(a, b))
    assert not np.array_equal(a[0].image, a[1].image)  # the seed matters
    assert a[0].expressive == a[1].expressive  # greedy, derived once per sample
    assert model.weights_sha256.endswith(str(world["llava"]))


@needs_cuda
def test_7b_mgie_trains_in_bf16_and_edits_on_a_gpu(world, tmp_path):
    manifest = _train(MGIE, world, tmp_path / "gpu", "llava", device="cuda")
    assert manifest["device"].startswith("cuda") and manifest["mixed_precision"] == "bf16"
    assert all(np.isfinite([h["loss_ins"], h["loss_edit"]]).all() for h in manifest["loss_history"])
    model = MGIE(preset="7b", weights_dir=str(tmp_path / "gpu"), device="cuda")
    reqs = [EditRequest(world["samples"][0], seed=s, settings={"steps": 2}) for s in (0, 1)]
    a, b = model.edit(reqs), model.edit(reqs)
    assert all(np.isfinite(x.image).all() and np.array_equal(x.image, y.image) for x, y in zip(a, b))
    assert not np.array_equal(a[0].image, a[1].image) and a[0].expressive == a[1].expressive


def test_7b_lgie_trains_resumes_and_edits_without_an_image(world, tmp_path):
    manifest = _train(LGIE, world, tmp_path / "lgie", "llama", checkpoint_every=1)
    assert manifest["multimodal"] is False
    state = json.loads((tmp_path / "lgie" / "training-state" / "state.json").read_text())
    assert state["step"] == 1
    assert (tmp_path / "lgie" / "training-state" / "guide_trainable.safetensors").is_file()
    # resumed from step 1, the run repeats step 2 exactly
    again = _train(LGIE, world, tmp_path / "lgie", "llama", resume=True)
    assert again["loss_history"] == manifest["loss_history"]
    model = LGIE(preset="7b", weights_dir=str(tmp_path / "lgie"))
    assert "<image>" not in model.guide.template
    res = model.edit([EditRequest(world["samples"][1], seed=0, settings={"steps": 2})])[0]
    assert np.asarray(to_rgb_image(res.image)).shape == (16, 16, 3)
    with pytest.raises(ValueError, match="not a mgie 7b checkpoint"):
        MGIE(preset="7b", weights_dir=str(tmp_path / "lgie"))


def test_7b_errors_name_what_is_missing(world, tmp_path):
    with pytest.raises(ValueError, match="lr_mllm"):
        MGIE.train(preset="7b", output_dir=str(tmp_path), learning_rate=1e-5)
    with pytest.raises(MissingWeightsError, match="--weights-dir"):
        MGIE(preset="7b")
    with pytest.raises(ValueError, match="expressive_file"):
        MGIE.train(preset="7b", output_dir=str(tmp_path), data_dir=str(world["data"]))
    with pytest.raises(FileNotFoundError, match="missing-sd"):
        MGIE.train(preset="7b", output_dir=str(tmp_path), data_dir=str(world["data"]),
                   base_checkpoint=str(tmp_path / "missing-sd"),
                   recipe_overrides={"expressive_file": str(world["expressive"]), "lm": str(world["llava"])})
    with pytest.raises(FileNotFoundError, match="llava-1.5-7b-hf"):
        MGIE.train(preset="7b", output_dir=str(tmp_path), data_dir=str(world["data"]),
                   base_checkpoint=str(world["sd"]), recipe_overrides={"expressive_file": str(world["expressive"])})


def test_expressive_file_formats_and_the_chat_template(tmp_path):
    path = tmp_path / "e.json"
    path.write_text(json.dumps({"0000132": {"expressive": " paint it "}, "zoom in": "closer view", "bad": 3}))
    assert expressive_table(str(path)) == {"0000132": "paint it", "zoom in": "closer view"}
    assert TEMPLATE_MLLM.endswith("USER: what will this image be like if '{instruction}'\n<image> ASSISTANT:")
