"""What crosses the wire and merges: records, histograms, the collector, the timeline."""
