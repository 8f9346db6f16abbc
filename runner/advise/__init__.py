"""`runner advise`: which configuration (sync or async, driver, processes, ops in flight) serves
this workload best on this server, found by a designed experiment rather than a grid."""
