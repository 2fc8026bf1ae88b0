"""The models of the tutorial seeds, written as the seeds write them (our code, their shape).

Suites and benchmarks use these so a test reads like the tutorial it checks.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


class LinearModel(nn.Module):
    """Seed 002: y = x * weight + bias with two one-element Parameters."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.rand(1))
        self.bias = nn.Parameter(torch.rand(1))

    def forward(self, x):
        return x * self.weight + self.bias


class MyLinear(nn.Module):
    """Seeds 000, 001, 004: x @ weights + bias with hand-made Parameters."""

    def __init__(self, in_features, out_features):
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.weights = nn.Parameter(torch.randn(in_features, out_features))
        self.bias = nn.Parameter(torch.randn(out_features))

    def forward(self, x):
        return x @ self.weights + self.bias


class MyLinearPlainTensors(nn.Module):
    """Seed 001's commented-out variant: the same weights as plain Tensors, which the module
    does not register (so they are neither saved nor optimized)."""

    def __init__(self, in_features, out_features):
        super().__init__()
        self.weights = torch.randn(in_features, out_features)
        self.bias = torch.randn(out_features)

    def forward(self, x):
        return x @ self.weights + self.bias


class LinearRegression(nn.Module):
    """Seeds 000, 001: a single nn.Linear."""

    def __init__(self, input_size, output_size):
        super().__init__()
        self.linear = nn.Linear(input_size, output_size)

    def forward(self, x):
        return self.linear(x)


class HandLogisticRegression(nn.Module):
    """Seed 000's LR: logistic regression with a hand-written backward and update.

    x has shape (dim, n) (features by samples), as the seed's backward uses it; W has shape
    (1, dim), so forward is W @ x + b (the seed's forward, x @ W.T with W of shape (dim, 1), only
    lines up with its backward when dim == 1). W, b and the gradients are plain tensors, which
    Module.to() does not move: pass `device` and `dtype` to create them where they are used."""

    def __init__(self, dim, lr=0.01, device=None, dtype=None):
        super().__init__()
        self.W = torch.zeros(1, dim, device=device, dtype=dtype)
        self.b = torch.zeros((), device=device, dtype=dtype)
        self.grad = {"dw": torch.zeros(1, dim, device=device, dtype=dtype),
                     "db": torch.zeros((), device=device, dtype=dtype)}
        self.lr = lr

    def forward(self, x):
        z = self.W @ x + self.b
        return 1 / (1 + torch.exp(-z))

    def backward(self, x, y_hat, y):
        n = x.shape[1]
        self.grad["dw"] = (1 / n) * ((y_hat - y) @ x.T)
        self.grad["db"] = (1 / n) * torch.sum(y_hat - y)

    def optimize(self):
        self.W -= self.lr * self.grad["dw"]
        self.b -= self.lr * self.grad["db"]


def linear_regression_data(n: int = 11):
    """Seeds 000/001's training set: x = 0..n-1, y = 2x + 1, as float32 column vectors."""
    x = np.arange(n, dtype=np.float32).reshape(-1, 1)
    return x, 2 * x + 1
