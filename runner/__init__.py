"""runner: a load and benchmark runner for SQLAlchemy workloads against PostgreSQL."""

__version__ = "0.1.0"
