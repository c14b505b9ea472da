"""Training: the resumable trainer, checkpoints, named recipes, and the VAE and video trainers."""
