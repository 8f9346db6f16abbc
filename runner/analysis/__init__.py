"""After the run: the report document and table, loading results, repeats, comparisons, plots."""
