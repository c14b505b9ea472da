import math

import numpy as np
import torch

from dit_mini.models.embeddings import sincos_2d, timestep_embedding


def test_timestep_embedding_cos_first():
    t = torch.tensor([0.0, 3.0])
    e = timestep_embedding(t, 8)
    freqs = np.exp(-math.log(10000) * np.arange(4) / 4)
    expected = np.concatenate([np.cos(3 * freqs), np.sin(3 * freqs)])
    assert np.allclose(e[1].numpy(), expected, atol=1e-6)
    assert torch.equal(e[0, :4], torch.ones(4)) and torch.equal(e[0, 4:], torch.zeros(4))


def test_2d_position_embedding_layout():
    D, G = 16, 3
    pe = sincos_2d(D, G)
    assert pe.shape == (G * G, D)

    def one_d(pos):
        omega = 1.0 / 10000 ** (np.arange(D // 4) / (D / 4))
        return np.concatenate([np.sin(pos * omega), np.cos(pos * omega)])

    for token in range(G * G):
        row, col = divmod(token, G)  # tokens are row-major
        expected = np.concatenate([one_d(col), one_d(row)])  # first half: column (w)
        assert np.allclose(pe[token].numpy(), expected, atol=1e-6)
