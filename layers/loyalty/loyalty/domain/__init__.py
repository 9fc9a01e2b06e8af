"""Pure rules: no boto3, no clock reads. Everything here is testable without AWS."""
