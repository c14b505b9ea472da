"""The diffusion process: noise schedules, training losses, samplers and guidance."""
