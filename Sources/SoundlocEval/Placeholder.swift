// Placeholder until the evaluator lands.
