"""The CloudFormation engine of the embedded cloud: a synthesized template deployed onto moto.

:mod:`~local.template.model` parses the template and resolves intrinsics, :mod:`~local.template.resources`
and :mod:`~local.template.serving_resources` create each resource type (through boto3 on the moto server,
registering functions, APIs and event sources with the service emulations), :mod:`~local.template.deployer`
orders and classifies them (emulated, skipped, not emulated) and writes the outputs, and
:mod:`~local.template.assets` publishes the file assets. Depends on :mod:`local.services`, never the reverse.
"""
