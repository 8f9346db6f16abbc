"""The worker body: engine and loop, op loop, recorder, the channel back to the parent."""
