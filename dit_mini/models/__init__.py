"""The networks: DiT (with its block and conditioning designs), U-Net, VAE, video DiT,
embeddings and attention, and the shipped pretrained models."""
