"""dit_mini: a small, readable Diffusion Transformer package and the course built on it.

Importing the package has no side effects: no RNG use, no backend flags, no prints, no files.
"""

from .attention import (
    Attention,
    CrossAttention,
    attention_weights,
    explicit_attention,
    use_explicit_attention,
)
from .diffusion import DiffusionConfig, DiffusionLoss, generate, make_loss
from .dit import DIT_PRESETS, DiT, DiTBlock, DiTConfig, dit_config, patchify, unpatchify
from .embeddings import LabelEmbedder, PatchEmbed, TimestepEmbedder, sincos_2d, timestep_embedding
from .guidance import combine_guidance, drop_labels, guided
from .samplers import ddim_sample, ddim_timesteps, ddpm_sample, euler_sample
from .schedules import NoiseSchedule, cosine_schedule, linear_schedule, make_schedule

__version__ = "0.1.0"
