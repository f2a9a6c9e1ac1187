"""Datasets on disk and the feature cache built from them: the input of training and evaluation."""
