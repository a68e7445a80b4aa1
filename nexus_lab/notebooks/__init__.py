"""Notebook support: the bootstrap for kernels, parameter profiles and the papermill report runner."""
