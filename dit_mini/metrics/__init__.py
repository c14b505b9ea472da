"""Measuring models: FID/KID, the classifiers that grade samples, and Gflops."""
