"""The PyTorch module whose state_dict is an lstmserve package's weights.

The attribute names (embedding, lstm, head) are the tensor-name contract of
models/FORMAT.md: `embedding.weight`, `lstm.weight_ih_l{k}`, ... `head.bias`.
"""
import torch
from torch import nn


class LstmLM(nn.Module):
    """Embedding -> stacked LSTM (PyTorch gate order i, f, g, o) -> linear head."""

    def __init__(self, vocab_size, embedding_dim, hidden_size, num_layers, dropout=0.0):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_dim)
        self.lstm = nn.LSTM(embedding_dim, hidden_size, num_layers=num_layers,
                            dropout=dropout if num_layers > 1 else 0.0)
        self.head = nn.Linear(hidden_size, vocab_size)
        self.drop = nn.Dropout(dropout)

    def forward(self, ids, state=None):
        """ids: [T, N] int64 -> logits [T, N, V], (h, c) each [L, N, H]."""
        x = self.drop(self.embedding(ids))
        y, state = self.lstm(x, state)
        return self.head(self.drop(y)), state
