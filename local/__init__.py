"""The embedded cloud: the Sluice stack on moto, for tests and the demo (development tooling, never deployed).

Three rooms, composed at this level:

* :mod:`local.template` -- the CloudFormation engine: parses a synthesized template, resolves its
  intrinsics and creates its resources on moto (``Template``, ``Deployer``);
* :mod:`local.services` -- the service emulations moto lacks (Lambda runtime, EventBridge routing,
  SageMaker training and endpoints, API Gateway front, SQS pollers, alarms, schedules, ...), each behind
  one lifecycle and listed once in :data:`local.services.emulations.EMULATIONS`;
* :mod:`local.demo` -- ``make demo`` (``python -m local.demo``) and the helpers the end-to-end tests share.

:mod:`local.cloud` (``EmbeddedCloud``) starts moto, the emulations and the deployment in one process;
``python -m local`` (:mod:`local.__main__`, what ``make local`` runs) serves it until Ctrl-C;
:mod:`local.launcher` starts that as its own process, as the demo and the end-to-end tests do.
"""
