"""Example services benchmarked with runner (see README: "Benchmarking your service")."""
