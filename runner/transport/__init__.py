"""How workers are planned, started and heard from: plans, pool sizes, the supervisor, transports."""
