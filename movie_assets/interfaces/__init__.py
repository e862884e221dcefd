"""What users call: the Python API and the ``moviegen`` CLI. Nothing in the project imports them."""
