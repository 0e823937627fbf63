"""``SLUICE_USECASE=path/to/other.toml make local`` brings up that use case, even from a file outside the repository.

How the use case is chosen (an explicit ``--usecase`` beats ``$SLUICE_USECASE``, which beats the default),
then one cloud, started as its own process the way ``make local`` starts it (``python -m local``, no
``--usecase``; the use case synthesized on first use), checked as a user would: the outputs file, boto3
and the scoring API over HTTP.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from infra.assembly import DEFAULT_USECASE, usecase_file
from local.launcher import ROOT, launch

TELCO = ROOT / "usecases" / "telco_churn.toml"


def test_an_explicit_usecase_beats_sluice_usecase(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # Given SLUICE_USECASE names one use-case file
    monkeypatch.setenv("SLUICE_USECASE", str(tmp_path / "from_environment.toml"))
    # When another is given explicitly (`--usecase`)
    chosen = usecase_file(tmp_path / "explicit.toml")
    # Then the explicit one is used
    assert chosen == tmp_path / "explicit.toml"


def test_sluice_usecase_is_a_file_or_a_name_as_app_py_reads_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # Given SLUICE_USECASE as a file path, then as a bare use-case name, then unset
    monkeypatch.setenv("SLUICE_USECASE", str(tmp_path / "other.toml"))
    as_file = usecase_file()
    monkeypatch.setenv("SLUICE_USECASE", "telco_churn")
    as_name = usecase_file()
    monkeypatch.delenv("SLUICE_USECASE")
    unset = usecase_file()
    # Then the file is that file, the name is its file under usecases/, and nothing means the default
    assert as_file == tmp_path / "other.toml"
    assert as_name == TELCO
    assert unset == DEFAULT_USECASE


def _get(url: str, api_key: str) -> tuple[int, dict[str, object]]:
    request = urllib.request.Request(url, headers={"x-api-key": api_key})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.mark.e2e  # starts the embedded cloud as a process, after synthesizing a second use case (about a minute)
def test_make_local_deploys_the_usecase_that_sluice_usecase_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a second use case in a file outside the repository: telco churn's settings under another name
    telco = TELCO.read_text()
    assert 'name = "telco_churn"' in telco
    other = tmp_path / "outside_churn.toml"
    other.write_text(telco.replace('name = "telco_churn"', 'name = "outside_churn"', 1))
    monkeypatch.setenv("SLUICE_USECASE", str(other))

    # When the embedded cloud is started as `make local` starts it
    with launch(outputs_file=tmp_path / "outputs.json", log_file=tmp_path / "cloud.log", timeout=600) as cloud:
        # Then the outputs file holds that use case's one stack
        outputs_file = json.loads((tmp_path / "outputs.json").read_text())
        assert list(outputs_file) == ["Sluice-outside-churn"]
        outputs = cloud.stack_outputs
        assert "outside" in outputs["ModelPackageGroupName"]
        # ... its functions are deployed
        function = cloud.client("lambda").get_function(FunctionName=outputs["ScoreFunctionName"])
        assert function["Configuration"]["FunctionName"] == outputs["ScoreFunctionName"]
        # ... and the scoring API serves that use case (the one bundled with its function), not telco churn
        api_key = cloud.client("apigateway").get_api_key(apiKey=outputs["ApiKeyId"], includeValue=True)["value"]
        api = outputs["ApiUrl"].rstrip("/")
        status, document = _get(f"{api}/v1/outside_churn/openapi.json", api_key)
        assert status == 200
        assert "outside_churn" in str(document["info"])
        status, refusal = _get(f"{api}/v1/telco_churn/openapi.json", api_key)
        assert status == 404
        assert "this API serves 'outside_churn'" in str(refusal["message"])
