"""Local default: one laptop, SQLite, the filesystem broker, files under var/."""

from atlas.env import env_bool
from atlas.settings.base import *  # noqa: F403

DEBUG = env_bool("DEBUG", True)
