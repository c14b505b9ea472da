"""Attention forward + backward alone at the nano DiT's shape (16, 3 heads, 64 tokens, 32):
torch's fused SDPA against the explicit path (q pre-scaled) and SDPA's math backend, 100 calls
after 5 warm-up calls, 3 rounds (issue 24, 2026-12-07). Argument: the thread count."""
import sys
import time

import torch
import torch.nn.functional as F

torch.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else 2)
q, k, v = [torch.randn(16, 3, 64, 32, requires_grad=True) for _ in range(3)]
g = torch.randn(16, 3, 64, 32)


def sdpa():
    return F.scaled_dot_product_attention(q, k, v)


def explicit():
    return ((q * 32**-0.5) @ k.transpose(-2, -1)).softmax(-1) @ v


def math_backend():
    with torch.nn.attention.sdpa_kernel(torch.nn.attention.SDPBackend.MATH):
        return F.scaled_dot_product_attention(q, k, v)


for _ in range(3):
    for name, f in [("sdpa", sdpa), ("explicit", explicit), ("math", math_backend)]:
        for _ in range(5):
            f().backward(g)
        t = time.perf_counter()
        for _ in range(100):
            f().backward(g)
        print(name, round((time.perf_counter() - t) / 100 * 1e6), "us", end="; ")
    print()
