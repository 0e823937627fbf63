"""``make demo`` (``python -m local.demo``): the whole loop on the embedded cloud, driven as a user would.

It talks to the cloud only through :mod:`local.launcher` (its own process), boto3, HTTP and the CLI.
Its helpers -- sample data (:mod:`~local.demo.sample_data`), synthetic traffic (:mod:`~local.demo.traffic`),
candidate models (:mod:`~local.demo.candidates`), observations (:mod:`~local.demo.observe`) -- are
shared with the end-to-end tests.
"""
