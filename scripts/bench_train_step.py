"""Training-step throughput of InstructPix2Pix-tiny on the CPU: eager, bf16 autocast, compiled.

    python scripts/bench_train_step.py [--mode eager|bf16|compile|compile-bf16] [--resolution 64]
        [--batch-size 32] [--steps 60] [--threads 2]

Times the tiny recipe's step (``diffusion_loss``, backward, gradient clipping, AdamW) on eight
synth training batches drawn beforehand, so the figure is compute alone; drawing a batch is timed
separately and printed beside it. Untrained weights: the cost of a step does not depend on them.
``compile`` wraps the UNet in ``torch.compile`` (static shapes); its compilation is in the warm-up,
not in the timing. docs/tiny-models.md ("Toward the 20-minute target") quotes its figures.
"""
import argparse
import time

import torch


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mode", choices=["eager", "bf16", "compile", "compile-bf16"], default="eager")
    ap.add_argument("--resolution", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--warmup", type=int, default=6)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    if args.steps < 1 or args.batch_size < 1:
        ap.error("--steps and --batch-size must be positive")

    from baselines.instruct_pix2pix import (TINY, TINY_RECIPE, _synth_batches,
                                            build_tiny_components)
    from benchmark.diffusion.text import synth_corpus, tokenize, train_tokenizer
    from benchmark.diffusion.training import diffusion_loss
    from benchmark.diffusion.unet import SourceResidualUNet

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    tokenizer = train_tokenizer(synth_corpus(40), vocab_size=TINY["vocab_size"])
    unet, vae, text_encoder, scheduler = build_tiny_components(tokenizer)
    vae.register_to_config(scaling_factor=1.0)
    unet = SourceResidualUNet(unet, vae.config.latent_channels, 1.0)
    params = list(unet.parameters()) + list(text_encoder.parameters())
    optimizer = torch.optim.AdamW(params, lr=TINY_RECIPE["learning_rate"], weight_decay=1e-2)

    batches = _synth_batches(args.batch_size, 0, args.resolution)
    t = time.perf_counter()
    drawn = [next(batches) for _ in range(8)]
    draw_s = (time.perf_counter() - t) / 8

    step_unet = torch.compile(unet, dynamic=False) if args.mode.startswith("compile") else unet
    null_ids = tokenize(tokenizer, [""])
    gen = torch.Generator().manual_seed(0)

    def step(batch) -> None:
        _, src, tgt, texts = batch
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.mode.endswith("bf16")):
            cond = text_encoder(tokenize(tokenizer, texts))[0]
            null = text_encoder(null_ids)[0]
            loss = diffusion_loss(step_unet, vae, scheduler, src, tgt, cond, null, gen,
                                  TINY_RECIPE["conditioning_dropout"])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    t = time.perf_counter()
    for i in range(args.warmup):
        step(drawn[i % 8])
    warm_s = time.perf_counter() - t
    t = time.perf_counter()
    for i in range(args.steps):
        step(drawn[i % 8])
    dt = (time.perf_counter() - t) / args.steps
    print(f"{args.mode}, {args.resolution} px, batch {args.batch_size}, {args.threads} threads: "
          f"{1 / dt:.2f} steps/s ({1000 * dt / args.batch_size:.2f} ms/sample compute; drawing a "
          f"batch {draw_s:.3f} s, {1000 * draw_s / args.batch_size:.2f} ms/sample; warm-up "
          f"{warm_s:.1f} s)")


if __name__ == "__main__":
    main()
