"""Typed message models (the single source of truth) and the JSON Schema files made from them."""
