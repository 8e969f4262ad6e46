"""What the lab concludes from its trials: fold statistics, the selection rule, intervals and tests,
per-technique effects, diagnoses and the report.

Plain functions over NumPy arrays and ``TrialRecord``s: no Keras, no MLflow,
so each is checked against a reference on constructed inputs.
"""
