"""dit_mini: a small, readable Diffusion Transformer package and the course built on it.

Importing the package has no side effects: no RNG use, no backend flags, no prints, no files.
It does not import the course (`dit_mini.course`: the notebooks' checks, quizzes and figures),
which builds on the package and is imported by the notebooks themselves.
"""

from .data.datasets import ImageDataset, load_cifar10, load_dataset, load_image_folder
from .data.relics import RELIC_CLASSES, make_relics, relic_captions, render_relic
from .diffusion.guidance import combine_guidance, drop_labels, guided
from .diffusion.losses import DiffusionConfig, DiffusionLoss, generate, make_loss
from .diffusion.samplers import FlowAsEps, ddim_sample, ddim_timesteps, ddpm_sample, euler_sample
from .diffusion.schedules import NoiseSchedule, cosine_schedule, linear_schedule, make_schedule
from .metrics.evaluation import evaluate_samples
from .metrics.fid import fid_from_features, frechet_distance, inception_features, kid_from_features
from .metrics.flops import count_gflops, count_params, gflops_report, unet_matching_gflops
from .models.attention import (
    Attention,
    CrossAttention,
    attention_weights,
    explicit_attention,
    use_explicit_attention,
)
from .models.dit import DIT_PRESETS, DiT, DiTBlock, DiTConfig, dit_config, patchify, unpatchify
from .models.dit_block import CONDITIONING
from .models.embeddings import (
    LabelEmbedder,
    PatchEmbed,
    TimestepEmbedder,
    sincos_2d,
    timestep_embedding,
)
from .models.pretrained import PRETRAINED, load_pretrained
from .models.unet import UNet, UNetConfig, unet_config
from .models.vae import VAE, VAEConfig, vae_config
from .registry import MODEL_KINDS, load_model, read_config, save_model
from .runtime import fast_mode, pick_device
from .storage import CheckpointError
from .train.recipes import RECIPES, Recipe
from .train.trainer import TrainConfig, TrainResult, fit

__all__ = [
    "Attention",
    "attention_weights",
    "CheckpointError",
    "combine_guidance",
    "CONDITIONING",
    "cosine_schedule",
    "count_gflops",
    "count_params",
    "CrossAttention",
    "ddim_sample",
    "ddim_timesteps",
    "ddpm_sample",
    "DiffusionConfig",
    "DiffusionLoss",
    "DiT",
    "dit_config",
    "DIT_PRESETS",
    "DiTBlock",
    "DiTConfig",
    "drop_labels",
    "euler_sample",
    "evaluate_samples",
    "explicit_attention",
    "fast_mode",
    "fid_from_features",
    "fit",
    "FlowAsEps",
    "frechet_distance",
    "generate",
    "gflops_report",
    "guided",
    "ImageDataset",
    "inception_features",
    "kid_from_features",
    "LabelEmbedder",
    "linear_schedule",
    "load_cifar10",
    "load_dataset",
    "load_image_folder",
    "load_model",
    "load_pretrained",
    "make_loss",
    "make_relics",
    "make_schedule",
    "MODEL_KINDS",
    "NoiseSchedule",
    "PatchEmbed",
    "patchify",
    "pick_device",
    "PRETRAINED",
    "read_config",
    "Recipe",
    "RECIPES",
    "relic_captions",
    "RELIC_CLASSES",
    "render_relic",
    "save_model",
    "sincos_2d",
    "timestep_embedding",
    "TimestepEmbedder",
    "TrainConfig",
    "TrainResult",
    "UNet",
    "unet_config",
    "unet_matching_gflops",
    "UNetConfig",
    "unpatchify",
    "use_explicit_attention",
    "VAE",
    "vae_config",
    "VAEConfig",
    "__version__",
]

__version__ = "0.2.0"
