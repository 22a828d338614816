"""The notebooks' set-up where README and the notebooks name it, ``pidkd.notebooks.setup(...)``
(:mod:`pidkd.study.notebooks`)."""
from .study.notebooks import Session, setup

__all__ = ["Session", "setup"]
