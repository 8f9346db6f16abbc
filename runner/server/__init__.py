"""The database side: the embedded server and its reaper, control connection, sampler, server stats."""
