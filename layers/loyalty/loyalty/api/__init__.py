"""HTTP glue shared by every HTTP function: one resolver factory, one error mapping, the routes."""
