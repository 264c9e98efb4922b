"""Ground-truth synthetic company, collections environments, evaluation harness, OPE."""
