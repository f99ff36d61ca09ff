"""The srjobs worker: Dramatiq actors with run records."""
