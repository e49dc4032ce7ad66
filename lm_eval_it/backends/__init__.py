"""Backends: the model as it runs. ``base`` is what the engine needs from one (the Backend protocol and
its Capability set), ``registry`` finds one by ``models[].backend``, ``hf/`` is the Hugging Face backend.
"""
