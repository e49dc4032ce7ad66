"""Statistics: the plug-in contract (``base``) and the one registry the runner and reports iterate over
(``registry``); pure numerics (``metrics``, ``intervals``, ``student_t``, ``groups``, ``compression``); one
folder or file per statistic (``temperature/``, ``kl/``, ``context/``, ``memorisation/``, ``target_rank``).
"""
