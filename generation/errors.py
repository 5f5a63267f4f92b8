"""The GAN side's domain error, in a module that loads nothing heavy (no torch), so torch-free
modules (generation.judge_files) can raise it and callers catch one class."""


class GanError(ValueError):
    """Something the GAN services refuse; the message says why and what to do."""
