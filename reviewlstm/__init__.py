"""reviewlstm: predict a 1-5 star rating from review text with PyTorch LSTMs.

The domain library. Plain Python, polars, numpy and torch: no Prefect, so every function can be
called, tested and timed on its own. Heavy modules (torch, spaCy) are imported by the modules
that need them, never here, so importing the package stays cheap.
"""

__version__ = "0.1.0"
