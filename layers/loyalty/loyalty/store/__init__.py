"""The single table: the only package that knows item shapes and talks to DynamoDB."""
