"""A small app-shaped package: users, products, orders with order lines (`models`), and its
benchmark defined next to it the way a team would write one (`bench`)."""
