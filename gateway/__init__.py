"""Ketenpoort: a secure information-exchange gateway for Zorg- en Veiligheidshuizen."""

__version__ = "0.1.0"
__all__ = ["__version__"]
