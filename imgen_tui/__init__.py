"""imgen-tui: iterate on images across a farm of ComfyUI GPU machines from a terminal."""

__version__ = "0.1.0"
