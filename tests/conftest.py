"""Shared fixtures: small real data and tiny networks, so unit tests stay fast on two cores."""
from __future__ import annotations

import urllib.error

import pytest
import torch

from pidkd.distill import data
from pidkd.distill.models import build_model


@pytest.fixture(scope="session")
def digits_small():
    """A 10-per-class training subset of scikit-learn digits and the full test split."""
    train = data.load_dataset("digits", split="train", samples_per_class=10)
    test = data.load_dataset("digits", split="test")
    return train, test


@pytest.fixture
def student():
    torch.manual_seed(0)
    return build_model("cnn2d-student", num_classes=10, in_channels=1)


@pytest.fixture
def teacher_network():
    torch.manual_seed(1)
    return build_model("cnn2d-teacher", num_classes=10, in_channels=1)


@pytest.fixture
def results(tmp_path, monkeypatch):
    """An empty results folder for the experiment and CLI tests."""
    monkeypatch.setenv("PIDKD_RESULTS", str(tmp_path / "results"))
    return tmp_path / "results"


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    """An empty torch cache with downloads failing as they do offline."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def offline(url, *args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    folder = tmp_path / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    return folder
