"""``python -m cli review next|decide|stats`` under moto: the operator's credentials, the stack's outputs, the
same service as the reviewer's API (leases, 403 on another's claim, 409 on a second decision, feedback labels)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from cli.__main__ import main
from shared.review.adapters import TABLE_SCHEMA
from shared.review.service import InboundMessage
from shared.scoring.feedback import PROVENANCE

REPO = Path(__file__).resolve().parents[2]
LAKE, TABLE, STACK, USECASE = "sluice-lake", "sluice-review", "Sluice-telco-churn", "telco_churn"


def _message(request_id: str, scores: list[float], routing: list[dict[str, Any]]) -> InboundMessage:
    n = len(scores)
    return InboundMessage(message_id=request_id, body=json.dumps({
        "usecase": USECASE, "request_id": request_id, "time": "2026-12-01T08:59:00+00:00",
        "variant": "champion", "model_version": 3, "threshold": 0.45, "served": True, "index": list(range(n)),
        "entity_id": list(range(1, n + 1)), "score": scores, "label": ["No"] * n,
        "features": {"contract": ["One year", "Month-to-month"][:n], "tenure": [12, 3][:n]},
        "routing": routing,
    }))  # fmt: skip


IN_BAND = {"reasons": ["in_band"], "inclusion_probability": 1.0, "challenger_score": None}
AUDIT = {"reasons": ["audit"], "inclusion_probability": 0.02, "challenger_score": None}


def _usecase(tmp_path: Path, reviewers: int) -> Path:
    text = (REPO / "usecases" / "telco_churn.toml").read_text()
    path = tmp_path / "telco_churn.toml"
    path.write_text(text.replace("reviewers_per_item = 1", f"reviewers_per_item = {reviewers}"))
    return path


@pytest.fixture
def stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    for name, value in {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "t",
        "AWS_SECRET_ACCESS_KEY": "t",
    }.items():
        monkeypatch.setenv(name, value)
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps({STACK: {"LakeBucketName": LAKE, "ReviewTableName": TABLE}}))
    with mock_aws():
        boto3.client("s3").create_bucket(Bucket=LAKE)
        boto3.client("dynamodb").create_table(TableName=TABLE, **TABLE_SCHEMA)
        yield outputs


def _cli(outputs: Path, usecase: Path, *args: str) -> int:
    return main(["--usecase", str(usecase), "--outputs-file", str(outputs), "review", *args])


def _take_in(usecase: Path, outputs: Path, messages: list[InboundMessage]) -> None:
    from cli.context import load_context
    from cli.review import review_service

    ctx = load_context(usecase_file=usecase, endpoint_url=None, outputs_file=outputs, stack=None)
    assert review_service(ctx).intake(messages).created == sum(len(json.loads(m.body)["score"]) for m in messages)


def test_a_reviewer_claims_and_decides_from_the_terminal(
    stack: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    usecase = _usecase(tmp_path, reviewers=1)
    # Given an item in the band and an audited one
    _take_in(usecase, stack, [_message("req-1", [0.41, 0.9], [IN_BAND, AUDIT])])
    # When ana asks for the next item
    assert _cli(stack, usecase, "--reviewer", "ana", "next") == 0
    printed = capsys.readouterr().out
    # Then the band item (first by priority) is claimed and printed with its reason, score, age and features
    assert "in_band" in printed
    assert "score        0.410 (threshold 0.450" in printed
    assert "age          " in printed
    assert "tenure" in printed
    assert "One year" in printed
    assert "claimed by   ana" in printed
    item_id = printed.split("item         ", 1)[1].split()[0]
    # When bo decides ana's claim, or ana answers an undeclared taxonomy value, Then each is refused (exit 1)
    assert _cli(stack, usecase, "--reviewer", "bo", "decide", item_id, "--label", "Yes", "--taxonomy", "correct") == 1
    assert _cli(stack, usecase, "--reviewer", "ana", "decide", item_id, "--label", "Yes", "--taxonomy", "gut") == 1
    capsys.readouterr()
    # When ana decides, Then the label is in the lake with its provenance; a second decision is refused
    decide = ["decide", item_id, "--label", "yes", "--taxonomy", "wrong_label", "--note", "<b>churned</b>"]
    assert _cli(stack, usecase, "--reviewer", "ana", *decide) == 0
    assert f"decided {item_id}: label Yes" in capsys.readouterr().out
    assert _cli(stack, usecase, "--reviewer", "ana", *decide) == 1
    assert "error:" in capsys.readouterr().err
    s3 = boto3.client("s3")
    (key,) = [o["Key"] for o in s3.list_objects_v2(Bucket=LAKE, Prefix=f"feedback/{USECASE}/")["Contents"]]
    document = json.loads(s3.get_object(Bucket=LAKE, Key=key)["Body"].read())
    assert document["label"] == "Yes"
    assert document[PROVENANCE]["reviewers"] == ["ana"]
    assert document[PROVENANCE]["inclusion_probability"] == 1.0
    # When the stats are asked
    assert _cli(stack, usecase, "stats") == 0
    stats = capsys.readouterr().out
    # Then one waits (the audited item), one decision counted, and the model (0.41 < 0.45: No) disagreed with
    # ana (Yes) under wrong_label and in the item's segment
    assert "queue        1 waiting (open 1, claimed 0, expired 0) · by reason: audit 1" in stats
    assert "within the SLA" in stats
    assert "decisions    1.0/h over the last 1 h · 1 decided in all" in stats
    assert "wrong_label  1/1 (100%)" in stats
    assert "contract=One year  1/1 (100%)" in stats
    # When nothing is left for ana (the audited item claimed by bo), Then next says so
    assert _cli(stack, usecase, "--reviewer", "bo", "next") == 0
    assert _cli(stack, usecase, "--reviewer", "ana", "next") == 0
    assert "nothing waits for ana" in capsys.readouterr().out


def test_stats_give_the_reviewers_agreement(stack: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    usecase = _usecase(tmp_path, reviewers=2)
    # Given two items, each reviewed by ana and bo: they agree on one and not on the other
    _take_in(usecase, stack, [_message("req-2", [0.4, 0.5], [IN_BAND, IN_BAND])])
    answers = {"ana": ["Yes", "No"], "bo": ["Yes", "Yes"]}
    for reviewer, labels in answers.items():
        for label in labels:
            assert _cli(stack, usecase, "--reviewer", reviewer, "next") == 0
            item_id = capsys.readouterr().out.split("item         ", 1)[1].split()[0]
            assert _cli(stack, usecase, "--reviewer", reviewer, "decide", item_id, "--label", label, "--taxonomy",
                        "correct") == 0  # fmt: skip
    capsys.readouterr()
    # When the stats are asked
    assert _cli(stack, usecase, "stats") == 0
    stats = capsys.readouterr().out
    # Then Cohen's kappa over the two items: observed agreement 1/2, chance agreement 1/2 (bo always Yes) → 0
    assert "agreement    cohen kappa 0.00 over 2 items" in stats
    assert "2 decided in all" in stats
