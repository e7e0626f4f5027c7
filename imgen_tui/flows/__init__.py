"""The generation flows as plain state machines, and what ties the scheduler to the store."""
