"""The service emulations of the embedded cloud: what moto does not do, or does differently from AWS.

Each emulation is a process-global patch of moto and/or background work (a thread, a subprocess, an
HTTP server). :mod:`~local.services.emulations` puts them behind one lifecycle (install, start, stop,
uninstall) and lists them once, in order, in :data:`~local.services.emulations.EMULATIONS`; the
embedded cloud (:mod:`local.cloud`) walks that list. Nothing here knows the template or the stack: what
an emulation needs of a deployment comes in through :class:`~local.services.emulations.DeployedStack`.
"""
