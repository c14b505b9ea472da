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
from .checkpoint import load_model
from .conditioning import CONDITIONING
from .datasets import ImageDataset, load_cifar10, load_dataset, load_image_folder
from .diffusion import DiffusionConfig, DiffusionLoss, generate, make_loss
from .dit import DIT_PRESETS, DiT, DiTBlock, DiTConfig, dit_config, patchify, unpatchify
from .embeddings import LabelEmbedder, PatchEmbed, TimestepEmbedder, sincos_2d, timestep_embedding
from .evaluation import evaluate_samples
from .exercises import check
from .fid import fid_from_features, frechet_distance, inception_features, kid_from_features
from .flops import count_gflops, count_params, gflops_report, unet_matching_gflops
from .guidance import combine_guidance, drop_labels, guided
from .pretrained import PRETRAINED, load_pretrained
from .recipes import RECIPES, Recipe
from .relics import RELIC_CLASSES, make_relics, relic_captions, render_relic
from .runtime import fast_mode, pick_device
from .samplers import FlowAsEps, ddim_sample, ddim_timesteps, ddpm_sample, euler_sample
from .schedules import NoiseSchedule, cosine_schedule, linear_schedule, make_schedule
from .train import TrainConfig, TrainResult, fit
from .unet import UNet, UNetConfig, unet_config
from .vae import VAE, VAEConfig, vae_config

__version__ = "0.1.0"
