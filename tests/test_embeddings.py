import math

import numpy as np
import pytest
import torch

from dit_mini.models.embeddings import LabelEmbedder, drop_labels, sincos_2d, timestep_embedding


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


def test_label_embedder_drops_labels_as_the_reference_token_drop():
    torch.manual_seed(0)
    emb = LabelEmbedder(10, 8, class_dropout_prob=0.5)
    assert list(emb.state_dict()) == ["embedding_table.weight"]  # the reference layout
    assert emb.embedding_table.weight.shape == (11, 8) and emb.null_class == 10
    y = torch.arange(10).repeat(20)
    null = emb.embedding_table.weight[10]
    # train=False (how DiT calls it: the trainer drops labels itself): nothing is dropped.
    torch.testing.assert_close(emb(y), emb.embedding_table(y))
    # train=True: about half the labels become the null class, drawn from the generator.
    out = emb(y, train=True, generator=torch.Generator().manual_seed(1))
    dropped = (out == null).all(dim=1)
    assert 0.3 < dropped.float().mean() < 0.7
    expected = drop_labels(y, 0.5, 10, torch.Generator().manual_seed(1))
    torch.testing.assert_close(out, emb.embedding_table(expected))
    # force_drop_ids: exactly the marked labels, in train and eval alike.
    force = torch.tensor([1, 0, 1, 0])
    forced = emb(torch.tensor([3, 4, 5, 6]), force_drop_ids=force)
    torch.testing.assert_close(forced[0], null)
    torch.testing.assert_close(forced[1], emb.embedding_table.weight[4])
    assert emb.token_drop(torch.tensor([3, 4, 5, 6]), force).tolist() == [10, 4, 10, 6]


def test_label_embedder_without_dropout_has_no_null_class():
    emb = LabelEmbedder(10, 8, class_dropout_prob=0.0)
    y = torch.arange(10)
    assert emb.null_class is None and emb.embedding_table.weight.shape == (10, 8)
    torch.testing.assert_close(emb(y, train=True), emb.embedding_table(y))
    with pytest.raises(ValueError, match="class_dropout_prob > 0"):
        emb(y, force_drop_ids=torch.ones(10))
