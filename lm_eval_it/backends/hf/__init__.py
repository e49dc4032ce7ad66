"""The Hugging Face backend: ``backend`` (the :class:`~lm_eval_it.backends.base.Backend`), ``load``, ``locate``, ``scorer``, ``tokenizer``."""
