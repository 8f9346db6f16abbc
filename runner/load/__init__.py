"""--scale: how many rows each table gets (rows), the values of its columns (values, checks), the
COPY that loads them and the statistics taken after (fill)."""
