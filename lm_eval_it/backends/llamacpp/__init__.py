"""The llama.cpp backend (llama-cpp-python): see :mod:`lm_eval_it.backends.llamacpp.backend`."""
