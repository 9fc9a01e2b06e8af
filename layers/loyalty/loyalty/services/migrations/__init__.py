"""Migrations of stored items (D-112): when the shape of what the code writes changes, the items written
before are brought forward by a numbered migration, run once per table, on deploy and by the local stack.

Owns: the migrations (steps.py), their run state and the walk over the table a page per queue message
(runner.py). May call: the store, and the domain's builders of what a current item holds.
"""
