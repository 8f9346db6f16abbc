"""`runner capacity`: the highest open-loop rate that meets every SLO, found by a search over runs."""
