"""The pruning course's helper library. Notebooks import everything they need from here."""
from course.config import FAST, device, fast, setup

__all__ = ["FAST", "device", "fast", "setup"]
