"""The one dialect B blueprint; resource modules add their routes to it."""

from .dialect_b import make_blueprint

bp = make_blueprint("api_b")
