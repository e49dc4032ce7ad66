"""The OpenAI-compatible server backend: see :mod:`lm_eval_it.backends.openai.backend`."""
