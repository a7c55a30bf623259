"""The latent-diffusion editing core shared by every diffusion editor in this project
(InstructPix2Pix, LGIE, MGIE, MIND-Edit-style, xMGIE-style).

Built from diffusers parts: ``UNet2DConditionModel`` (8-channel InstructPix2Pix input),
``AutoencoderKL`` (or the exact pixel-unshuffle autoencoder of the tiny presets, same interface),
``DDPMScheduler`` for training and ``EulerAncestralDiscreteScheduler`` for sampling. Conditioning is
any ``encoder_hidden_states`` tensor, so a model plugs in a CLIP text encoder, an MLLM edit head
or anything else without touching this package.

- ``autoencoders``: ``PixelUnshuffleAutoencoder`` (exact, AutoencoderKL-compatible)
- ``unet``: InstructPix2Pix conv_in surgery
- ``sampling``: ``edit_images``, the two-scale classifier-free guided sampler (MGIE eq. 5)
- ``training``: the InstructPix2Pix training step (conditioning dropout, noise, loss)
"""
