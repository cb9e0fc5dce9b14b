"""Evaluation: the SemEval-2020 Task 11 formulas and scoring a model against gold."""
