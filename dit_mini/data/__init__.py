"""Datasets: Relics (procedural), Animated Relics clips, CIFAR-10 and image folders."""
